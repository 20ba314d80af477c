"""What-if copies of a portfolio: `prescient backtest fork ID --at DATE`.

A fork is a new backtest portfolio holding what the source held at the end of DATE (UTC) -
cash, open positions, trades and daily history up to then - with the source's config merged with
the changes, replayed from the day after DATE through the last of the unbroken run of days with
market data after it (imported history, or live refreshes of past days). The market data
is shared: forks read the same imported history and import nothing.

Copied: the source as it stood at the end of DATE (services/standing: its trades, positions
and cash then; the trades are copies with their own ids and no `signal_id`), realized P&L, fees
and counters from those trades, and `portfolio_history` rows dated up to DATE. Not carried over:
signals still pending then (the replay generates the fork's own from the next day on).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select, text

from ..db.schema import portfolio_history, portfolio_positions, portfolios, trades
from ..errors import InputError
from .portfolios import get_portfolio, parse_config, parse_name
from .standing import standing_at

ZERO = Decimal(0)


@dataclass(frozen=True)
class Fork:
    portfolio_id: int
    source_id: int
    at: date
    replay_from: date
    replay_to: date
    cash: Decimal
    open_positions: int
    trades_copied: int
    history_copied: int


def parse_day(value: Any, field: str) -> date:
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise InputError(f"{field} must be a date YYYY-MM-DD, got {value!r}") from None


def last_replayable_day(engine: Engine, after: date) -> date | None:
    """The last day of the unbroken run of days after `after` that have market data to replay
    (a completed history import, or a past day of live refreshes); None when the next day has none."""
    from .backtest import replayable_days

    today = datetime.now(timezone.utc).date()
    have = replayable_days(engine, after + timedelta(days=1), today)
    last, day = None, after + timedelta(days=1)
    while day in have:
        last, day = day, day + timedelta(days=1)
    return last


def fork_portfolio(engine: Engine, source_id: int, at: date, config_changes: Any = None,
                   name: str | None = None) -> Fork:
    """Write the fork (one transaction: on bad input nothing is written) and return it, not yet
    replayed (`replay_fork` brings it to the last history day)."""
    from ..domain.strategies.registry import get_strategy

    changes = parse_config(config_changes)
    end = datetime.combine(at + timedelta(days=1), time(), timezone.utc)
    with engine.begin() as conn:
        source = get_portfolio(conn, source_id)
        first_day = _first_day(conn, source)
        if at < first_day - timedelta(days=1):
            raise InputError(f"portfolio {source_id} did not exist at the end of {at} (its first day is {first_day})")
        if source.get("mode") == "backtest":
            replayed = _last_replayed_day(conn, source_id)
            if replayed is None or at > replayed:
                raise InputError(f"backtest portfolio {source_id} has replayed only through {replayed}: "
                                 f"--at must not be later")
        last = last_replayable_day(engine, at)
        if last is None:
            raise InputError(f"--at {at} leaves nothing to replay: no market history of {at + timedelta(days=1)} "
                             f"(run `prescient history import` for the days after it)")
        config = {**(source["strategy_config"] or {}), **changes}
        get_strategy(source["strategy_type"]).validate_config(config)
        fork_name = parse_name(name) if name is not None else f"{source['name']} fork at {at}"
        if conn.execute(select(portfolios.c.portfolio_id).where(portfolios.c.name == fork_name)).first():
            raise InputError(f"a portfolio named {fork_name!r} already exists")

        then = standing_at(conn, source, end)
        transfers, copied, cash = then.transfers, then.trades, then.cash
        if cash < 0:
            raise InputError(f"portfolio {source_id}'s trades up to {at} do not leave a cash balance")
        fork_id = conn.execute(portfolios.insert().values(
            name=fork_name, description=f"fork of portfolio {source_id} at the end of {at}",
            strategy_type=source["strategy_type"], strategy_config=config,
            initial_balance=source["initial_balance"], current_balance=cash, net_transfers=transfers,
            max_position_size=source["max_position_size"], max_total_exposure=source["max_total_exposure"],
            max_positions=source["max_positions"], mode="backtest",
            backtest_from=at + timedelta(days=1), backtest_to=last,
        ).returning(portfolios.c.portfolio_id)).scalar_one()

        new_position = {}
        open_count, wins, closed = 0, 0, 0
        for position in then.positions:
            row = dict(position)
            row.update(portfolio_id=fork_id, signal_id=None)
            row.pop("position_id")
            new_position[position["position_id"]] = conn.execute(
                portfolio_positions.insert().values(**row).returning(portfolio_positions.c.position_id)).scalar_one()
            if row["status"] == "open":
                open_count += 1
            else:
                closed += 1
                wins += 1 if row["realized_pnl"] > 0 else 0
        if copied:
            conn.execute(trades.insert(), [{
                **{k: v for k, v in t.items() if k != "trade_id"}, "portfolio_id": fork_id, "signal_id": None,
                "position_id": new_position.get(t["position_id"]),
            } for t in copied])
        history = [dict(r._mapping) for r in conn.execute(
            select(portfolio_history).where(portfolio_history.c.portfolio_id == source_id,
                                            portfolio_history.c.snapshot_date <= at))]
        if history:
            conn.execute(portfolio_history.insert(), [
                {**{k: v for k, v in h.items() if k != "history_id"}, "portfolio_id": fork_id} for h in history])
        conn.execute(portfolios.update().where(portfolios.c.portfolio_id == fork_id).values(
            realized_pnl=sum((t["realized_pnl"] or ZERO for t in copied), ZERO),
            total_fees=sum((t["fee"] for t in copied), ZERO),
            trade_count=len(copied),
            total_trades_executed=sum(1 for t in copied if t["action"] == "buy"),
            total_winning_trades=wins, total_losing_trades=closed - wins,
            last_trade_at=max((t["executed_at"] for t in copied), default=None),
            last_updated=func.now(),
        ))
    return Fork(fork_id, source_id, at, at + timedelta(days=1), last, cash, open_count, len(copied), len(history))


def _first_day(conn, source: dict) -> date:
    created = source["created_at"].astimezone(timezone.utc).date()
    earliest = conn.execute(text(
        "SELECT least((SELECT min(snapshot_date) FROM portfolio_history WHERE portfolio_id = :pid), "
        "(SELECT min((executed_at AT TIME ZONE 'UTC')::date) FROM trades WHERE portfolio_id = :pid))"),
        {"pid": source["portfolio_id"]}).scalar()
    days = [created, earliest]
    if source.get("backtest_from"):
        days.append(source["backtest_from"])
    return min(d for d in days if d is not None)


def _last_replayed_day(conn, portfolio_id: int) -> date | None:
    return conn.execute(text(
        "SELECT max(day) FROM backtest_days WHERE portfolio_id = :pid AND replayed_at IS NOT NULL"),
        {"pid": portfolio_id}).scalar()


def replay_fork(engine: Engine, fork: Fork, progress=None) -> list:
    """Replay the fork from the day after its fork date through its last day with market data."""
    from .backtest import replay_through

    return replay_through(engine, fork.portfolio_id, fork.replay_to, progress=progress)
