"""Shared market data in PostgreSQL: write a refresh, read the universe as of a time.

A refresh upserts `events` and `markets` (current state) and appends one `market_snapshots` row
per market, all in one transaction. Reads for strategies go through the snapshots, so a past
day sees the prices of that day and never a later one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import Connection, Engine, text

from ..db import schema
from ..db.history_partitions import ensure_partitions
from .bulk import stage

EVENT_COLUMNS = [c.name for c in schema.events.columns if c.name not in ("first_seen_at", "updated_at")]
MARKET_COLUMNS = [c.name for c in schema.markets.columns if c.name not in ("first_seen_at", "updated_at")]
# The market's rules and fee parameters travel with every snapshot, so the regime in force at a
# fill's time can be read back later; a book observation carries them over from the market.
RULE_COLUMNS = ["protocol_version", "tick_size", "min_order_size",
                "fees_enabled", "fee_rate", "fee_exponent", "fee_taker_only"]
SNAPSHOT_COLUMNS = [
    "market_id", "ts", "yes_price", "no_price", "best_bid", "best_ask",
    "liquidity", "volume", "volume_24hr", "active", "closed", "source",
    "last_trade_price", *RULE_COLUMNS, "bids", "asks",
]
GAMMA = "gamma"


@dataclass(frozen=True)
class RefreshWrite:
    events: int
    markets: int
    snapshots: int
    previous_market_count: int | None  # markets in the refresh before this one
    ts: datetime  # the refresh's own timestamp: its snapshots all carry it


def _upsert_sql(table: str, staged: str, key: str, columns: Sequence[str]) -> str:
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c != key)
    cols = ", ".join(columns)
    # A row already holding a later observation (a price update that overlapped this refresh's
    # fetch) keeps it; this refresh still adds its snapshot to the history.
    return (
        f"INSERT INTO {table} ({cols}, first_seen_at, updated_at) "
        f"SELECT {cols}, :ts, :ts FROM {staged} "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}, updated_at = EXCLUDED.updated_at "
        f"WHERE {table}.updated_at <= EXCLUDED.updated_at"
    )


def _snapshots_from_sql(staged: str) -> str:
    values = ", ".join(f":{c}" if c in ("ts", "source") else c for c in SNAPSHOT_COLUMNS)
    return f"INSERT INTO market_snapshots ({', '.join(SNAPSHOT_COLUMNS)}) SELECT {values} FROM {staged}"


def snapshot_rows(markets: Iterable[dict], ts: datetime, source: str) -> list[dict]:
    return [{**{c: m.get(c) for c in SNAPSHOT_COLUMNS}, "ts": ts, "source": source} for m in markets]


def _snapshots_of_updates_sql(source_rows: str, given: Sequence[str]) -> str:
    """Snapshots of a price update: what the rows give, the market's rules where they give none."""
    def value(column: str) -> str:
        if column in ("ts", "source"):
            return f":{column}"
        if column in given:
            return f"coalesce(s.{column}, m.{column})" if column in RULE_COLUMNS else f"s.{column}"
        return f"m.{column}" if column in RULE_COLUMNS else "NULL"

    return (f"INSERT INTO market_snapshots ({', '.join(SNAPSHOT_COLUMNS)}) "
            f"SELECT {', '.join(value(c) for c in SNAPSHOT_COLUMNS)} FROM {source_rows} s "
            "JOIN markets m ON m.market_id = s.market_id")


def last_refresh(conn) -> tuple[datetime | None, int | None]:
    """Time and market count of the latest full refresh."""
    row = conn.execute(text("SELECT ts, markets FROM market_refreshes WHERE source = 'gamma' ORDER BY ts DESC LIMIT 1")).first()
    return (row[0], row[1]) if row else (None, None)


def refresh_timestamp(observed_at: datetime, previous_ts: datetime | None) -> datetime:
    """A refresh is identified by its timestamp, so two refreshes must never share one.

    The server's Date header has one-second resolution (and the simulator's clock stands still
    until advanced), so a refresh stamped at or before the previous one is moved just after it.
    """
    if previous_ts is not None and observed_at <= previous_ts:
        return previous_ts + timedelta(microseconds=1)
    return observed_at


def write_refresh(engine: Engine, events: list[dict], markets: list[dict], observed_at: datetime,
                  before_commit: Callable[[Connection, RefreshWrite], None] | None = None) -> RefreshWrite:
    """Upsert events and markets and append one snapshot per market, in one transaction.

    `before_commit` sees the written rows inside that transaction; raising there rolls all of
    them back (a blocking data-quality check) and the refresh's `market_refreshes` row with them.
    """
    ensure_partitions(engine, observed_at)
    with engine.begin() as conn:
        # Serialise refreshes so two of them cannot pick the same timestamp.
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('prescient.market_refresh'))"))
        previous_ts, previous = last_refresh(conn)
        observed_at = refresh_timestamp(observed_at, previous_ts)
        staged_events = stage(conn, "events", EVENT_COLUMNS, events)
        conn.execute(text(_upsert_sql("events", staged_events, "event_id", EVENT_COLUMNS)), {"ts": observed_at})
        staged_markets = stage(conn, "markets", MARKET_COLUMNS, markets)
        conn.execute(text(_upsert_sql("markets", staged_markets, "market_id", MARKET_COLUMNS)), {"ts": observed_at})
        # The snapshots come from the staged rows: no second rendering and COPY of every market.
        snaps = conn.execute(text(_snapshots_from_sql(staged_markets)), {"ts": observed_at, "source": GAMMA}).rowcount
        conn.execute(text("INSERT INTO market_refreshes (ts, markets, events) VALUES (:ts, :markets, :events)"),
                     {"ts": observed_at, "markets": snaps, "events": len(events)})
        written = RefreshWrite(events=len(events), markets=len(markets), snapshots=snaps,
                               previous_market_count=previous, ts=observed_at)
        if before_commit is not None:
            before_commit(conn, written)
    return written


# Columns a book can update, with their array types: a price update of thousands of markets goes
# through arrays in one statement, without a staging table's catalog work every 5 minutes.
_BOOK_COLUMN_TYPES = {"market_id": "text", "yes_price": "numeric", "no_price": "numeric",
                      "best_bid": "numeric", "best_ask": "numeric", "last_trade_price": "numeric",
                      "tick_size": "numeric", "min_order_size": "numeric", "bids": "jsonb", "asks": "jsonb",
                      "fees_enabled": "boolean", "fee_rate": "numeric", "fee_exponent": "numeric",
                      "fee_taker_only": "boolean"}
# A book (or the CLOB's market info) states the market's rules: where it states none, the market
# keeps those it has.
_KEPT_WHEN_ABSENT = ("tick_size", "min_order_size", "last_trade_price",
                     "fees_enabled", "fee_rate", "fee_exponent", "fee_taker_only")


def _array_value(column: str, value):
    # Book levels go in as JSON text: a Python list would be read as a nested SQL array.
    return json.dumps(value) if column in ("bids", "asks") and value is not None else value


def write_market_updates(conn, markets: list[dict], observed_at: datetime, source: str) -> int:
    """Price-update path: refresh known markets' current state and append snapshots.

    Runs inside the caller's transaction. Only columns present in the rows are updated.
    """
    if not markets:
        return 0
    columns = [c for c in MARKET_COLUMNS if c in markets[0]]
    updates = ", ".join(
        f"{c} = coalesce(s.{c}, m.{c})" if c in _KEPT_WHEN_ABSENT else f"{c} = s.{c}"
        for c in columns if c != "market_id"
    )
    if set(columns) <= _BOOK_COLUMN_TYPES.keys():
        arrays = ", ".join(f"CAST(:{c} AS {_BOOK_COLUMN_TYPES[c]}[])" for c in columns)
        source_rows = f"unnest({arrays}) AS u({', '.join(columns)})"
        params = {c: [_array_value(c, m.get(c)) for m in markets] for c in columns}
    else:  # whole Gamma markets: many columns of many types, staged with COPY
        source_rows, params = stage(conn, "markets", columns, markets), {}
    # One statement: the rows (book levels included) are sent and decoded once, and the snapshots
    # read the market's rules as they were before this update. As in a refresh, the current state
    # is the latest observation: an older one only adds history.
    return conn.execute(text(
        f"WITH s AS MATERIALIZED (SELECT * FROM {source_rows}), "
        f"snapshots AS ({_snapshots_of_updates_sql('s', columns)} RETURNING 1), "
        f"current AS (UPDATE markets m SET {updates}, updated_at = :ts FROM s "
        "WHERE m.market_id = s.market_id AND m.updated_at <= :ts RETURNING 1) "
        "SELECT count(*) FROM snapshots"
    ), {"ts": observed_at, "source": source, **params}).scalar_one()


# The universe as of a time: the markets of the latest full refresh at or before it, each with
# its latest observation at or before it. Price updates snapshot only a held market's book, so
# a market's prices come from its latest snapshot of any kind, and what only Gamma says
# (liquidity, volume, active, closed) from its latest Gamma snapshot: a refresh or a price
# update's Gamma fallback. Event sizes are summed from those observations, so nothing later
# than `as_of` leaks in. Every market of the refresh at `t` has a Gamma snapshot at `t`, so its
# latest observations lie between `t` and `as_of`: the reads touch only those days' partitions,
# however long the history. Prices and tags arrive as floats and text (see to_market_frame).
_UNIVERSE_SQL = """
WITH universe AS (
    SELECT s.market_id FROM market_snapshots s WHERE s.source = 'gamma' AND s.ts = :refreshed
), window_rows AS (
    -- Everything observed since that refresh: one refresh's rows plus price updates, whatever
    -- the statistics of a partition that is still filling say.
    SELECT s.market_id, s.ts, s.source, s.yes_price, s.no_price, s.best_bid, s.best_ask, s.liquidity,
           s.volume, s.volume_24hr, s.active, s.closed
    FROM market_snapshots s WHERE s.ts >= :refreshed AND s.ts <= :as_of
), l AS (
    SELECT DISTINCT ON (market_id) market_id, liquidity, volume, volume_24hr, active, closed
    FROM window_rows WHERE source IN ('gamma', 'gamma_update')
    ORDER BY market_id, ts DESC
), p AS (
    SELECT DISTINCT ON (market_id) market_id, ts, yes_price, no_price, best_bid, best_ask
    FROM window_rows
    ORDER BY market_id, ts DESC, (source = 'clob')
)
SELECT m.market_id, m.event_id, m.question, coalesce(m.category, e.category) AS category,
       m.tags::text AS market_tags, e.tags::text AS event_tags,
       p.yes_price::float8 AS yes_price, p.no_price::float8 AS no_price, p.best_bid::float8 AS best_bid,
       p.best_ask::float8 AS best_ask, l.liquidity::float8 AS liquidity, l.volume::float8 AS volume,
       l.volume_24hr::float8 AS volume_24hr,
       m.end_date, l.active, l.closed, m.accepting_orders, m.neg_risk,
       m.neg_risk_other, coalesce(e.neg_risk_augmented, false) AS neg_risk_augmented,
       m.yes_token_id, m.no_token_id, e.end_date AS event_end_date, e.market_count AS event_market_count, p.ts AS observed_at
FROM universe u
JOIN l ON l.market_id = u.market_id
JOIN p ON p.market_id = u.market_id
JOIN markets m ON m.market_id = u.market_id
LEFT JOIN events e ON e.event_id = m.event_id
ORDER BY u.market_id  -- one order whatever plan: strategies' ties and the tests see the same frame
"""


def universe_as_of(engine: Engine, as_of: datetime) -> pd.DataFrame:
    """One row per market, as the strategies' market frame expects (see domain.market_frame)."""
    with engine.connect() as conn:
        # Bound first, so the planner prunes the history to the partitions between the two.
        refreshed = conn.execute(text("SELECT max(ts) FROM market_refreshes WHERE source = 'gamma' AND ts <= :as_of"),
                                 {"as_of": as_of}).scalar()
        # Today's partition is read while it fills, before autovacuum has analysed it: believing
        # it nearly empty, the planner would loop over the window once per market. Hash joins
        # cost the same at any size.
        conn.execute(text("SET LOCAL enable_nestloop = off"))
        frame = pd.read_sql_query(text(_UNIVERSE_SQL), conn,
                                  params={"as_of": as_of, "refreshed": refreshed or as_of})
    return to_market_frame(frame)


def to_market_frame(frame: pd.DataFrame) -> pd.DataFrame:
    for col in ("yes_price", "no_price", "best_bid", "best_ask", "liquidity", "volume", "volume_24hr"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    for col in ("end_date", "event_end_date", "observed_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    # Tags arrive as JSON text, event's then market's: the same few pairs repeat across thousands
    # of markets, so each distinct pair is parsed and merged once (every row gets its own list).
    merged: dict[tuple, list] = {}

    def tags(event_tags, market_tags) -> list:
        key = (event_tags, market_tags)
        if key not in merged:
            both = [t for raw in key if isinstance(raw, str) for t in json.loads(raw)]
            merged[key] = list(dict.fromkeys(both))
        return list(merged[key])

    frame["tags"] = [tags(ev, mk) for ev, mk in zip(frame.pop("event_tags").tolist(),
                                                    frame.pop("market_tags").tolist())]
    for col in ("neg_risk", "neg_risk_other", "neg_risk_augmented"):
        frame[col] = frame[col].fillna(False).astype(bool)
    by_event = frame.groupby("event_id", dropna=False)
    for col in ("liquidity", "volume", "volume_24hr"):
        known = by_event[col].transform("count")
        frame[f"event_{col}"] = by_event[col].transform("sum").where(known > 0)
    frame["event_market_count"] = frame["event_market_count"].fillna(0).astype(int)
    return frame.reset_index(drop=True)
