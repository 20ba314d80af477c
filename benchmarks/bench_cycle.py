"""Time a full daily cycle through Dagster, the path the schedule takes (goals: 100 portfolios
< 30 s and 1,000 < 5 minutes over a 5,000-event universe; 100 portfolios on the recorded real
markets < 10 s).

    python benchmarks/bench_cycle.py [--portfolios 100 1000] [--events 5000]
    python benchmarks/bench_cycle.py --recorded [--portfolios 100]

A cycle is the runs `trading_cycle_schedule` and its sensors launch, here in this process
(`defs.runner.run_cycle`): refresh the markets, one `portfolio_signals` run over the day's
partitions of every portfolio (one universe read, shared), one `execute_signals_job` run, one
`portfolio_snapshot_job` run; each ends with the books-balance check. Portfolios cycle through
the four strategies, at most 10 signals each per cycle. Markets come from the local simulator,
or with --recorded from the 1,192 recorded real markets (../shared/polymarket_data) served by the
tests' replay server. Database: as in bench_prices.py; Dagster's storage sits beside it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import text

from bench_prices import scratch_database, seed_portfolios
from prescient_pipeline import dagster_home
from prescient_pipeline.db import embedded
from prescient_pipeline.db.engine import get_engine
from prescient_pipeline.db.migrate import ensure_schema
from prescient_pipeline.db.urls import database_name
from prescient_pipeline.defs import runner
from prescient_pipeline.polymarket.simulator import SimulatorServer, Universe
from prescient_pipeline.services.reports import unbalanced_portfolios

STRATEGIES = ("momentum", "mean_reversion", "arbitrage", "hybrid")
RECORDED = Path(__file__).resolve().parents[2] / "shared" / "polymarket_data" / "the-boshi__polymarket-db" / "markets_2025-11-10.jsonl"
GOALS = {100: 30.0, 1000: 300.0}


@contextmanager
def market_server(events: int, recorded: bool):
    if recorded:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from prescient_pipeline_tests.replay_server import ReplayServer, events_from_recorded_markets

        if not RECORDED.exists():
            raise SystemExit(f"recorded markets not found: {RECORDED}")
        with ReplayServer(events=events_from_recorded_markets(RECORDED)) as server:
            yield server.url, "recorded real markets"
    else:
        with SimulatorServer(Universe(seed=7, events=events, start=datetime.now(timezone.utc))) as sim:
            sim.start()
            yield sim.url, f"{events:,} simulated events"


def one_cycle(portfolios: int, events: int, recorded: bool) -> float:
    with scratch_database() as url, market_server(events, recorded) as (api, what):
        os.environ.update(PRESCIENT_GAMMA_URL=api, PRESCIENT_CLOB_URL=api,
                          DAGSTER_HOME=tempfile.mkdtemp(prefix="prescient-bench-dagster-"))
        engine = ensure_schema(get_engine(url))
        ids = seed_portfolios(engine, portfolios, configs=None)
        with engine.begin() as conn:  # strategies in turn, at most 10 new positions each per cycle
            for i, strategy in enumerate(STRATEGIES):
                conn.execute(text(
                    "UPDATE portfolios SET strategy_type = :s, strategy_config = '{\"max_signals_per_cycle\": 10}' "
                    "WHERE (portfolio_id - 1) % 4 = :i"), {"s": strategy, "i": i})
        instance = dagster_home.instance()
        try:
            day = datetime.now(timezone.utc).date()
            stamps = {"start": time.perf_counter()}
            refresh_run = runner.refresh(instance, day)
            stamps["refresh"] = time.perf_counter()
            signals_run = runner.signals(instance, day, ids)
            stamps["signals"] = time.perf_counter()
            runner.execute(instance, ids, day)
            stamps["execution"] = time.perf_counter()
            runner.snapshot(instance)
            stamps["snapshot"] = time.perf_counter()
            assert instance.get_run_by_id(refresh_run).is_success and instance.get_run_by_id(signals_run).is_success
        finally:
            instance.dispose()
        with engine.connect() as conn:
            markets = conn.execute(text("SELECT count(*) FROM markets")).scalar_one()
            fills = conn.execute(text("SELECT count(*) FROM trades WHERE action = 'buy'")).scalar_one()
            holders = conn.execute(text("SELECT count(DISTINCT portfolio_id) FROM trades")).scalar_one()
        total = stamps["snapshot"] - stamps["start"]
        parts = ", ".join(f"{name} {stamps[name] - stamps[prev]:.1f} s" for prev, name in
                          zip(["start", "refresh", "signals", "execution"], ["refresh", "signals", "execution", "snapshot"]))
        goal = 10.0 if recorded else GOALS.get(portfolios)
        verdict = "" if goal is None else f"; goal < {goal:.0f} s: {'met' if total < goal else 'MISSED'}"
        print(f"{portfolios:,} portfolios over {markets:,} markets ({what}): cycle {total:.1f} s in 4 runs "
              f"({parts}); {fills:,} fills in {holders:,} portfolios{verdict}")
        problems = unbalanced_portfolios(engine)
        print("  books balance" if not problems else f"  {len(problems)} portfolios unbalanced")
        embedded.drop_database(url, f"{database_name(url)}_dagster")
        return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--portfolios", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--recorded", action="store_true", help="the recorded real markets instead of the simulator")
    args = parser.parse_args()
    for count in ([100] if args.recorded and args.portfolios == [100, 1000] else args.portfolios):
        one_cycle(count, args.events, args.recorded)


if __name__ == "__main__":
    main()
