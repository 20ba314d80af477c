"""Which portfolios should have partitions (every one that is not archived, live or backtest), and
from which day; which ones the live cycle trades."""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine, select, text

from ..db.schema import portfolios


def live_portfolio_ids(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        return list(conn.execute(
            select(portfolios.c.portfolio_id).where(portfolios.c.status != "archived").order_by(portfolios.c.portfolio_id)
        ).scalars())


def active_portfolios(engine: Engine) -> list[dict]:
    """Active live portfolios with their strategy config (for cycle and cadence scheduling): a
    backtest portfolio trades only when replayed."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(portfolios.c.portfolio_id, portfolios.c.name, portfolios.c.strategy_type,
                   portfolios.c.strategy_config)
            .where(portfolios.c.status == "active", portfolios.c.mode == "live").order_by(portfolios.c.portfolio_id)
        )
        return [dict(r._mapping) for r in rows]


def first_ledger_day(engine: Engine) -> date | None:
    """The first day any portfolio has: its creation, or an earlier day it has signals or history
    for (the demo's simulated days, a replayed day), or the first day a backtest replays (so
    its partitions exist to be backfilled). None when there are no portfolios."""
    with engine.connect() as conn:
        return conn.execute(text(
            """
            SELECT least(
                (SELECT min((created_at AT TIME ZONE 'UTC')::date) FROM portfolios),
                (SELECT min(backtest_from) FROM portfolios),
                (SELECT min(cycle_date) FROM trading_signals),
                (SELECT min(cycle_date) FROM signal_archives),
                (SELECT min(snapshot_date) FROM portfolio_history))
            """
        )).scalar()


def backtest_portfolio_ids(engine: Engine, portfolio_ids) -> set[int]:
    """Which of these portfolios are backtests (their partitions replay history, not trade live)."""
    ids = sorted({int(pid) for pid in portfolio_ids})
    if not ids:
        return set()
    with engine.connect() as conn:
        return set(conn.execute(select(portfolios.c.portfolio_id).where(
            portfolios.c.portfolio_id.in_(ids), portfolios.c.mode == "backtest")).scalars())


def portfolio_names(engine: Engine, ids: list[int] | None = None) -> dict[int, str]:
    """Portfolio id -> name (all portfolios, or these ids), to show names next to ids."""
    query = select(portfolios.c.portfolio_id, portfolios.c.name)
    if ids is not None:
        query = query.where(portfolios.c.portfolio_id.in_([int(i) for i in ids]))
    with engine.connect() as conn:
        return {pid: name for pid, name in conn.execute(query)}
