"""`prescient history import`: fill the market history of past days from Polymarket."""

from __future__ import annotations

import sys
from datetime import date, datetime, timezone

from tabulate import tabulate

from ..errors import InputError
from . import Output

DAY_COLUMNS = ["day", "status", "markets", "points", "resolutions", "without_history"]


def register(sub, common) -> None:
    history = sub.add_parser("history", help="market history for backtests")
    history_sub = history.add_subparsers(dest="history_command", required=True, metavar="ACTION")
    imp = history_sub.add_parser(
        "import", parents=[common],
        help="import every market open in a window (closed and resolved ones too), its price path and resolution")
    imp.add_argument("--from", dest="day_from", required=True, metavar="YYYY-MM-DD", help="first day (UTC)")
    imp.add_argument("--to", dest="day_to", required=True, metavar="YYYY-MM-DD", help="last day (UTC), inclusive")
    imp.add_argument("--fidelity", default="60", metavar="MINUTES", help="minutes between observations (default 60)")
    imp.add_argument("--min-volume", default=None, metavar="X",
                     help="only markets whose volume is at least X dollars (today's volume: see README)")
    imp.add_argument("--force", action="store_true", help="import again days already imported")
    imp.set_defaults(handler=_import)


def _day(text: str, flag: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{flag} must be a date YYYY-MM-DD, not {text!r}") from None


def _number(text: str | None, flag: str, kind):
    if text is None:
        return None
    try:
        return kind(text)
    except ValueError:
        raise InputError(f"{flag} must be a {'whole ' if kind is int else ''}number, not {text!r}") from None


def _import(args) -> Output:
    from ..db.engine import get_engine
    from ..db.migrate import ensure_schema
    from ..polymarket.client import PolymarketClient
    from ..services.market_history import import_history, validate_window

    day_from, day_to = _day(args.day_from, "--from"), _day(args.day_to, "--to")
    fidelity = _number(args.fidelity, "--fidelity", int)
    min_volume = _number(args.min_volume, "--min-volume", float)
    validate_window(day_from, day_to, fidelity, min_volume, datetime.now(timezone.utc))

    def progress(stage: str, day) -> None:
        if stage in ("imported", "skipped"):
            detail = "" if stage == "skipped" else (
                f": {day.markets} markets, {day.points} points, {day.resolutions} resolutions"
                + ("" if day.complete else " (day under way: imported again next time)"))
            print(f"{day.day} {stage}{detail}", file=sys.stderr, flush=True)

    with PolymarketClient.from_settings() as client:
        report = import_history(ensure_schema(get_engine()), client, day_from, day_to, fidelity, min_volume,
                                force=args.force, progress=progress)
    totals = report.totals()
    data = {"from": day_from, "to": day_to, "fidelity": fidelity, "min_volume": min_volume,
            "listed": report.listed, "rejected": dict(report.rejected), **totals,
            "days": [d.as_dict() for d in report.days]}
    table = tabulate([[d.as_dict()[c] for c in DAY_COLUMNS] for d in report.days], headers=DAY_COLUMNS)
    text = "\n".join([
        f"market history {day_from} .. {day_to} every {fidelity} min: {totals['days_imported']} days imported, "
        f"{totals['days_skipped']} skipped (already imported); {totals['markets']} markets, {totals['points']} points, "
        f"{totals['resolutions']} resolutions",
        table,
    ])
    if report.rejected:
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(report.rejected.items()))
        text += f"\nkept out of {report.listed} listed markets (not usable as binary markets): {reasons}"
    return Output(data, text)
