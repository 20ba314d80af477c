"""A portfolio's strategy for one day: read the universe as of the cycle time, write signals.

Re-running a (day, portfolio) replaces that day's pending signals and never touches executed or
rejected ones, under the same portfolio row lock that execution takes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone

import pandas as pd
from sqlalchemy import Engine, and_, delete, func, select

from ..config import settings
from ..db.schema import portfolio_positions, trading_signals
from ..domain.market_frame import with_derived
from ..domain.strategies.base import StrategyContext
from ..domain.strategies.registry import get_strategy
from .market_store import universe_as_of
from .portfolios import get_portfolio

log = logging.getLogger(__name__)


def cycle_time_of_day(cron: str | None = None) -> time:
    """The time of day of the daily cycle, read from its cron ("M H * * *"); midnight otherwise."""
    parts = (cron or settings().cycle_cron).split()
    try:
        return time(int(parts[1]), int(parts[0]), tzinfo=timezone.utc)
    except (IndexError, ValueError):
        return time(0, 0, tzinfo=timezone.utc)


def as_of_for(cycle_date: date, now: datetime | None = None) -> datetime:
    """Today's partition uses the current markets; a past day, that day's cycle time."""
    now = now or datetime.now(timezone.utc)
    if cycle_date >= now.date():
        return now
    return datetime.combine(cycle_date, cycle_time_of_day())


@dataclass
class SignalRun:
    portfolio_id: int
    cycle_date: date
    as_of: datetime
    strategy_type: str
    skipped: str | None = None
    funnel: list[tuple[str, int]] = field(default_factory=list)
    signals: pd.DataFrame = field(default_factory=pd.DataFrame)
    replaced: int = 0
    kept_processed: int = 0


def universe_for(engine: Engine, as_of: datetime) -> pd.DataFrame:
    """The market universe as of a cycle time, with the columns every strategy derives from it:
    read once and shared by every portfolio that trades at that time (strategies never modify it)."""
    return with_derived(universe_as_of(engine, as_of), as_of)


def generate_signals(engine: Engine, portfolio_id: int, cycle_date: date, as_of: datetime,
                     universe: pd.DataFrame | None = None) -> SignalRun:
    """A portfolio's signals for `cycle_date`, from `universe` (`universe_for(engine, as_of)`,
    read here when not given)."""
    portfolio = get_portfolio(engine, portfolio_id)
    run = SignalRun(portfolio["portfolio_id"], cycle_date, as_of, portfolio["strategy_type"])
    if portfolio["status"] != "active":
        run.skipped = f"portfolio {portfolio_id} is {portfolio['status']}: no signals"
        return run

    markets = universe if universe is not None else universe_for(engine, as_of)
    with engine.connect() as conn:
        held = conn.execute(
            select(portfolio_positions.c.market_id, portfolio_positions.c.market_value, portfolio_positions.c.cost_basis)
            .where(portfolio_positions.c.portfolio_id == run.portfolio_id, portfolio_positions.c.status == "open")
        ).all()
    cash = float(portfolio["current_balance"])
    positions_value = sum(float(v if v is not None else c) for _, v, c in held)
    ctx = StrategyContext(
        as_of=as_of,
        cash=cash,
        equity=cash + positions_value,
        held_market_ids=frozenset(m for m, _, _ in held),
        max_position_size=float(portfolio["max_position_size"]) if portfolio["max_position_size"] else None,
    )
    result = get_strategy(run.strategy_type).run(markets, portfolio["strategy_config"], ctx)
    run.funnel = result.funnel
    run.signals = result.signals
    _replace_pending(engine, run)
    return run


def _replace_pending(engine: Engine, run: SignalRun) -> None:
    same_partition = and_(
        trading_signals.c.portfolio_id == run.portfolio_id, trading_signals.c.cycle_date == run.cycle_date
    )
    pending = and_(same_partition, trading_signals.c.executed.is_(False), trading_signals.c.rejection_reason.is_(None))
    with engine.begin() as conn:
        get_portfolio(conn, run.portfolio_id, for_update=True)  # execution holds this lock too
        run.replaced = conn.execute(delete(trading_signals).where(pending)).rowcount
        run.kept_processed = conn.execute(
            select(func.count()).select_from(trading_signals).where(same_partition)
        ).scalar_one()
        rows = [
            {
                "portfolio_id": run.portfolio_id,
                "strategy_type": run.strategy_type,
                "cycle_date": run.cycle_date,
                "as_of": run.as_of,
                **{k: (None if pd.isna(v) else v) for k, v in rec.items()},
            }
            for rec in run.signals.to_dict("records")
        ]
        if rows:
            conn.execute(trading_signals.insert(), rows)


def pending_signals(conn, portfolio_id: int, cycle_date: date | None = None) -> list[dict]:
    """Signals not yet executed nor rejected, oldest first."""
    query = select(trading_signals).where(
        trading_signals.c.portfolio_id == portfolio_id,
        trading_signals.c.executed.is_(False),
        trading_signals.c.rejection_reason.is_(None),
    )
    if cycle_date is not None:
        query = query.where(trading_signals.c.cycle_date == cycle_date)
    return [dict(r._mapping) for r in conn.execute(query.order_by(trading_signals.c.signal_id))]
