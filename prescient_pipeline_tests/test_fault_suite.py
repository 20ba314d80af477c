"""The fault suite: refreshes, price updates and fills through an API that fails, lies and
garbles, with portfolios holding positions the whole time.

A fault-injecting proxy (fault_proxy.py) stands between the real client and the simulator and
spoils a seeded share of the answers: 429, 500, timeouts, truncated JSON, wrong types,
out-of-range prices and a Date a day ahead. After every run, failed or not:
- no stored price is outside [0, 1] (markets, market_snapshots, positions, trades), no stored
  size is negative, no flag is NULL where Gamma sent one;
- nothing the proxy spoiled was stored as an observation;
- no sale happened above the best price the clean market offered (a bid read from "7.5" was once
  sold at $1.00), no fill is outside [0, 1];
- a failed run left every row as it was;
- every portfolio balances to the cent.
Client retries and backoff are kept tiny (PRESCIENT_HTTP_RETRIES / PRESCIENT_HTTP_BACKOFF and a
short read timeout), so the suite takes seconds.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from prescient_pipeline.polymarket.client import PolymarketClient, PolymarketError
from prescient_pipeline.polymarket.simulator.universe import Universe
from prescient_pipeline.services.execution import execute_portfolio
from prescient_pipeline.services.market_refresh import refresh_markets
from prescient_pipeline.services.prices import update_prices
from prescient_pipeline.services.reports import unbalanced_portfolios

from .fault_proxy import FAULTS, FaultProxy, Injected
from .helpers import simulator
from .test_execution import add_signals, portfolio, rows

UNLIMITED = {"gamma": 100_000, "clob": 100_000}
STEPS = 10  # each: the clock moves 30 simulated minutes, then a refresh and a price update
PORTFOLIOS = {
    "tight exits": {"stop_loss_percentage": 0.02, "take_profit_percentage": 0.02},
    "wide exits": {"stop_loss_percentage": 0.1, "take_profit_percentage": 0.1},
    "holds": None,
}
# Every table a run may write, in a stable order: a failed run must leave all of them as they were.
# Besides the random draw, faults sure to happen: each run fails once, and a book is spoiled
# once ((step, run) -> the fault of the run's first request).
FORCED = {(1, "prices"): "truncated_json", (2, "refresh"): "truncated_json", (4, "prices"): "out_of_range"}
TABLES = {
    "events": "event_id", "markets": "market_id", "market_snapshots": "market_id, ts, source",
    "trading_signals": "signal_id", "trades": "trade_id", "portfolio_positions": "position_id",
    "portfolios": "portfolio_id",
}


@pytest.fixture
def bounded_retries(monkeypatch):
    monkeypatch.setenv("PRESCIENT_HTTP_RETRIES", "2")
    monkeypatch.setenv("PRESCIENT_HTTP_BACKOFF", "0.01")


def client_for(proxy: FaultProxy) -> PolymarketClient:
    # The proxy stalls a "timeout" for 0.6 s: a 0.4 s read timeout gives up before.
    return PolymarketClient.from_settings(proxy.url, proxy.url, timeout=(1, 0.4), requests_per_10s=UNLIMITED)


def stored(engine) -> dict[str, tuple]:
    """Each table's row count and a digest of every row, in a stable order."""
    return {table: tuple(rows(engine, f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY {order}), '')) "
                                      f"FROM {table} t")[0]) for table, order in TABLES.items()}


def buy_into(engine, pids: list[int], as_of: datetime, skip: set[str], per_portfolio: int) -> None:
    """Each portfolio buys $20 of YES or NO (alternately) in markets not yet held."""
    tradable = [r.market_id for r in rows(
        engine, "SELECT market_id FROM markets WHERE closed IS FALSE AND accepting_orders "
                "AND yes_price BETWEEN 0.15 AND 0.85 AND best_bid > 0 AND best_ask < 1 ORDER BY market_id")
        if r.market_id not in skip]
    for pid in pids:
        chosen = tradable[:per_portfolio]
        add_signals(engine, pid, [(m, "YES" if i % 2 == 0 else "NO", 20) for i, m in enumerate(chosen)],
                    as_of=as_of, cycle_date=as_of.date())
        execute_portfolio(engine, pid)
        skip.update(chosen)
        tradable = tradable[per_portfolio:]


def true_mids(universe: Universe, engine) -> dict[str, float | None]:
    """The simulator's own YES midpoint of every held market, None once it closed: what a clean
    observation offers, and no sale can beat."""
    held = rows(engine, "SELECT DISTINCT m.market_id, m.yes_token_id FROM markets m JOIN portfolio_positions p "
                        "ON p.market_id = m.market_id WHERE p.status = 'open'")
    return {r.market_id: universe.midpoint(r.yes_token_id) for r in held}


def assert_nothing_out_of_range(engine) -> None:
    price_columns = {
        "markets": ("yes_price", "no_price", "best_bid", "best_ask", "spread", "last_trade_price"),
        "market_snapshots": ("yes_price", "no_price", "best_bid", "best_ask"),
        "portfolio_positions": ("avg_price", "current_price", "exit_price"),
        "trades": ("price",),
    }
    for table, columns in price_columns.items():
        bad = " OR ".join(f"NOT ({c} BETWEEN 0 AND 1)" for c in columns)  # NaN sorts above 1 in PostgreSQL
        assert rows(engine, f"SELECT * FROM {table} WHERE {bad}") == [], f"a price outside [0, 1] in {table}"
    for table in ("markets", "market_snapshots"):
        sizes = " OR ".join(f"{c} < 0 OR {c} = 'NaN'" for c in ("liquidity", "volume", "volume_24hr"))
        assert rows(engine, f"SELECT * FROM {table} WHERE {sizes}") == [], f"a negative size in {table}"
    # The simulator always sends `closed`: a NULL could only come from a flag that was not read.
    assert rows(engine, "SELECT market_id FROM markets WHERE closed IS NULL OR active IS NULL") == []
    assert rows(engine, "SELECT market_id FROM market_snapshots WHERE source <> 'clob' AND closed IS NULL") == []


# Where each answer's observations are stored: a refresh's /events, a price update's books and
# its Gamma fallback (/markets).
SOURCE_OF_PATH = {"/events": "gamma", "/books": "clob", "/markets": "gamma_update"}


def assert_spoiled_not_stored(engine, injected: list[Injected], ts: datetime) -> int:
    """No observation at `ts`, from the answer the proxy spoiled, of a market it spoiled there
    (a spoiled book may still be replaced by Gamma's clean answer); returns how many there were."""
    spoiled = 0
    for i in injected:
        markets = set(i.markets)
        if i.tokens:
            markets |= {r.market_id for r in rows(
                engine, "SELECT market_id FROM markets WHERE yes_token_id = ANY(:t)", t=list(i.tokens))}
        if markets:
            found = rows(engine, "SELECT market_id FROM market_snapshots WHERE ts = :ts AND source = :s "
                                 "AND market_id = ANY(:m)", ts=ts, s=SOURCE_OF_PATH[i.path], m=sorted(markets))
            assert found == [], f"spoiled observations stored from {i}: {found}"
            spoiled += len(markets)
    return spoiled


def assert_sales_within_the_clean_market(new_sales: list, mids: dict[str, float | None]) -> None:
    for sale in new_sales:
        mid = mids.get(sale.market_id)
        assert mid is not None, f"sold {sale.market_id}, which had no clean market: {sale}"
        best = Decimal(str(mid if sale.side == "YES" else 1 - mid))
        assert 0 < sale.price <= best + Decimal("0.000001"), (
            f"{sale.side} of {sale.market_id} sold at {sale.price}, above the clean mid {best}")


def test_a_faulty_api_never_corrupts_the_books(engine, bounded_retries, monkeypatch):
    # The simulated clock starts at ours and runs ahead, as the simulator's clock may.
    start = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    outcomes: Counter = Counter()
    spoiled_records = 0
    rejected: Counter = Counter()
    skewed = 0
    faults: Counter = Counter()
    with simulator(monkeypatch, events=40, seed=11, start=start) as sim, \
            FaultProxy(sim.url, seed=5, share=0.35) as proxy:
        proxy.enabled = False  # a clean start: one refresh, then positions in three portfolios
        with client_for(proxy) as client:
            refresh_markets(engine, client)
        pids = [portfolio(engine, name=name, config=config) for name, config in PORTFOLIOS.items()]
        held: set[str] = set()
        buy_into(engine, pids, sim.universe.now, held, per_portfolio=8)
        assert rows(engine, "SELECT count(*) FROM portfolio_positions WHERE status = 'open'") == [(24,)]
        proxy.enabled = True

        for step in range(STEPS):
            sim.universe.advance(30)
            for run in ("refresh", "prices"):
                if (step, run) in FORCED:
                    proxy.force_next(FORCED[step, run])
                before = stored(engine)
                mids = true_mids(sim.universe, engine)
                last_trade = rows(engine, "SELECT coalesce(max(trade_id), 0) FROM trades")[0][0]
                client = client_for(proxy)
                try:
                    with client:
                        report = refresh_markets(engine, client) if run == "refresh" else update_prices(engine, client)
                except PolymarketError:
                    outcomes[run, "failed"] += 1
                    assert stored(engine) == before, f"step {step}: a failed {run} changed stored rows"
                    report = None
                injected = proxy.take_injected()
                faults.update(i.fault for i in injected)
                if report is not None:
                    outcomes[run, "done"] += 1
                    spoiled_records += assert_spoiled_not_stored(engine, injected, report.observed_at)
                    new_sales = rows(engine, "SELECT * FROM trades WHERE trade_id > :t AND action = 'sell'",
                                     t=last_trade)
                    assert_sales_within_the_clean_market(new_sales, mids)
                    outcomes["sales"] += len(new_sales)
                rejected += client.rejected + (report.rejected if run == "refresh" and report else Counter())
                skewed += client.skewed_responses
                assert_nothing_out_of_range(engine)
                assert unbalanced_portfolios(engine) == [], f"step {step}, {run}"
            if step == 3:  # fills from whatever the faulty refreshes stored
                buy_into(engine, pids, sim.universe.now, held, per_portfolio=2)
                assert_nothing_out_of_range(engine)
                assert unbalanced_portfolios(engine) == []

    # The suite did what it says: every fault, failed and successful runs of both kinds, spoiled
    # records left out, exits taken through it all.
    assert set(faults) == set(FAULTS), f"faults never injected: {set(FAULTS) - set(faults)}"
    assert all(outcomes[run, result] for run in ("refresh", "prices") for result in ("failed", "done")), outcomes
    assert spoiled_records > 0 and any(reason.startswith("book_") for reason in rejected), (spoiled_records, rejected)
    assert skewed > 0
    assert outcomes["sales"] > 0, "no exit was taken: the sale check proved nothing"
    assert rows(engine, "SELECT count(*) FROM trades WHERE action = 'buy'")[0][0] > 24
