"""Daily history, performance metrics and the monthly signal archive."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import pandas as pd
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.dialects.postgresql import insert

from ..db.schema import (
    portfolio_history,
    portfolio_performance_cache,
    portfolio_positions,
    portfolios,
    signal_archives,
    trading_signals,
)
from ..domain.accounting import Totals
from ..domain.metrics import performance
from .ledger import market_clock, refresh_totals


@dataclass
class Snapshot:
    portfolio_id: int
    name: str
    snapshot_date: date
    totals: Totals
    daily_return: float | None
    metrics: dict


def snapshot_portfolios(engine: Engine, day: date | None = None) -> list[Snapshot]:
    """One `portfolio_history` row per live portfolio for `day` (a re-run replaces it), then
    refresh each portfolio's row in `portfolio_performance_cache`. A backtest portfolio's rows
    are written by its replay."""
    with engine.connect() as conn:
        at = market_clock(conn) or datetime.now(timezone.utc)
        rows = conn.execute(select(portfolios.c.portfolio_id, portfolios.c.name)
                            .where(portfolios.c.status != "archived", portfolios.c.mode == "live")
                            .order_by(portfolios.c.portfolio_id)).all()
    day = day or at.date()
    return [snapshot_portfolio(engine, pid, name, day, at) for pid, name in rows]


def snapshot_portfolio(engine: Engine, portfolio_id: int, name: str, day: date, at: datetime, *,
                       with_metrics: bool = True) -> Snapshot:
    """One portfolio's `portfolio_history` row for `day`, taken at `at`, and its metrics (left
    as they are with `with_metrics=False`: a replay stores them after its last day only)."""
    with engine.begin() as conn:
        totals = refresh_totals(conn, portfolio_id)
        trade_count = conn.execute(text("SELECT count(*) FROM trades WHERE portfolio_id = :p"),
                                   {"p": portfolio_id}).scalar_one()
        previous = conn.execute(
            select(portfolio_history.c.total_value, portfolio_history.c.net_transfers)
            .where(portfolio_history.c.portfolio_id == portfolio_id, portfolio_history.c.snapshot_date < day)
            .order_by(portfolio_history.c.snapshot_date.desc()).limit(1)
        ).first()
        prev_value, prev_transfers = (previous if previous else (totals.initial_balance, 0))
        flow = totals.net_transfers - prev_transfers
        daily_return = float((totals.total_value - flow) / prev_value - 1) if prev_value else None
        values = dict(
            portfolio_id=portfolio_id, snapshot_date=day, timestamp=at, cash=totals.cash,
            positions_value=totals.positions_value, total_value=totals.total_value,
            initial_balance=totals.initial_balance, net_transfers=totals.net_transfers,
            realized_pnl=totals.realized_pnl, unrealized_pnl=totals.unrealized_pnl, fees=totals.fees,
            open_positions=totals.open_positions, trade_count=trade_count, daily_return=daily_return,
        )
        stmt = insert(portfolio_history).values(**values)
        conn.execute(stmt.on_conflict_do_update(
            constraint="uq_portfolio_history_day",
            set_={k: stmt.excluded[k] for k in values if k not in ("portfolio_id", "snapshot_date")},
        ))
        metrics = store_performance(conn, portfolio_id, totals, at) if with_metrics else {}
    return Snapshot(portfolio_id, name, day, totals, daily_return, metrics)


def store_performance(conn, portfolio_id: int, totals: Totals, at: datetime) -> dict:
    """Compute the portfolio's metrics from its history and round trips and store them in
    `portfolio_performance_cache`; returns them."""
    metrics = _performance(conn, portfolio_id, totals)
    cache = insert(portfolio_performance_cache).values(portfolio_id=portfolio_id, calculated_at=at, **metrics)
    conn.execute(cache.on_conflict_do_update(
        index_elements=["portfolio_id"],
        set_={k: cache.excluded[k] for k in ["calculated_at", *metrics]},
    ))
    # The portfolio row's drawdown is the same figure (0 before any history), so every place
    # that shows it agrees.
    conn.execute(update(portfolios).where(portfolios.c.portfolio_id == portfolio_id)
                 .values(max_drawdown=metrics["max_drawdown"] or 0))
    return metrics


def _performance(conn, portfolio_id: int, totals: Totals) -> dict:
    history = pd.read_sql_query(
        select(portfolio_history.c.snapshot_date, portfolio_history.c.total_value, portfolio_history.c.net_transfers)
        .where(portfolio_history.c.portfolio_id == portfolio_id).order_by(portfolio_history.c.snapshot_date),
        conn,
    )
    trips = pd.read_sql_query(
        select(portfolio_positions.c.realized_pnl, portfolio_positions.c.closed_at)
        .where(portfolio_positions.c.portfolio_id == portfolio_id, portfolio_positions.c.status == "closed")
        .order_by(portfolio_positions.c.closed_at),
        conn,
    )
    signals_total, signals_executed = conn.execute(
        select(func.count(), func.count().filter(trading_signals.c.executed))
        .where(trading_signals.c.portfolio_id == portfolio_id)
    ).one()
    return performance(history, trips, signals_total, signals_executed, totals.initial_balance)


def archive_signals(engine: Engine, older_than_days: int = 30, now: datetime | None = None) -> int:
    """Move executed, rejected and stale pending signals older than the cutoff to `signal_archives`."""
    if older_than_days < 1:
        raise ValueError("older_than_days must be at least 1")
    with engine.begin() as conn:
        now = now or market_clock(conn) or datetime.now(timezone.utc)
        cutoff = (now - timedelta(days=older_than_days)).date()
        columns = [c.name for c in trading_signals.columns]
        old = trading_signals.c.cycle_date < cutoff
        moved = conn.execute(
            insert(signal_archives).from_select(columns, select(*[trading_signals.c[c] for c in columns]).where(old))
            .on_conflict_do_nothing(index_elements=["signal_id"])
        ).rowcount
        conn.execute(trading_signals.delete().where(old))
    return moved
