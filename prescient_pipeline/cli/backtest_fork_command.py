"""`prescient backtest fork ID --at DATE [--config JSON] [--name N]`: a what-if copy of a portfolio
as it stood at the end of DATE, with a changed config, replayed to the last imported history."""

from __future__ import annotations

import sys

from . import Output


def register_fork(backtest_sub, common) -> None:
    f = backtest_sub.add_parser(
        "fork", parents=[common],
        help="copy a portfolio (live or backtest) as it stood at the end of a day, change its config, replay forward")
    f.add_argument("portfolio", metavar="ID", help="the portfolio to copy")
    f.add_argument("--at", required=True, metavar="YYYY-MM-DD", help="copy its state at the end of this UTC day")
    f.add_argument("--config", default=None, metavar="JSON", help="merged into the portfolio's config")
    f.add_argument("--name", default=None, help="the fork's name (default: '<name> fork at <date>')")
    f.set_defaults(handler=_fork)


def _fork(args) -> Output:
    from ..db.engine import get_engine
    from ..db.migrate import ensure_schema
    from ..services.backtest_fork import fork_portfolio, parse_day, replay_fork
    from ..services.portfolios import parse_config, parse_portfolio_id
    from ..services.reports import backtest_metrics, report

    source_id = parse_portfolio_id(args.portfolio)
    at = parse_day(args.at, "--at")
    changes = parse_config(args.config)
    engine = ensure_schema(get_engine())
    fork = fork_portfolio(engine, source_id, at, changes, args.name)

    def progress(day) -> None:
        print(f"{day.day} replayed: total value {day.total_value}", file=sys.stderr, flush=True)

    days = replay_fork(engine, fork, progress=None if args.json else progress)
    (row,) = report(engine, fork.portfolio_id)
    day_rows = [{"day": d.day, "total_value": d.total_value, "pnl": d.pnl, "fills": d.fills, "fees": d.fees,
                 "settlements": d.settlements, "exits": d.exits} for d in days]
    data = {"portfolio_id": fork.portfolio_id, "source_id": source_id, "at": at,
            "replayed_from": fork.replay_from, "replayed_to": fork.replay_to,
            "copied": {"cash": fork.cash, "open_positions": fork.open_positions, "trades": fork.trades_copied,
                       "history_days": fork.history_copied},
            "report": row, "backtest_metrics": backtest_metrics(engine, fork.portfolio_id), "days": day_rows}
    text = (f"portfolio {fork.portfolio_id} ({row['name']}): fork of {source_id} at the end of {at} "
            f"(cash {fork.cash}, {fork.open_positions} open positions, {fork.trades_copied} trades), "
            f"replayed {fork.replay_from} .. {fork.replay_to}: total value {row['total_value']}")
    return Output(data, text)
