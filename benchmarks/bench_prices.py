"""Time one price update of 1,000 portfolios x 50 open positions over 10,000+ markets (goal: under 10 s).

    python benchmarks/bench_prices.py [--portfolios N] [--positions N] [--events N] [--updates N]

The markets come from the local simulator through a real refresh (3,500 events give about 10,300
markets); positions are seeded straight into the database with COPY, every market held by about
five portfolios, half YES and half NO, with a buy trade each so the books balance. Then the
simulated clock moves an hour and `update_prices` runs against the simulator's HTTP API, as the
5-minute schedule does. With PRESCIENT_DATABASE_URL set, a scratch database is created on that
server and dropped afterwards; otherwise an embedded PostgreSQL runs in a temporary PRESCIENT_HOME.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import shutil
import tempfile
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from sqlalchemy import text

from prescient_pipeline.db import embedded
from prescient_pipeline.db.engine import dispose_engines, get_engine
from prescient_pipeline.db.migrate import ensure_schema
from prescient_pipeline.db.urls import with_database
from prescient_pipeline.domain.accounting import mark, open_position
from prescient_pipeline.domain.execution import ExecutionSettings, FillRejected, OutcomeBook
from prescient_pipeline.polymarket.client import PolymarketClient
from prescient_pipeline.polymarket.simulator import SimulatorServer, Universe
from prescient_pipeline.services.bulk import copy_rows
from prescient_pipeline.services.ledger import market_clock
from prescient_pipeline.services.market_refresh import refresh_markets
from prescient_pipeline.services.prices import update_prices
from prescient_pipeline.services.reports import unbalanced_portfolios

AMOUNT = Decimal(20)
BALANCE = Decimal(10_000)
SIM_START = datetime(2026, 3, 2, tzinfo=timezone.utc)  # a fixed clock: the same world every run


@contextlib.contextmanager
def scratch_database():
    """A database URL for the benchmark, thrown away afterwards."""
    server = os.environ.get("PRESCIENT_DATABASE_URL")
    home = Path(tempfile.mkdtemp(prefix="prescient-bench-"))
    os.environ["PRESCIENT_HOME"] = str(home)
    name = None
    try:
        if server:
            name = f"prescient_bench_{uuid.uuid4().hex[:10]}"
            embedded.ensure_database(server, name)
            url = with_database(server, name)
        else:
            # Registered first so it runs last at exit, after pgserver has stopped the server.
            atexit.register(shutil.rmtree, home, ignore_errors=True)
            url = embedded.start(home)
        os.environ["PRESCIENT_DATABASE_URL"] = url
        yield url
    finally:
        dispose_engines()
        if name is not None:
            embedded.drop_database(server, name)
            os.environ["PRESCIENT_DATABASE_URL"] = server
            shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def simulated_market_data(engine, events: int, seed: int = 7):
    """A simulator on loopback, refreshed once into the database; yields (server, client)."""
    with SimulatorServer(Universe(seed=seed, events=events, start=SIM_START)) as sim:
        with PolymarketClient(sim.url, sim.url) as client:
            started = time.perf_counter()
            refreshed = refresh_markets(engine, client)
            print(f"refresh: {refreshed.events:,} events, {refreshed.markets:,} markets "
                  f"in {time.perf_counter() - started:.1f} s")
            ensure_depth(engine)
            yield sim, client


# Ten levels a side, one tick apart, 25, 50, ... shares: where the refresh stored no levels, so
# that fills and exit sales walk the book as they do on live data.
_SYNTHETIC_DEPTH = """
UPDATE markets SET
    bids = (SELECT jsonb_agg(jsonb_build_array((best_bid - k * coalesce(tick_size, 0.01))::text, (25 + 25 * k)::text)
                             ORDER BY k)
            FROM generate_series(0, 9) k WHERE best_bid - k * coalesce(tick_size, 0.01) > 0),
    asks = (SELECT jsonb_agg(jsonb_build_array((best_ask + k * coalesce(tick_size, 0.01))::text, (25 + 25 * k)::text)
                             ORDER BY k)
            FROM generate_series(0, 9) k WHERE best_ask + k * coalesce(tick_size, 0.01) < 1)
WHERE bids IS NULL AND asks IS NULL AND best_bid IS NOT NULL AND best_ask IS NOT NULL
"""


def ensure_depth(engine) -> None:
    with engine.begin() as conn:
        synthesised = conn.execute(text(_SYNTHETIC_DEPTH)).rowcount
        listed = conn.execute(text("SELECT count(*) FROM markets WHERE asks IS NOT NULL")).scalar()
    print(f"depth: {listed:,} markets list book levels ({synthesised:,} synthesised for the benchmark)")


def seed_portfolios(engine, count: int, strategy: str = "momentum", configs=None) -> list[int]:
    """`count` portfolios in one COPY; `configs(i)` gives the i-th strategy_config."""
    columns = ["name", "strategy_type", "strategy_config", "initial_balance", "current_balance", "max_positions"]
    rows = [{"name": f"bench {i:05d}", "strategy_type": strategy,
             "strategy_config": configs(i) if configs else {}, "initial_balance": BALANCE,
             "current_balance": BALANCE, "max_positions": 1000} for i in range(count)]
    with engine.begin() as conn:
        copy_rows(conn, "portfolios", columns, rows)
        return list(conn.execute(text("SELECT portfolio_id FROM portfolios ORDER BY portfolio_id")).scalars())


def buyable_markets(engine) -> tuple[datetime, list[dict]]:
    """The market clock and the open markets both sides of which can be bought, by id."""
    with engine.connect() as conn:
        at = market_clock(conn)
        markets = [dict(r._mapping) for r in conn.execute(text(
            "SELECT market_id, event_id, question, yes_token_id, no_token_id, yes_price, no_price, best_bid, "
            "best_ask, last_trade_price, bids, asks, tick_size, fees_enabled, fee_rate, fee_exponent "
            "FROM markets WHERE NOT closed AND accepting_orders ORDER BY market_id"))]
    return at, [m for m in markets if all(_fill(side, m) for side in ("YES", "NO"))]


_SETTINGS = ExecutionSettings.from_config({"max_slippage_bps": None})


def _fill(side: str, market: dict):
    """A buy as execution fills it (depth where the market lists levels), or None."""
    try:
        return _SETTINGS.buy(side, market, AMOUNT)
    except FillRejected:
        return None


def seed_positions(engine, portfolio_ids: list[int], per_portfolio: int) -> int:
    """Open `per_portfolio` positions in each portfolio, bought at the ask as execution would."""
    at, markets = buyable_markets(engine)
    rows = []
    for k, pid in enumerate(portfolio_ids):
        for j in range(per_portfolio):
            m = markets[(k * per_portfolio + j) % len(markets)]
            side = "YES" if (k + j) % 2 == 0 else "NO"
            fill = _fill(side, m)
            book = OutcomeBook.from_state(side, m)
            mark_at = book.displayed_price
            position = open_position(m["market_id"], side, fill)
            value, unrealized = mark(position, mark_at)
            rows.append({
                "portfolio_id": pid, "market_id": m["market_id"], "event_id": m["event_id"],
                "token_id": m["yes_token_id"] if side == "YES" else m["no_token_id"], "side": side,
                "shares": fill.shares, "avg_price": fill.price, "cost_basis": fill.cost, "entry_fee": fill.fee,
                "current_price": mark_at, "entry_mark": mark_at, "market_value": value, "unrealized_pnl": unrealized,
                "liquidation_value": value if book.best_bid is None else round(position.shares * book.best_bid, 6),
                "status": "open",
                "opened_at": at, "last_marked_at": at,
            })
    with engine.begin() as conn:
        copy_rows(conn, "portfolio_positions", list(rows[0]), rows)
        # One buy per position, and cash to match, so the books balance before the update.
        conn.execute(text(
            "INSERT INTO trades (portfolio_id, position_id, market_id, side, action, shares, price, amount, fee, "
            "cash_delta, reason, executed_at) SELECT portfolio_id, position_id, market_id, side, 'buy', shares, "
            "avg_price, cost_basis, entry_fee, -cost_basis, 'seed', opened_at FROM portfolio_positions"))
        conn.execute(text(
            "UPDATE portfolios p SET current_balance = p.initial_balance - s.cost, total_invested = s.cost, "
            "total_fees = s.fees, trade_count = s.n, total_trades_executed = s.n FROM (SELECT portfolio_id, "
            "sum(cost_basis) AS cost, sum(entry_fee) AS fees, count(*) AS n FROM portfolio_positions "
            "GROUP BY portfolio_id) s WHERE s.portfolio_id = p.portfolio_id"))
        conn.execute(text("ANALYZE"))
    return len({r["market_id"] for r in rows})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--portfolios", type=int, default=1000)
    parser.add_argument("--positions", type=int, default=50)
    parser.add_argument("--events", type=int, default=3500)
    parser.add_argument("--updates", type=int, default=2, help="consecutive updates, an hour apart")
    args = parser.parse_args()

    with scratch_database() as url:
        engine = ensure_schema(get_engine(url))
        with simulated_market_data(engine, args.events) as (sim, client):
            started = time.perf_counter()
            # Every tenth portfolio has exits, so some positions are sold during the update.
            ids = seed_portfolios(engine, args.portfolios, configs=lambda i: (
                {"stop_loss_percentage": 0.1, "take_profit_percentage": 0.1, "fee_rate": 0.02} if i % 10 == 0 else {}))
            held = seed_positions(engine, ids, args.positions)
            print(f"seeded {len(ids):,} portfolios x {args.positions} positions over {held:,} distinct markets "
                  f"in {time.perf_counter() - started:.1f} s")
            for n in range(1, args.updates + 1):
                sim.universe.advance(60)
                started = time.perf_counter()
                report = update_prices(engine, client)
                total = time.perf_counter() - started
                parts = ", ".join(f"{k} {v:.2f} s" for k, v in report.seconds.items())
                print(f"update {n}: {total:.2f} s ({parts}); {report.markets_held:,} markets "
                      f"({report.books:,} books, {report.gamma_markets:,} from Gamma, {len(report.unpriced)} unpriced); "
                      f"{report.marked:,} marked, exits {sum(report.exits.values()):,}, "
                      f"settlements {sum(report.settlements.values()):,}; goal < 10 s: "
                      f"{'met' if total < 10 else 'MISSED'}")
            problems = unbalanced_portfolios(engine)
            print("books balance" if not problems else f"{len(problems)} unbalanced: {problems[:3]}")


if __name__ == "__main__":
    main()
