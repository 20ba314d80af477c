"""`prescient import prescient-os`: bring portfolios over from a Prescient OS database."""

from __future__ import annotations

import logging

from tabulate import tabulate

from . import Output

log = logging.getLogger(__name__)

COLUMNS = ["source_portfolio_id", "portfolio_id", "name", "strategy_type", "open_positions", "closed_positions",
           "old_total_value", "new_total_value", "total_value_change", "old_pnl", "new_pnl", "pnl_change"]


def register(sub, common) -> None:
    p = sub.add_parser("import", help="bring portfolios over from another system")
    ps = p.add_subparsers(dest="import_command", required=True, metavar="SOURCE")
    pos = ps.add_parser("prescient-os", parents=[common],
                        help="portfolios, positions, trades, signals and history from a Prescient OS database")
    pos.add_argument("--url", required=True, help="the Prescient OS PostgreSQL URL (only read)")
    pos.add_argument("--dry-run", action="store_true", help="recompute and report; write nothing")
    pos.add_argument("--name-suffix", default="",
                     help="appended to every imported name (a name already taken here is an error otherwise)")
    pos.set_defaults(handler=_prescient_os)


def _prescient_os(args) -> Output:
    from ..db.engine import get_engine
    from ..db.migrate import ensure_schema
    from ..services.prescient_os_import import import_prescient_os

    engine = ensure_schema(get_engine())
    result = import_prescient_os(engine, args.url, dry_run=args.dry_run, name_suffix=args.name_suffix)
    rows = result["portfolios"]
    if not args.dry_run:
        _register_partitions([r["portfolio_id"] for r in rows])
    head = ("dry run, nothing written: " if args.dry_run else "imported ") + f"{len(rows)} portfolios from Prescient OS"
    lines = [head, tabulate([[r[c] for c in COLUMNS] for r in rows], headers=COLUMNS, floatfmt=".2f") if rows else ""]
    lines += [f"note: {n}" for n in result["notes"]]
    lines += [f"portfolio {r['source_portfolio_id']} ({r['name']}): {n}" for r in rows for n in r["notes"]]
    return Output(result, "\n".join(line for line in lines if line))


def _register_partitions(ids: list[int]) -> None:
    """Tell Dagster now; portfolio_partitions_sensor reconciles anything missed."""
    from .. import dagster_home

    try:
        instance = dagster_home.instance()
        for pid in ids:
            dagster_home.register_portfolio(instance, pid)
    except Exception as exc:  # the import stands; the sensor will catch up
        log.warning("could not add Dagster partitions for imported portfolios: %s", exc)
