"""Time reads and writes of the market history as it grows (goals, with 30 days of hourly
snapshots of 50,000 markets: the as-of universe read < 2 s, and a refresh write within 1.5x of
its time on an empty history).

    python benchmarks/bench_history.py [--days 30] [--events 5000]

A refresh of the simulator's universe (5,000 events, about 50,000 markets) is written through
the real path (`write_refresh`). Three more refreshes are timed on that empty history; then
`--days` days of hourly observations of every market are generated in SQL before it (720
refreshes, 36 million rows for 30 days), and three more refreshes are timed on top. The universe
is read as of a cycle time in the middle of the history and at its end. Disk per day of history
is one day's partition with its indexes. Database: as in bench_prices.py.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import datetime, timedelta, timezone

from sqlalchemy import text

from bench_prices import scratch_database
from prescient_pipeline.db.engine import get_engine
from prescient_pipeline.db.history_partitions import ensure_partitions, partition_name
from prescient_pipeline.db.migrate import ensure_schema
from prescient_pipeline.polymarket.client import PolymarketClient
from prescient_pipeline.polymarket.parser import parse_events
from prescient_pipeline.polymarket.simulator import SimulatorServer, Universe
from prescient_pipeline.services.market_store import universe_as_of, write_refresh

START = datetime(2026, 6, 1, tzinfo=timezone.utc)

# One day of hourly observations of every market, derived from the first refresh's rows with a
# drifting price: what 24 refreshes would have written.
_GENERATE_DAY = """
INSERT INTO market_snapshots (market_id, ts, yes_price, no_price, best_bid, best_ask, liquidity, volume,
                              volume_24hr, active, closed, source)
SELECT s.market_id, h.ts, p.yes, 1 - p.yes, greatest(p.yes - 0.01, 0), least(p.yes + 0.01, 1),
       s.liquidity, s.volume, s.volume_24hr, s.active, s.closed, 'gamma'
FROM market_snapshots s
CROSS JOIN generate_series(CAST(:day AS timestamptz), CAST(:day AS timestamptz) + interval '23 hours', interval '1 hour') AS h(ts)
CROSS JOIN LATERAL (SELECT round(CAST(least(0.99, greatest(0.01, coalesce(s.yes_price, 0.5)
                    + 0.05 * sin(extract(epoch FROM h.ts) / 7200 + hashtext(s.market_id)))) AS numeric), 4) AS yes) p
WHERE s.ts = :base AND s.source = 'gamma'
"""


def timed_refreshes(engine, events, markets, first: datetime, count: int = 3) -> list[float]:
    seconds = []
    for n in range(count):
        started = time.perf_counter()
        write_refresh(engine, events, markets, first + timedelta(hours=n))
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--events", type=int, default=5000)
    args = parser.parse_args()
    now = START + timedelta(days=args.days)

    with scratch_database() as url, SimulatorServer(Universe(seed=7, events=args.events, start=now)) as sim:
        sim.start()
        engine = ensure_schema(get_engine(url))
        with PolymarketClient(sim.url, sim.url) as client:
            parsed = parse_events(client.fetch_active_events().events)
        events, markets = parsed.events, parsed.markets
        write_refresh(engine, events, markets, now)  # the base: first sight of every market
        empty = timed_refreshes(engine, events, markets, now + timedelta(hours=1))

        started = time.perf_counter()
        days = [START + timedelta(days=d) for d in range(args.days)]
        ensure_partitions(engine, *days)
        for day in days:
            with engine.begin() as conn:
                conn.execute(text(_GENERATE_DAY), {"day": day, "base": now})
                conn.execute(text("INSERT INTO market_refreshes (ts, markets) SELECT ts, :n FROM generate_series("
                                  "CAST(:day AS timestamptz), CAST(:day AS timestamptz) + interval '23 hours', "
                                  "interval '1 hour') ts"), {"day": day, "n": len(markets)})
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
            rows = conn.execute(text("SELECT count(*) FROM market_snapshots")).scalar_one()
            day_bytes = conn.execute(text("SELECT pg_total_relation_size(CAST(:p AS regclass))"),
                                     {"p": partition_name(days[len(days) // 2].date())}).scalar_one()
        generated = time.perf_counter() - started
        print(f"history: {rows:,} observations of {len(markets):,} markets over {args.days} days "
              f"(generated in {generated:.0f} s); {day_bytes / 2**20:,.0f} MiB per day of history")

        full = timed_refreshes(engine, events, markets, now + timedelta(hours=4))
        ratio = statistics.median(full) / statistics.median(empty)
        print(f"refresh write: {statistics.median(empty):.2f} s on an empty history, "
              f"{statistics.median(full):.2f} s on {args.days} days ({ratio:.2f}x; goal within 1.5x: "
              f"{'met' if ratio <= 1.5 else 'MISSED'}); runs {', '.join(f'{s:.2f}' for s in empty + full)} s")

        for label, as_of in (("mid-history", START + timedelta(days=args.days // 2, hours=9)),
                             ("latest", now + timedelta(hours=7))):
            reads = []
            for _ in range(3):
                started = time.perf_counter()
                frame = universe_as_of(engine, as_of)
                reads.append(time.perf_counter() - started)
            best = min(reads)
            print(f"universe as of {label} ({as_of:%Y-%m-%d %H:%M}): {len(frame):,} markets in {best:.2f} s "
                  f"(best of 3; goal < 2 s: {'met' if best < 2 else 'MISSED'})")


if __name__ == "__main__":
    main()
