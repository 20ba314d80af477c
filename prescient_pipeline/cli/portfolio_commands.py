"""`prescient portfolio ...`: manage portfolios from the command line."""

from __future__ import annotations

import logging

from tabulate import tabulate

from .. import dagster_home
from ..db.engine import get_engine
from ..db.migrate import ensure_schema
from ..errors import InputError
from ..services import portfolios as svc
from ..services import reports
from ..services.portfolio_keys import portfolio_names
from . import Output
from .ledger_commands import named

log = logging.getLogger(__name__)

LIST_COLUMNS = ["portfolio_id", "name", "strategy_type", "status", "initial_balance", "current_balance",
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
    lst.add_argument("--status", choices=svc.STATUSES)
    lst.set_defaults(handler=_list)

    show = ps.add_parser("show", parents=[common], help="a portfolio with its open positions")
    show.add_argument("portfolio_id")
    show.set_defaults(handler=_show)

    upd = ps.add_parser("update", parents=[common], help="change name, description, config or limits")
    upd.add_argument("portfolio_id")
    upd.add_argument("--name")
    upd.add_argument("--description")
    upd.add_argument("--config", dest="strategy_config", help="strategy config overrides (JSON), replaces the old")
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
    return ensure_schema(get_engine())


def _sync_partition(portfolio_id: int, present: bool) -> None:
    """Tell Dagster now; portfolio_partitions_sensor reconciles anything missed."""
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
    new = svc.NewPortfolio.parse(
        name=args.name, strategy=args.strategy, balance=args.balance, config=args.config,
        description=args.description, max_position_size=args.max_position_size,
        max_total_exposure=args.max_total_exposure, max_positions=args.max_positions,
    )
    row = svc.create_portfolio(_engine(), new)
    _sync_partition(row["portfolio_id"], True)
    return _one(row, f"created portfolio {row['portfolio_id']}")


def _list(args) -> Output:
    rows = svc.list_portfolios(_engine(), status=args.status)
    table = tabulate([[r[c] for c in LIST_COLUMNS] for r in rows], headers=LIST_COLUMNS) if rows else "no portfolios"
    return Output({"portfolios": rows}, table)


def _show(args) -> Output:
    engine = _engine()
    row = svc.get_portfolio(engine, args.portfolio_id)
    positions = reports.open_positions(engine, row["portfolio_id"])
    cols = ["side", "shares", "avg_price", "cost_basis", "current_price", "market_value", "unrealized_pnl"]
    text = _one(row, f"portfolio {row['portfolio_id']}: {row['name']}").text
    text += "\n\nopen positions\n" + (
        tabulate([[named(p["market_id"], p["question"], 60), *[p[c] for c in cols]] for p in positions],
                 headers=["market", *cols])
        if positions else "none"
    )
    return Output({**row, "positions": positions}, text)


def _update(args) -> Output:
    fields = ("name", "description", "strategy_config", "max_position_size", "max_total_exposure", "max_positions")
    changes = {f: getattr(args, f) for f in fields if getattr(args, f) is not None}
    row = svc.update_portfolio(_engine(), args.portfolio_id, changes)
    return _one(row, f"updated portfolio {row['portfolio_id']}")


def _status_handler(status: str):
    def handler(args) -> Output:
        row = svc.set_status(_engine(), args.portfolio_id, status, args.reason)
        if status == "archived":
            _sync_partition(row["portfolio_id"], False)
        return _one(row, f"portfolio {row['portfolio_id']} is {row['status']}")
    return handler


def _delete(args) -> Output:
    if not args.yes:
        raise InputError("deleting removes the portfolio's whole ledger; add --yes to confirm")
    row = svc.delete_portfolio(_engine(), args.portfolio_id)
    _sync_partition(row["portfolio_id"], False)
    return Output({"deleted": row["portfolio_id"], "name": row["name"]},
                  f"deleted portfolio {row['portfolio_id']} ({row['name']})")


def _pause_all(args) -> Output:
    ids = svc.pause_all(_engine(), args.reason)
    return Output({"paused": ids}, f"paused {len(ids)} portfolios" + (f": {ids}" if ids else ""))


def _transfer(args) -> Output:
    engine = _engine()
    row = svc.transfer(engine, args.from_id, args.to_id, args.amount, args.reason)
    names = portfolio_names(engine, [row["from_portfolio_id"], row["to_portfolio_id"]])
    source, target = (named(row[k], names.get(row[k]), 40) for k in ("from_portfolio_id", "to_portfolio_id"))
    return Output(row, f"moved {row['amount']} from {source} to {target}")
