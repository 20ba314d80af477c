"""`prescient cycle | prices update | snapshot | report | trades | export`."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from tabulate import tabulate

from ..config import settings
from ..errors import InputError
from . import Output
from .api_reachability import require_api

# The database layers, and Dagster for the commands that run jobs, are imported in the handlers,
# so the commands that only read the ledger answer fast (benchmarks/bench_cli.py).

REPORT_COLUMNS = ["portfolio_id", "name", "strategy_type", "mode", "cash", "positions_value", "total_value", "liquidation_value",
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
    r.add_argument("--html", metavar="DIR",
                   help="also write the HTML report (index.html + one page per portfolio) into DIR")
    r.add_argument("--self-contained", action="store_true",
                   help="with --html: inline the charting library into every page (each file opens alone)")
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
    from ..db.engine import get_engine
    from ..db.migrate import ensure_schema

    return ensure_schema(get_engine())


def _reports():
    from ..services import reports

    return reports


def _portfolio_filter(engine, value) -> int | None:
    if value is None:
        return None
    from ..services.portfolios import get_portfolio, parse_portfolio_id

    return get_portfolio(engine, parse_portfolio_id(value))["portfolio_id"]


def _instance():
    from .. import dagster_home

    return dagster_home.instance()


def _cycle(args) -> Output:
    engine = _engine()
    pid = _portfolio_filter(engine, args.portfolio)
    require_api()
    from ..defs import runner

    instance = _instance()
    day = datetime.now(timezone.utc).date()
    result = runner.run_cycle(instance, engine, day, pid)
    rows = _reports().report(engine, pid)
    data = {"date": day, "refresh_run": result.refresh_run, "portfolio_ids": result.portfolio_ids,
            "signals_run": result.signals_run, "execution_run": result.execution_run,
            "snapshot_run": result.snapshot_run, "portfolios": rows}
    text = f"cycle {day}: {len(result.portfolio_ids)} portfolios\n" + _report_table(rows)
    return Output(data, text)


def _prices(args) -> Output:
    _engine()
    require_api()
    from ..defs import runner

    run_id = runner.update_prices(_instance())
    rows = _reports().report(_engine())
    return Output({"run_id": run_id, "portfolios": rows}, f"price update {run_id}\n" + _report_table(rows))


def _snapshot(args) -> Output:
    from ..defs import runner

    _engine()
    run_id = runner.snapshot(_instance())
    rows = _reports().report(_engine())
    return Output({"run_id": run_id, "portfolios": rows}, f"snapshot {run_id}\n" + _report_table(rows))


def _report_table(rows: list[dict]) -> str:
    if not rows:
        return "no portfolios"
    return tabulate([[r[c] for c in REPORT_COLUMNS] for r in rows], headers=REPORT_COLUMNS, floatfmt=".2f")


def _report(args) -> Output:
    if args.self_contained and not args.html:
        raise InputError("--self-contained only applies with --html DIR")
    out = _html_dir(args.html) if args.html else None
    engine = _engine()
    from ..services.status import describe_flag, flagged_positions

    pid = _portfolio_filter(engine, args.portfolio)
    rows = _reports().report(engine, pid)
    flagged = flagged_positions(engine, pid)
    text = _report_table(rows) + "".join(f"\nflagged: {describe_flag(f)}" for f in flagged)
    metrics = {r["portfolio_id"]: _reports().backtest_metrics(engine, r["portfolio_id"]) for r in rows}
    if pid is not None:
        text += "\n" + _metrics_text(metrics[pid])
    data = {"portfolios": rows, "flagged_positions": flagged, "backtest_metrics": metrics}
    if out is None:
        return Output(data, text)
    from ..services.html_report import write_report

    files = write_report(engine, out, pid, self_contained=args.self_contained)
    pages = {pid: str(path) for pid, path in files.pages.items()}
    return Output({**data, "html": str(files.index), "pages": pages}, text + f"\n\nHTML report: {files.index}")


def _metrics_text(m: dict) -> str:
    def show(value, fmt):
        return "n/a" if value is None else format(value, fmt)

    return (f"entries settled {m['settled_entries']}, Brier score {show(m['brier_score'], '.4f')}; "
            f"return per capital-day {show(m['return_per_capital_day'], '.4%')} over {m['capital_days']:.1f} "
            f"capital-days; fees {m['fees_paid']:.2f} + slippage {m['slippage_paid']:.2f} vs the mid "
            f"({show(m['execution_cost_bps'], '.1f')} bps of {m['traded_notional']:.2f} traded); "
            f"fills from a book {m['fills_from_book']}, from history only {m['fills_from_history']}")


def _html_dir(value: str) -> Path:
    out = Path(value).expanduser()
    if out.exists() and not out.is_dir():
        raise InputError(f"--html must be a directory, and {value} is a file")
    return out


def _trades(args) -> Output:
    engine = _engine()
    try:
        limit = int(args.limit)
    except ValueError:
        raise InputError(f"--limit must be a whole number, got {args.limit!r}") from None
    if limit <= 0:
        raise InputError("--limit must be positive")
    rows = _reports().recent_trades(engine, _portfolio_filter(engine, args.portfolio), limit)
    cols = ["trade_id", "portfolio", "mode", "executed_at", "action", "market", "side", "shares", "price",
            "amount", "fee", "realized_pnl", "reason", "evidence"]
    table = [[named(r["portfolio_id"], r["portfolio_name"], 24), named(r["market_id"], r["question"], 60)]
             for r in rows]
    text = tabulate([[r["trade_id"], portfolio, r["mode"], r["executed_at"], r["action"], market,
                      *[r[c] for c in cols[6:]]]
                     for r, (portfolio, market) in zip(rows, table)], headers=cols) if rows else "no trades"
    return Output({"trades": rows}, text)


def named(ident, name, width: int) -> str:
    """`name (id)`, the name cut to `width` characters so a table stays readable."""
    if not name:
        return str(ident)
    name = " ".join(str(name).split())
    return f"{name[:width - 1]}… ({ident})" if len(name) > width else f"{name} ({ident})"


def _export(args) -> Output:
    from ..services.exports import SnapshotWindow, export_tables

    window = SnapshotWindow.parse(args.snapshots, args.since, args.until)
    out = Path(args.out) if args.out else settings().exports_dir
    written = export_tables(_engine(), out, args.format, window)
    data = {"format": args.format, "tables": {name: {"path": str(w["path"]), "rows": w["rows"]}
                                              for name, w in written.items()}}
    text = tabulate([[name, w["rows"], w["path"]] for name, w in written.items()], headers=["table", "rows", "file"])
    return Output(data, text)
