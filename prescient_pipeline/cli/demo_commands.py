"""`prescient demo`: offline end to end, then a report table and CSV exports."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

from ..config import running_simulator_url, settings
from ..errors import InputError
from . import Output
from .ledger_commands import _report_table


def register(sub, common) -> None:
    d = sub.add_parser("demo", parents=[common],
                       help="offline end to end: simulator + example portfolios + N simulated days")
    d.add_argument("--days", type=int, default=7, help="simulated days (default 7)")
    d.add_argument("--seed", type=int, default=7, help="simulator seed")
    d.add_argument("--events", type=int, default=300, help="simulated events (default 300)")
    d.add_argument("--price-every", type=int, default=5,
                   help="simulated minutes between price updates (default 5, as in production)")
    d.add_argument("--runs-every", type=int, default=None,
                   help="every this many simulated minutes a price update is an update_prices_job run "
                        "plotted in the UI; the others call the same service directly (default: every "
                        "four hours, rounded up to a multiple of --price-every)")
    d.add_argument("--history-days", type=int, default=0,
                   help="days of simulated past before the demo's first day, for `prescient history import` (default 0)")
    d.add_argument("--reset", action="store_true", help="wipe every table of the app database first")
    d.set_defaults(handler=_demo)


def _demo(args) -> Output:
    from .simulator_commands import check_history_days

    check_history_days(args.history_days)
    if running_simulator_url(settings().home):
        raise InputError("`prescient dev --offline` is serving this home's offline world; stop it before "
                         "running the demo here, or set PRESCIENT_HOME to another directory")
    # The demo's days are past days: its code location's partitions must begin with its first
    # one (later, the ledger's first day is that day, and every process agrees).
    first_day = (datetime.now(timezone.utc) - timedelta(days=args.days)).date()
    configured = settings().partitions_start
    if configured and configured > first_day.isoformat():
        raise InputError(f"PRESCIENT_PARTITIONS_START is {configured}, after the demo's first day {first_day}: "
                         "unset it or give fewer --days")
    os.environ["PRESCIENT_PARTITIONS_START"] = configured or first_day.isoformat()

    from .. import dagster_home
    from ..db.engine import get_engine
    from ..db.migrate import ensure_schema
    from ..defs.demo import run_demo

    engine = ensure_schema(get_engine())
    instance = dagster_home.instance()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out = settings().exports_dir / f"demo-{stamp}"
    quiet = getattr(args, "json", False)
    result = run_demo(instance, engine, days=args.days, seed=args.seed, events=args.events,
                      price_every=args.price_every, runs_every=args.runs_every, reset=args.reset, exports_dir=out,
                      history_days=args.history_days,
                      progress=(lambda _: None) if quiet else (lambda line: print(line, flush=True)))
    data = {
        "days": result.days, "start": result.start, "end": result.end, "seconds": round(result.seconds, 1),
        "dagster_runs": result.runs, "price_updates": result.price_updates, "portfolios": result.portfolios,
        "exports": {k: str(v) for k, v in result.exports.items()},
        "report": str(result.report),
    }
    text = "\n".join([
        f"\n{result.days} simulated days ({result.start:%Y-%m-%d} to {result.end:%Y-%m-%d}) in "
        f"{result.seconds:.0f}s: {result.price_updates} price updates, {result.runs} Dagster runs",
        "",
        _report_table(result.portfolios),
        "",
        "CSV exports:",
        *[f"  {path}" for path in result.exports.values()],
        "",
        f"HTML report (equity curves, positions and trades by name; opens offline): {result.report}",
        "",
        "Next: open the HTML report in a browser, `prescient report`, or `prescient dev --offline` to browse "
        "the runs in the Dagster UI (it serves this demo's world).",
    ])
    return Output(data, text)
