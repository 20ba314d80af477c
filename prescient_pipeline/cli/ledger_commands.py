"""`prescient cycle | prices update | snapshot | report | trades | export`."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from tabulate import tabulate

from .. import dagster_home
from ..config import settings
from ..db.engine import get_engine
from ..db.migrate import ensure_schema
from ..services import reports
from ..services.portfolios import get_portfolio, parse_portfolio_id
from ..errors import InputError
from . import Output

REPORT_COLUMNS = ["portfolio_id", "name", "strategy_type", "cash", "positions_value", "total_value",
                  "realized_pnl", "unrealized_pnl", "fees", "open_positions", "trades", "win_rate",
                  "sharpe", "max_drawdown"]


def register(sub, common) -> None:
    c = sub.add_parser("cycle", parents=[common], help="run a whole trading cycle now (through Dagster)")
    c.add_argument("--portfolio", help="only this portfolio id")
    c.set_defaults(handler=_cycle)

    p = sub.add_parser("prices", help="price updates")
    p_sub = p.add_subparsers(dest="prices_command", required=True, metavar="ACTION")
    pu = p_sub.add_parser("update", parents=[common], help="mark, exit and settle now (through Dagster)")
    pu.set_defaults(handler=_prices)

    s = sub.add_parser("snapshot", parents=[common], help="write today's portfolio history now (through Dagster)")
    s.set_defaults(handler=_snapshot)

    r = sub.add_parser("report", parents=[common], help="value, P&L and metrics per portfolio")
    r.add_argument("--portfolio", help="only this portfolio id")
    r.set_defaults(handler=_report)

    t = sub.add_parser("trades", parents=[common], help="fills, newest first")
    t.add_argument("--portfolio", help="only this portfolio id")
    t.add_argument("--limit", default="50")
    t.set_defaults(handler=_trades)

    e = sub.add_parser("export", parents=[common], help="write every table to files, one per table")
    e.add_argument("--out", default=None, help="directory (default $PRESCIENT_HOME/exports)")
    e.add_argument("--format", default="csv", choices=("csv", "parquet"), help="file format (default csv)")
    e.add_argument("--snapshots", action="store_true",
                   help="also write market_snapshots (every observation of every market: can be large)")
    e.add_argument("--since", help="with --snapshots: only observations on or after this UTC day (YYYY-MM-DD)")
    e.add_argument("--until", help="with --snapshots: only observations on or before this UTC day (YYYY-MM-DD)")
    e.set_defaults(handler=_export)


def _engine():
    return ensure_schema(get_engine())


def _portfolio_filter(engine, value) -> int | None:
    if value is None:
        return None
    return get_portfolio(engine, parse_portfolio_id(value))["portfolio_id"]


def _cycle(args) -> Output:
    from ..defs import runner

    engine = _engine()
    pid = _portfolio_filter(engine, args.portfolio)
    instance = dagster_home.instance()
    day = datetime.now(timezone.utc).date()
    result = runner.run_cycle(instance, engine, day, pid)
    rows = reports.report(engine, pid)
    data = {"date": day, "refresh_run": result.refresh_run, "portfolio_ids": result.portfolio_ids,
            "signals_run": result.signals_run, "execution_run": result.execution_run,
            "snapshot_run": result.snapshot_run, "portfolios": rows}
    text = f"cycle {day}: {len(result.portfolio_ids)} portfolios\n" + _report_table(rows)
    return Output(data, text)


def _prices(args) -> Output:
    from ..defs import runner

    _engine()
    run_id = runner.update_prices(dagster_home.instance())
    rows = reports.report(_engine())
    return Output({"run_id": run_id, "portfolios": rows}, f"price update {run_id}\n" + _report_table(rows))


def _snapshot(args) -> Output:
    from ..defs import runner

    _engine()
    run_id = runner.snapshot(dagster_home.instance())
    rows = reports.report(_engine())
    return Output({"run_id": run_id, "portfolios": rows}, f"snapshot {run_id}\n" + _report_table(rows))


def _report_table(rows: list[dict]) -> str:
    if not rows:
        return "no portfolios"
    return tabulate([[r[c] for c in REPORT_COLUMNS] for r in rows], headers=REPORT_COLUMNS, floatfmt=".2f")


def _report(args) -> Output:
    engine = _engine()
    rows = reports.report(engine, _portfolio_filter(engine, args.portfolio))
    return Output({"portfolios": rows}, _report_table(rows))


def _trades(args) -> Output:
    engine = _engine()
    try:
        limit = int(args.limit)
    except ValueError:
        raise InputError(f"--limit must be a whole number, got {args.limit!r}") from None
    if limit <= 0:
        raise InputError("--limit must be positive")
    rows = reports.recent_trades(engine, _portfolio_filter(engine, args.portfolio), limit)
    cols = ["trade_id", "portfolio_id", "executed_at", "action", "market_id", "side", "shares", "price",
            "amount", "fee", "realized_pnl", "reason"]
    text = tabulate([[r[c] for c in cols] for r in rows], headers=cols) if rows else "no trades"
    return Output({"trades": rows}, text)


def _export(args) -> Output:
    from ..services.exports import SnapshotWindow, export_tables

    window = SnapshotWindow.parse(args.snapshots, args.since, args.until)
    out = Path(args.out) if args.out else settings().exports_dir
    written = export_tables(_engine(), out, args.format, window)
    data = {"format": args.format, "tables": {name: {"path": str(w["path"]), "rows": w["rows"]}
                                              for name, w in written.items()}}
    text = tabulate([[name, w["rows"], w["path"]] for name, w in written.items()], headers=["table", "rows", "file"])
    return Output(data, text)
