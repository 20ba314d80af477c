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
    r.add_argument("--html", metavar="DIR",
                   help="also write the HTML report (index.html + one page per portfolio) into DIR")
    r.add_argument("--self-contained", action="store_true",
                   help="with --html: inline the charting library into every page (each file opens alone)")
    r.set_defaults(handler=_report)

    t = sub.add_parser("trades", parents=[common], help="fills, newest first")
    t.add_argument("--portfolio", help="only this portfolio id")
    t.add_argument("--limit", default="50")
    t.set_defaults(handler=_trades)

    e = sub.add_parser("export", parents=[common], help="write CSVs of every table")
    e.add_argument("--out", default=None, help="directory (default $PRESCIENT_HOME/exports)")
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
    data = {"date": day, "refresh_run": result.refresh_run, "signal_runs": result.signal_runs,
            "execution_runs": result.execution_runs, "snapshot_run": result.snapshot_run, "portfolios": rows}
    text = f"cycle {day}: {len(result.execution_runs)} portfolios\n" + _report_table(rows)
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
    if args.self_contained and not args.html:
        raise InputError("--self-contained only applies with --html DIR")
    out = _html_dir(args.html) if args.html else None
    engine = _engine()
    pid = _portfolio_filter(engine, args.portfolio)
    rows = reports.report(engine, pid)
    if out is None:
        return Output({"portfolios": rows}, _report_table(rows))
    from ..services.html_report import write_report

    files = write_report(engine, out, pid, self_contained=args.self_contained)
    pages = {pid: str(path) for pid, path in files.pages.items()}
    return Output({"portfolios": rows, "html": str(files.index), "pages": pages},
                  _report_table(rows) + f"\n\nHTML report: {files.index}")


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
    rows = reports.recent_trades(engine, _portfolio_filter(engine, args.portfolio), limit)
    cols = ["trade_id", "portfolio", "executed_at", "action", "market", "side", "shares", "price",
            "amount", "fee", "realized_pnl", "reason"]
    table = [[named(r["portfolio_id"], r["portfolio_name"], 24), named(r["market_id"], r["question"], 60)]
             for r in rows]
    text = tabulate([[r["trade_id"], portfolio, r["executed_at"], r["action"], market, *[r[c] for c in cols[5:]]]
                     for r, (portfolio, market) in zip(rows, table)], headers=cols) if rows else "no trades"
    return Output({"trades": rows}, text)


def named(ident, name, width: int) -> str:
    """`name (id)`, the name cut to `width` characters so a table stays readable."""
    if not name:
        return str(ident)
    name = " ".join(str(name).split())
    return f"{name[:width - 1]}… ({ident})" if len(name) > width else f"{name} ({ident})"


def _export(args) -> Output:
    out = Path(args.out) if args.out else settings().exports_dir
    written = reports.export_csv(_engine(), out)
    return Output({name: str(path) for name, path in written.items()},
                  "\n".join(f"{name}: {path}" for name, path in written.items()))
