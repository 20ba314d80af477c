"""Time one market refresh of a 5,000-event / ~50,000-market universe into PostgreSQL
(goal: parse + write within 3x a bare COPY of the same rows).

    python benchmarks/bench_refresh.py [--events N] [--neg-risk-share S] [--max-legs L] [--refreshes R]

The simulator serves the universe on loopback; the refresh goes through the production client,
parser and store (services.market_refresh.refresh_markets). The first refresh inserts every row,
later ones update them in place (the hourly case) after the clock has moved. The floor is a
bare COPY of the rows that refresh wrote (events, markets and a snapshot per market), rendered
from the same dicts, into temporary tables without constraints or indexes in the same database.
The last column compares with COPY alone of the market rows already rendered.

Database: bench_prices.scratch_database (a throw-away database on PRESCIENT_DATABASE_URL's
server, or an embedded PostgreSQL under a temporary PRESCIENT_HOME).
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timezone

from sqlalchemy import text

from bench_prices import scratch_database
from prescient_pipeline.db import schema
from prescient_pipeline.db.engine import get_engine
from prescient_pipeline.db.migrate import ensure_schema
from prescient_pipeline.polymarket.client import PolymarketClient
from prescient_pipeline.polymarket.simulator.server import SimulatorServer
from prescient_pipeline.polymarket.simulator.universe import Universe
from prescient_pipeline.polymarket.parser import parse_events
from prescient_pipeline.services import market_store as store
from prescient_pipeline.services.bulk import stage, to_copy_text
from prescient_pipeline.services.market_refresh import refresh_markets
from prescient_pipeline.services.market_store import EVENT_COLUMNS, MARKET_COLUMNS

UNLIMITED = {"gamma": 1_000_000, "clob": 1_000_000}


def _bare_table(conn, name: str, like: str, columns: list[str]) -> None:
    """A temporary table with `like`'s columns and types, without constraints or indexes."""
    conn.exec_driver_sql(f"CREATE TEMP TABLE {name} ON COMMIT DROP AS "
                         f"SELECT {', '.join(columns)} FROM {like} WITH NO DATA")


def _copy(conn, table: str, columns: list[str], buf) -> None:
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buf)
    finally:
        cursor.close()


def floor_seconds(engine, events: list[dict], markets: list[dict], observed_at: datetime) -> dict[str, float]:
    """Two floors, from the rows the refresh wrote.

    `floor`: render and COPY every row the refresh writes (its events, markets and one snapshot
    per market) into tables without constraints or indexes: the least any writer in Python does.
    `copy_only`: COPY of the market rows alone, already rendered: the server's share of that.
    """
    snapshots = store.snapshot_rows(markets, observed_at, store.GAMMA)
    tables = [("events", EVENT_COLUMNS, events), ("markets", MARKET_COLUMNS, markets),
              ("market_snapshots", store.SNAPSHOT_COLUMNS, snapshots)]
    rendered = to_copy_text(markets, MARKET_COLUMNS)
    with engine.begin() as conn:
        for like, columns, _ in tables:
            _bare_table(conn, f"floor_{like}", like, columns)
        _bare_table(conn, "floor_copy_only", "markets", MARKET_COLUMNS)
        started = time.perf_counter()
        for like, columns, rows in tables:
            _copy(conn, f"floor_{like}", columns, to_copy_text(rows, columns))
        floor = time.perf_counter() - started
        started = time.perf_counter()
        _copy(conn, "floor_copy_only", MARKET_COLUMNS, rendered)
        copy_only = time.perf_counter() - started
    return {"floor": floor, "copy_only": copy_only}


def anatomy(engine, events: list[dict], markets: list[dict], observed_at: datetime) -> dict[str, float]:
    """The steps of market_store.write_refresh timed one by one, in a transaction rolled back."""
    steps: dict[str, float] = {}

    def timed(name, fn):
        started = time.perf_counter()
        result = fn()
        steps[name] = time.perf_counter() - started
        return result

    ts = {"ts": observed_at}
    with engine.connect() as conn, conn.begin() as tx:
        staged = timed("events: render + COPY to stage", lambda: stage(conn, "events", EVENT_COLUMNS, events))
        timed("events: upsert", lambda: conn.execute(
            text(store._upsert_sql("events", staged, "event_id", EVENT_COLUMNS)), ts))
        timed("markets: render", lambda: to_copy_text(markets, MARKET_COLUMNS))
        staged = timed("markets: render + COPY to stage", lambda: stage(conn, "markets", MARKET_COLUMNS, markets))
        timed("markets: upsert", lambda: conn.execute(
            text(store._upsert_sql("markets", staged, "market_id", MARKET_COLUMNS)), ts))
        timed("snapshots: INSERT from stage", lambda: conn.execute(
            text(store._snapshots_from_sql(staged)), {**ts, "source": store.GAMMA}))
        tx.rollback()
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5_000)
    # About ten markets per event: most events negRisk, with 3 to 21 legs.
    parser.add_argument("--neg-risk-share", type=float, default=0.82)
    parser.add_argument("--max-legs", type=int, default=21)
    parser.add_argument("--refreshes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    with scratch_database() as url:
        engine = ensure_schema(get_engine(url))
        started = time.perf_counter()
        universe = Universe(seed=args.seed, events=args.events, start=datetime.now(timezone.utc),
                            neg_risk_share=args.neg_risk_share, max_legs=args.max_legs)
        print(f"universe: {universe.open_event_count:,} open events, {universe.market_count:,} markets "
              f"(built in {time.perf_counter() - started:.1f}s)")
        with SimulatorServer(universe) as server:
            server.start()
            client = PolymarketClient(server.url, server.url, requests_per_10s=UNLIMITED)
            print(f"{'refresh':<9}{'events':>8}{'markets':>9}{'fetch s':>9}{'parse s':>9}{'write s':>9}"
                  f"{'floor s':>9}{'(parse+write)/floor':>21}{'copy-only s':>13}{'ratio to it':>13}")
            for n in range(args.refreshes):
                if n:
                    universe.advance(60)
                report = refresh_markets(engine, client)
                floors = floor_seconds(engine, report.events_rows, report.markets_rows, report.observed_at)
                s = report.seconds
                work = s["parse"] + s["write"]
                kind = "insert" if n == 0 else "update"
                print(f"{kind:<9}{report.events:>8,}{report.markets:>9,}{s['fetch']:>9.2f}{s['parse']:>9.2f}"
                      f"{s['write']:>9.2f}{floors['floor']:>9.2f}{work / floors['floor']:>20.1f}x"
                      f"{floors['copy_only']:>13.2f}{work / floors['copy_only']:>12.1f}x")
            parsed = parse_events(client.fetch_active_events().events)
        print("write, step by step (an update, rolled back):")
        for step, seconds in anatomy(engine, parsed.events, parsed.markets, datetime.now(timezone.utc)).items():
            print(f"  {step:<34}{seconds:>6.2f}s")
        with engine.connect() as conn:
            sizes = {t.name: conn.execute(text(f"SELECT count(*) FROM {t.name}")).scalar()
                     for t in (schema.events, schema.markets, schema.market_snapshots)}
        print("rows:", ", ".join(f"{k} {v:,}" for k, v in sizes.items()))


if __name__ == "__main__":
    main()
