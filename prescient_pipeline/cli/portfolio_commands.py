"""`prescient portfolio ...`: manage portfolios from the command line.

Imports of the database layers happen in the handlers: `prescient --help` and every other
command load none of them (see cli/__init__.py).
"""

from __future__ import annotations

import json
import logging

from tabulate import tabulate

from ..errors import InputError
from . import Output
from .ledger_commands import named

log = logging.getLogger(__name__)

LIST_COLUMNS = ["portfolio_id", "name", "strategy_type", "mode", "status", "initial_balance", "current_balance",
                "realized_pnl", "unrealized_pnl", "trade_count"]


def register(sub, common) -> None:
    p = sub.add_parser("portfolio", help="create and manage portfolios")
    ps = p.add_subparsers(dest="portfolio_command", required=True, metavar="ACTION")

    create = ps.add_parser("create", parents=[common], help="create a portfolio")
    create.add_argument("--name", required=True)
    create.add_argument("--strategy", required=True, help="see `prescient strategies`")
    create.add_argument("--balance", required=True, help="starting cash in USD")
    create.add_argument("--config", help="strategy config overrides as a JSON object")
    create.add_argument("--max-position-size")
    create.add_argument("--max-total-exposure")
    create.add_argument("--max-positions")
    create.add_argument("--description")
    create.set_defaults(handler=_create)

    lst = ps.add_parser("list", parents=[common], help="list portfolios")
    lst.add_argument("--status", choices=("active", "paused", "archived"))
    lst.set_defaults(handler=_list)

    show = ps.add_parser("show", parents=[common], help="a portfolio with its open positions")
    show.add_argument("portfolio_id")
    show.set_defaults(handler=_show)

    upd = ps.add_parser("update", parents=[common], help="change name, description, config or limits")
    upd.add_argument("portfolio_id")
    upd.add_argument("--name")
    upd.add_argument("--description")
    upd.add_argument("--config", dest="strategy_config",
                     help="strategy config keys (JSON object), merged into the stored config")
    upd.add_argument("--replace-config", action="store_true",
                     help="--config replaces the stored config whole (keys left out return to their defaults)")
    upd.add_argument("--max-position-size")
    upd.add_argument("--max-total-exposure")
    upd.add_argument("--max-positions")
    upd.set_defaults(handler=_update)

    for action, status, helptext in (("pause", "paused", "stop trading (positions stay marked)"),
                                     ("resume", "active", "resume trading"),
                                     ("archive", "archived", "retire a portfolio (its partitions disappear)")):
        sp = ps.add_parser(action, parents=[common], help=helptext)
        sp.add_argument("portfolio_id")
        sp.add_argument("--reason")
        sp.set_defaults(handler=_status_handler(status))

    delete = ps.add_parser("delete", parents=[common], help="delete a portfolio and its whole ledger")
    delete.add_argument("portfolio_id")
    delete.add_argument("--yes", action="store_true", help="confirm")
    delete.set_defaults(handler=_delete)

    pause_all = ps.add_parser("pause-all", parents=[common], help="emergency stop: pause every active portfolio")
    pause_all.add_argument("--reason", required=True)
    pause_all.set_defaults(handler=_pause_all)

    tr = ps.add_parser("transfer", parents=[common], help="move cash between portfolios (logged)")
    tr.add_argument("--from", dest="from_id", required=True)
    tr.add_argument("--to", dest="to_id", required=True)
    tr.add_argument("--amount", required=True)
    tr.add_argument("--reason")
    tr.set_defaults(handler=_transfer)


def _engine():
    from ..db.engine import get_engine
    from ..db.migrate import ensure_schema

    return ensure_schema(get_engine())


def _services():
    from ..services import portfolios

    return portfolios


def _sync_partition(portfolio_id: int, present: bool) -> None:
    """Tell Dagster now; portfolio_partitions_sensor reconciles anything missed."""
    from .. import dagster_home

    try:
        instance = dagster_home.instance()
        if present:
            dagster_home.register_portfolio(instance, portfolio_id)
        else:
            dagster_home.unregister_portfolio(instance, portfolio_id)
    except Exception as exc:  # the ledger change stands; the sensor will catch up
        log.warning("could not update Dagster partitions for portfolio %s: %s", portfolio_id, exc)


def _one(row: dict, title: str) -> Output:
    shown = {k: row[k] for k in LIST_COLUMNS if k in row}
    return Output(row, f"{title}\n" + tabulate(shown.items(), tablefmt="plain"))


def _create(args) -> Output:
    svc = _services()
    new = svc.NewPortfolio.parse(
        name=args.name, strategy=args.strategy, balance=args.balance, config=args.config,
        description=args.description, max_position_size=args.max_position_size,
        max_total_exposure=args.max_total_exposure, max_positions=args.max_positions,
    )
    row = svc.create_portfolio(_engine(), new)
    _sync_partition(row["portfolio_id"], True)
    return _one(row, f"created portfolio {row['portfolio_id']}")


def _list(args) -> Output:
    rows = _services().list_portfolios(_engine(), status=args.status)
    table = tabulate([[r[c] for c in LIST_COLUMNS] for r in rows], headers=LIST_COLUMNS) if rows else "no portfolios"
    return Output({"portfolios": rows}, table)


def _show(args) -> Output:
    from ..services.status import describe_flag, flagged_positions

    engine = _engine()
    svc = _services()
    from ..services.reports import open_positions

    row = svc.get_portfolio(engine, args.portfolio_id)
    positions = open_positions(engine, row["portfolio_id"])  # with their markets' questions
    with engine.connect() as conn:
        flagged = flagged_positions(conn, row["portfolio_id"])
        transfers = svc.transfer_log(conn, row["portfolio_id"])
    # Marks are the displayed price; liquidation value is what the bids would pay now.
    cols = ["side", "shares", "avg_price", "cost_basis", "entry_mark", "current_price", "market_value",
            "liquidation_value", "unrealized_pnl", "settlement_flag"]
    shown = {k: row[k] for k in LIST_COLUMNS + ["liquidation_value"] if k in row}
    text = f"portfolio {row['portfolio_id']}: {row['name']}\n" + tabulate(shown.items(), tablefmt="plain")
    effective = _effective_config(row)
    text += "\n\n" + _config_text(row, effective)
    text += "\n\nopen positions\n" + (
        tabulate([[named(p["market_id"], p["question"], 60), *[p[c] for c in cols]] for p in positions],
                 headers=["market", *cols])
        if positions else "none"
    )
    text += "".join(f"\nflagged: {describe_flag(f)}" for f in flagged)
    if transfers:
        listed = [[t["timestamp"], t["amount"], (t["counterparty"] or "")
                   + ("" if t["counterparty_id"] is not None else " (deleted)"), t["reason"] or ""] for t in transfers]
        text += "\n\ntransfers\n" + tabulate(listed, headers=["at", "amount", "counterparty", "reason"])
    return Output({**row, "effective_config": effective, "positions": positions, "flagged_positions": flagged,
                   "transfers": transfers}, text)


def _update(args) -> Output:
    fields = ("name", "description", "strategy_config", "max_position_size", "max_total_exposure", "max_positions")
    changes = {f: getattr(args, f) for f in fields if getattr(args, f) is not None}
    if args.replace_config and "strategy_config" not in changes:
        raise InputError("--replace-config needs --config (use --config '{}' --replace-config to clear it)")
    row = _services().update_portfolio(_engine(), args.portfolio_id, changes, replace_config=args.replace_config)
    out = _one(row, f"updated portfolio {row['portfolio_id']}")
    out.text += "\n" + _config_text(row, _effective_config(row))
    return out


def _effective_config(row: dict) -> dict | None:
    """Strategy defaults overlaid by the stored config; None if it no longer validates."""
    from ..domain.strategies.base import ConfigError
    from ..domain.strategies.registry import get_strategy

    try:
        return get_strategy(row["strategy_type"]).validate_config(row["strategy_config"] or {})
    except ConfigError:
        return None


def _config_text(row: dict, effective: dict | None) -> str:
    """The stored overrides, then every key in effect (strategy defaults overlaid by them)."""
    overrides = row["strategy_config"] or {}
    lines = ["strategy config (set on this portfolio): " + (json.dumps(overrides, sort_keys=True) if overrides
                                                            else "none, all defaults")]
    if effective is None:
        lines.append("in effect: the stored config no longer validates; fix it with --config ... --replace-config")
    else:
        lines += ["in effect:"] + [f"  {key}: {json.dumps(effective[key])}" for key in sorted(effective)]
    return "\n".join(lines)


def _status_handler(status: str):
    def handler(args) -> Output:
        row = _services().set_status(_engine(), args.portfolio_id, status, args.reason)
        if status == "archived":
            _sync_partition(row["portfolio_id"], False)
        return _one(row, f"portfolio {row['portfolio_id']} is {row['status']}")
    return handler


def _delete(args) -> Output:
    if not args.yes:
        raise InputError("deleting removes the portfolio's whole ledger; add --yes to confirm")
    row = _services().delete_portfolio(_engine(), args.portfolio_id)
    _sync_partition(row["portfolio_id"], False)
    return Output({"deleted": row["portfolio_id"], "name": row["name"]},
                  f"deleted portfolio {row['portfolio_id']} ({row['name']})")


def _pause_all(args) -> Output:
    ids = _services().pause_all(_engine(), args.reason)
    return Output({"paused": ids}, f"paused {len(ids)} portfolios" + (f": {ids}" if ids else ""))


def _transfer(args) -> Output:
    from ..services.portfolio_keys import portfolio_names

    engine = _engine()
    row = _services().transfer(engine, args.from_id, args.to_id, args.amount, args.reason)
    names = portfolio_names(engine, [row["from_portfolio_id"], row["to_portfolio_id"]])
    source, target = (named(row[k], names.get(row[k]), 40) for k in ("from_portfolio_id", "to_portfolio_id"))
    return Output(row, f"moved {row['amount']} from {source} to {target}")
