"""Backtests: a portfolio in mode `backtest` replays imported history day by day.

Real PostgreSQL; the history is imported by the import service over real HTTP from the replay
server, which hands back every point of a token whatever window was asked (a later point is
always on offer and must never be used).
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import text

from prescient_pipeline.errors import InputError
from prescient_pipeline.polymarket.client import PolymarketClient
from prescient_pipeline.services.backtest import create_backtest, replay_through, replayed_days
from prescient_pipeline.services.market_history import import_history
from prescient_pipeline.services.reports import unbalanced_portfolios

from .replay_server import ReplayServer

DAY1, DAY2 = date(2026, 11, 10), date(2026, 11, 11)
LISTED_AT = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
UNLIMITED = {"gamma": 100_000, "clob": 100_000}
# History has no liquidity and no book: a backtest on it turns those filters off.
CONFIG = {"market_min_liquidity": 0, "max_spread": None, "trade_amount": 100, "cycle_cron": "0 9 * * *"}


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=timezone.utc)


def ts(day: date, hh: int, mm: int = 0) -> int:
    return int(at(day, hh, mm).timestamp())


def gamma_market(market_id: int, *, closed: bool = False, closed_time: str | None = None,
                 prices=("0.5", "0.5"), uma: str | None = None) -> dict:
    market = {
        "id": str(market_id), "conditionId": f"0xc{market_id}", "question": f"Market {market_id}?",
        "slug": f"m-{market_id}", "outcomes": '["Yes", "No"]', "outcomePrices": json.dumps(list(prices)),
        "clobTokenIds": json.dumps([f"{market_id}-yes", f"{market_id}-no"]), "active": True, "closed": closed,
        "archived": False, "startDate": "2026-11-01T00:00:00Z", "endDate": "2026-11-30T00:00:00Z",
        "volumeNum": 5000.0, "volume": "5000",
        "events": [{"id": str(market_id * 10), "title": f"Event {market_id}", "slug": f"e-{market_id}"}],
    }
    if closed_time:
        market["closedTime"] = closed_time
    if uma:
        market["umaResolutionStatus"] = uma
    return market


MARKETS = [
    # The favourite at 0.70 when day 1's cycle runs; resolved YES on day 2 at 14:30.
    gamma_market(201, closed=True, closed_time="2026-11-11 14:30:00+00", prices=("1", "0"), uma="resolved"),
    # A coin flip at day 1's cycle (no favourite); it moves to 0.70 at 09:30, after the cycle.
    gamma_market(202),
]
HISTORY = {
    "201-yes": [{"t": ts(DAY1 - timedelta(days=1), 20), "p": 0.70}, {"t": ts(DAY1, 11, 30), "p": 0.75},
                {"t": ts(DAY2, 10, 30), "p": 0.80}, {"t": ts(DAY2, 15, 10), "p": 0.99}],
    "202-yes": [{"t": ts(DAY1 - timedelta(days=1), 20), "p": 0.50}, {"t": ts(DAY1, 9, 30), "p": 0.70}],
}


@pytest.fixture
def history(engine):
    with ReplayServer(markets=MARKETS, price_history=HISTORY, now=LISTED_AT) as server:
        client = PolymarketClient(server.url, server.url, timeout=(1, 2), retries=1, backoff_factor=0.01,
                                  backoff_max=0.05, requests_per_10s=UNLIMITED)
        with client:
            import_history(engine, client, DAY1, DAY2, 60)
    return engine


def trades(engine, portfolio_id: int) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(
            "SELECT t.action, t.market_id, t.side, t.shares, t.price, t.amount, t.fee, t.cash_delta, t.reason, "
            "t.executed_at, t.evidence, t.observed_at, s.as_of AS signal_as_of FROM trades t "
            "LEFT JOIN trading_signals s ON s.signal_id = t.signal_id "
            "WHERE t.portfolio_id = :p ORDER BY t.executed_at, t.trade_id"), {"p": portfolio_id})]


def test_smoke(history):
    engine = history
    p = create_backtest(engine, "momentum", CONFIG, 1000, DAY1, DAY2)
    days = replay_through(engine, p["portfolio_id"], DAY2)
    for d in days:
        print(d)
    for t in trades(engine, p["portfolio_id"]):
        print(t)
    with engine.connect() as conn:
        for r in conn.execute(text("SELECT snapshot_date, timestamp, cash, positions_value, total_value FROM portfolio_history")):
            print(r)
