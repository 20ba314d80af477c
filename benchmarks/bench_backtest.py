"""Time backtests over 30 days of hourly history of a 2,000-event simulated universe (goals: one
portfolio x 30 days < 20 s; 100 portfolios x 30 days < 5 minutes on 2 cores).

    python benchmarks/bench_backtest.py [--days 30] [--events 2000] [--portfolios 100] [--workers 2]

History: with a simulator that has a past (`Universe(history_days=...)`), the window is imported
through the real path (`import_history` against the simulator's Gamma and `/prices-history`);
otherwise (`--generate`, or a simulator without a past) the simulator's universe is written once
by a real refresh and `--days` days of hourly `history` observations are generated in SQL from
it, with about one market in ten resolving during the window (its resolution recorded and its
price at 1 or 0 from then on).

Backtests: one momentum portfolio replays the whole window; then `--portfolios` portfolios, one
per config of a parameter grid (favourite band x trade size x stop loss), replay it split over
`--workers` processes, each replaying its portfolios together, day by day: the portfolios of a
day share that day's universe read and one mark pass per observation time. Database: as in bench_prices.py.
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import multiprocessing
import os
import time
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import text

from bench_prices import scratch_database
from prescient_pipeline.db.engine import dispose_engines, get_engine
from prescient_pipeline.db.history_partitions import ensure_partitions
from prescient_pipeline.db.migrate import ensure_schema
from prescient_pipeline.polymarket.client import PolymarketClient
from prescient_pipeline.polymarket.parser import parse_events
from prescient_pipeline.polymarket.simulator import SimulatorServer, Universe
from prescient_pipeline.services.market_store import write_refresh
from prescient_pipeline.services.reports import unbalanced_portfolios

BALANCE = 10_000
# History has no book and no liquidity: the filters that need them are off.
BASE_CONFIG = {"market_min_liquidity": 0, "max_spread": None, "max_signals_per_cycle": 10}
GRID = {
    "favourite_min_price": [0.50, 0.55, 0.60, 0.65, 0.70],
    "favourite_max_price": [0.80, 0.90],
    "trade_amount": [50, 100, 200, 300, 500],
    "stop_loss_percentage": [None, 0.20],
}

# One day of hourly history observations of every market, from the base refresh's rows: a price
# that drifts, no book, no liquidity or volume (as imported history has none); about one market in
# ten resolves at a time inside the window and is closed at 1 or 0 from then on.
_GENERATE_DAY = """
INSERT INTO market_snapshots (market_id, ts, yes_price, no_price, active, closed, source)
SELECT s.market_id, h.ts,
       CASE WHEN r.closed_time <= h.ts THEN CASE WHEN r.winner = 'YES' THEN 1 ELSE 0 END ELSE p.yes END,
       CASE WHEN r.closed_time <= h.ts THEN CASE WHEN r.winner = 'YES' THEN 0 ELSE 1 END ELSE 1 - p.yes END,
       true, coalesce(r.closed_time <= h.ts, false), 'history'
FROM market_snapshots s
CROSS JOIN generate_series(CAST(:day AS timestamptz), CAST(:day AS timestamptz) + interval '23 hours', interval '1 hour') AS h(ts)
CROSS JOIN LATERAL (SELECT round(CAST(least(0.99, greatest(0.01, coalesce(s.yes_price, 0.5)
                    + 0.08 * sin(extract(epoch FROM h.ts) / 36000 + hashtext(s.market_id)))) AS numeric), 3) AS yes) p
LEFT JOIN market_resolutions r ON r.market_id = s.market_id
WHERE s.ts = :base AND s.source = 'gamma'
"""
_RESOLUTIONS = """
INSERT INTO market_resolutions (market_id, closed_time, outcome_prices, uma_resolution_status, resolved, winner, fetched_at)
SELECT market_id, CAST(:start AS timestamptz) + make_interval(secs => abs(hashtext(market_id || 'close')) % :seconds),
       CASE WHEN yes_price >= 0.5 THEN '["1", "0"]'::jsonb ELSE '["0", "1"]'::jsonb END, 'resolved', true,
       CASE WHEN yes_price >= 0.5 THEN 'YES' ELSE 'NO' END, now()
FROM market_snapshots WHERE ts = :base AND source = 'gamma' AND abs(hashtext(market_id)) % 10 = 0
"""


def grid_configs(limit: int) -> list[dict]:
    keys = list(GRID)
    return [{**BASE_CONFIG, **dict(zip(keys, values))} for values in itertools.product(*GRID.values())][:limit]


def simulator_has_a_past() -> bool:
    return "history_days" in inspect.signature(Universe).parameters


def import_from_simulator(engine, events: int, first: date, last: date) -> str:
    from prescient_pipeline.services.market_history import import_history

    now = datetime.now(timezone.utc)
    universe = Universe(seed=7, events=events, start=now, history_days=(now.date() - first).days + 1)
    with SimulatorServer(universe) as sim:
        sim.start()
        with PolymarketClient(sim.url, sim.url) as client:
            report = import_history(engine, client, first, last, 60, now=now)
    totals = report.totals()
    return f"imported from the simulator's past: {totals['markets']:,} markets, {totals['points']:,} points"


def generate_in_sql(engine, events: int, first: date, last: date) -> str:
    start = datetime.combine(first, datetime.min.time(), timezone.utc)
    base = start - timedelta(hours=1)
    with SimulatorServer(Universe(seed=7, events=events, start=base)) as sim:
        sim.start()
        with PolymarketClient(sim.url, sim.url) as client:
            parsed = parse_events(client.fetch_active_events().events)
    write_refresh(engine, parsed.events, parsed.markets, base)
    days = [start + timedelta(days=n) for n in range((last - first).days + 1)]
    ensure_partitions(engine, *days)
    with engine.begin() as conn:
        conn.execute(text(_RESOLUTIONS), {"start": start, "base": base, "seconds": len(days) * 86400})
    for day in days:
        with engine.begin() as conn:
            conn.execute(text(_GENERATE_DAY), {"day": day, "base": base})
            conn.execute(text(
                "INSERT INTO market_refreshes (ts, source, markets) SELECT ts, 'history', :n FROM generate_series("
                "CAST(:day AS timestamptz), CAST(:day AS timestamptz) + interval '23 hours', interval '1 hour') ts"),
                {"day": day, "n": len(parsed.markets)})
            conn.execute(text(
                "INSERT INTO history_imports (day, fidelity, markets, points, through, completed_at) "
                "VALUES (:d, 60, :n, :n * 24, :through, now())"),
                {"d": day.date(), "n": len(parsed.markets), "through": day + timedelta(hours=23)})
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
        rows = conn.execute(text("SELECT count(*) FROM market_snapshots WHERE source = 'history'")).scalar_one()
        resolved = conn.execute(text("SELECT count(*) FROM market_resolutions")).scalar_one()
    return (f"generated in SQL: {rows:,} hourly observations of {len(parsed.markets):,} markets, "
            f"{resolved:,} resolving in the window")


def _portfolio_id(created) -> int:
    return int(created["portfolio_id"] if isinstance(created, dict) else getattr(created, "portfolio_id", created))


def create(engine, config: dict, first: date, last: date, name: str) -> int:
    from prescient_pipeline.services.backtest import create_backtest

    return _portfolio_id(create_backtest(engine, "momentum", config, BALANCE, first, last, name=name))


def replay_days(url: str, portfolio_ids: list[int], first: date, last: date) -> float:
    """Replay the portfolios through the window together (a worker process): day by day, the
    portfolios of a day sharing its universe read and one mark pass per observation time.
    Returns the seconds it took."""
    from prescient_pipeline.services.backtest import replay_all_through

    os.environ["PRESCIENT_DATABASE_URL"] = url
    dispose_engines()
    engine = get_engine(url)
    started = time.perf_counter()
    replays = replay_all_through(engine, portfolio_ids, last)
    if replays.failures:
        raise RuntimeError(f"replays failed: {replays.failures}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--portfolios", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--generate", action="store_true", help="generate the history in SQL, not import it")
    args = parser.parse_args()
    last = datetime.now(timezone.utc).date() - timedelta(days=1)
    first = last - timedelta(days=args.days - 1)

    with scratch_database() as url:
        engine = ensure_schema(get_engine(url))
        started = time.perf_counter()
        if args.generate or not simulator_has_a_past():
            how = generate_in_sql(engine, args.events, first, last)
        else:
            how = import_from_simulator(engine, args.events, first, last)
        print(f"history {first} .. {last} ({args.days} days, {args.events:,} events): {how} "
              f"in {time.perf_counter() - started:.1f} s")

        from prescient_pipeline.services.backtest import replay_through

        one = create(engine, {**BASE_CONFIG}, first, last, "bench one")
        started = time.perf_counter()
        days = replay_through(engine, one, last)
        single = time.perf_counter() - started
        with engine.connect() as conn:
            fills = conn.execute(text("SELECT count(*) FROM trades WHERE portfolio_id = :p"), {"p": one}).scalar_one()
        print(f"1 portfolio x {len(days)} days: {single:.1f} s ({fills} trades; goal < 20 s: "
              f"{'met' if single < 20 else 'MISSED'})")

        configs = grid_configs(args.portfolios)
        ids = [create(engine, config, first, last, f"bench grid {n}") for n, config in enumerate(configs)]
        shares = [ids[n::args.workers] for n in range(args.workers)]
        started = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
            worker_seconds = pool.starmap(replay_days, [(url, share, first, last) for share in shares])
        many = time.perf_counter() - started
        with engine.connect() as conn:
            trades = conn.execute(text("SELECT count(*) FROM trades WHERE portfolio_id = ANY(:p)"), {"p": ids}).scalar_one()
            values = conn.execute(text(
                "SELECT min(total_value), max(total_value) FROM portfolio_history WHERE portfolio_id = ANY(:p) "
                "AND snapshot_date = :d"), {"p": ids, "d": last}).one()
        print(f"{len(ids)} portfolios x {args.days} days on {args.workers} processes: {many:.1f} s "
              f"(workers {', '.join(f'{s:.1f}' for s in worker_seconds)} s; {trades:,} trades; final values "
              f"{values[0]} .. {values[1]}; goal < 300 s: {'met' if many < 300 else 'MISSED'})")
        problems = unbalanced_portfolios(engine)
        print("books balance to the cent" if not problems else f"UNBALANCED: {problems[:3]}")


if __name__ == "__main__":
    main()
