"""`prescient backtest run`: a backtest portfolio replaying imported market history day by day;
`prescient backtest parity`: a live portfolio's past day replayed and compared with its signals."""

from __future__ import annotations

import sys
from datetime import date

from tabulate import tabulate

from ..errors import InputError
from . import Output
from .backtest_fork_command import register_fork

DAY_COLUMNS = ["day", "total_value", "pnl", "fills", "fees", "settlements", "exits"]


def register(sub, common) -> None:
    backtest = sub.add_parser("backtest", help="replay a strategy over imported market history")
    backtest_sub = backtest.add_subparsers(dest="backtest_command", required=True, metavar="ACTION")
    run = backtest_sub.add_parser(
        "run", parents=[common],
        help="create a backtest portfolio and replay the days --from..--to (run `prescient history import` first)")
    run.add_argument("--strategy", required=True, help="see `prescient strategies`")
    run.add_argument("--config", default=None, metavar="JSON", help="strategy config overrides (JSON object)")
    run.add_argument("--from", dest="day_from", required=True, metavar="YYYY-MM-DD", help="first day (UTC)")
    run.add_argument("--to", dest="day_to", required=True, metavar="YYYY-MM-DD", help="last day (UTC), inclusive")
    run.add_argument("--balance", required=True, help="starting cash in USD")
    run.add_argument("--name", default=None, help="portfolio name (default: strategy and window)")
    run.set_defaults(handler=_run)
    register_fork(backtest_sub, common)
    parity = backtest_sub.add_parser(
        "parity", parents=[common],
        help="replay a live portfolio's past day and compare with the signals it recorded (exit 1 if they differ)")
    parity.add_argument("portfolio", metavar="ID", help="a live portfolio")
    parity.add_argument("--day", required=True, metavar="YYYY-MM-DD", help="a day it signalled (UTC)")
    parity.set_defaults(handler=_parity)


def _day(text: str, flag: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"{flag} must be a date YYYY-MM-DD, not {text!r}") from None


def _run(args) -> Output:
    from ..db.engine import get_engine
    from ..db.migrate import ensure_schema
    from ..services.backtest import create_backtest, replay_through
    from ..services.reports import report
    from .ledger_commands import _report_table

    day_from, day_to = _day(args.day_from, "--from"), _day(args.day_to, "--to")
    if day_from > day_to:
        raise InputError(f"--from {day_from} is after --to {day_to}")
    engine = ensure_schema(get_engine())
    portfolio = create_backtest(engine, args.strategy, args.config, args.balance, day_from, day_to, args.name)
    pid = portfolio["portfolio_id"]
    print(f"backtest portfolio {pid} ({portfolio['name']}): replaying {day_from}..{day_to}", file=sys.stderr)

    def progress(day) -> None:
        print(f"{day.day}: total {day.total_value:.2f}, P&L {day.pnl:+.2f}, {day.fills} fills, "
              f"{day.settlements} settlements", file=sys.stderr)

    days = [d.as_dict() for d in replay_through(engine, pid, day_to, progress=progress)]
    rows = report(engine, pid)
    text = (_report_table(rows) + "\n\n"
            + tabulate([[d[c] for c in DAY_COLUMNS] for d in days], headers=DAY_COLUMNS, floatfmt=".2f"))
    return Output({"portfolio_id": pid, "report": rows[0] if rows else {}, "days": days}, text)


PARITY_COLUMNS = ["market_id", "side", "live_amount", "replayed_amount", "live_price", "replayed_price", "what"]


def _parity(args) -> Output:
    from ..db.engine import get_engine
    from ..db.migrate import ensure_schema
    from ..services.parity import check_parity
    from ..services.portfolios import parse_portfolio_id

    portfolio_id = parse_portfolio_id(args.portfolio)
    day = _day(args.day, "--day")
    parity = check_parity(ensure_schema(get_engine()), portfolio_id, day)
    verdict = "the same signals" if parity.same else f"{len(parity.differences)} differences"
    text = (f"portfolio {portfolio_id} on {day}, as of {parity.as_of.isoformat()}: {parity.live} signals recorded, "
            f"{parity.replayed} replayed: {verdict}")
    if parity.differences:
        text += "\n" + tabulate([[d[c] for c in PARITY_COLUMNS] for d in parity.differences], headers=PARITY_COLUMNS)
    return Output(parity.as_dict(), text, exit_code=0 if parity.same else 1)
