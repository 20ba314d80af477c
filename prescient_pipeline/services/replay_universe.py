"""What a replay may know at a past time T: the market frame, and the state of given markets.

Both read live observations (refresh snapshots, price updates, books) and imported history
(source `history`) alike, and never anything later than T:
- the universe is the markets of the latest observation grid at or before T (a live refresh,
  source 'gamma', or an imported grid time, source 'history'), each with its latest observation
  at or before T. At the same time a live observation wins over a history point (it may carry a
  book), so replaying a day a live portfolio traded reads what the live run read.
- resolution fields (final prices, UMA status, closed time) are never in the frame. A market's
  state for fills and marks is closed, with its final prices, only from its recorded resolution
  time (`market_resolutions.closed_time`) on.

What the current `markets` row says is read only where it cannot leak the future: fixed
attributes (question, end date, neg-risk, tokens) and, for a market still open now, whether it
accepts orders; a market closed now was open then unless an observation of then says otherwise.
Fee and tick rules come from the observation when it states them (a live one), else from the
market's current rules: imported history has no record of them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import text

from .market_store import to_market_frame

# Live observations before history points of the same time; among live ones, the order the live
# universe read uses.
_LATEST_FIRST = "ORDER BY s.ts DESC, (s.source = 'history'), (s.source = 'clob')"

# Every market of the grid at `refreshed` has an observation then, so its latest ones lie in
# [refreshed, as_of]: one pass over that window's rows (one or two grid times) serves them all.
# Prices and tags arrive as floats and text, which the frame wants (see to_market_frame).
_UNIVERSE_SQL = """
WITH universe AS (
    SELECT DISTINCT s.market_id FROM market_snapshots s
    WHERE s.ts = :refreshed AND s.source IN ('gamma', 'history')
), window_rows AS (
    SELECT s.market_id, s.ts, s.source, s.yes_price, s.no_price, s.best_bid, s.best_ask, s.liquidity,
           s.volume, s.volume_24hr, s.active, s.closed
    FROM market_snapshots s WHERE s.ts >= :refreshed AND s.ts <= :as_of
), p AS (
    -- Live observations before history points of the same time; among live ones, the order the
    -- live universe read uses.
    SELECT DISTINCT ON (market_id) market_id, ts, yes_price, no_price, best_bid, best_ask, active, closed
    FROM window_rows
    ORDER BY market_id, ts DESC, (source = 'history'), (source = 'clob')
), l AS (
    SELECT DISTINCT ON (market_id) market_id, liquidity, volume, volume_24hr, active, closed
    FROM window_rows WHERE source IN ('gamma', 'gamma_update')
    ORDER BY market_id, ts DESC
)
SELECT m.market_id, m.event_id, m.question, coalesce(m.category, e.category) AS category,
       m.tags::text AS market_tags, e.tags::text AS event_tags,
       p.yes_price::float8 AS yes_price, p.no_price::float8 AS no_price, p.best_bid::float8 AS best_bid,
       p.best_ask::float8 AS best_ask, l.liquidity::float8 AS liquidity, l.volume::float8 AS volume,
       l.volume_24hr::float8 AS volume_24hr,
       m.end_date, coalesce(p.active, l.active) AS active, coalesce(p.closed, l.closed) AS closed,
       CASE WHEN coalesce(p.closed, l.closed) THEN false
            WHEN m.closed THEN true
            ELSE m.accepting_orders END AS accepting_orders,
       m.neg_risk, m.neg_risk_other, coalesce(e.neg_risk_augmented, false) AS neg_risk_augmented,
       m.yes_token_id, m.no_token_id, e.end_date AS event_end_date, e.market_count AS event_market_count,
       p.ts AS observed_at
FROM universe u
JOIN p ON p.market_id = u.market_id
LEFT JOIN l ON l.market_id = u.market_id
JOIN markets m ON m.market_id = u.market_id
LEFT JOIN events e ON e.event_id = m.event_id
ORDER BY m.market_id
"""


def replay_universe_as_of(engine, as_of: datetime) -> pd.DataFrame:
    """The market frame (domain.market_frame) as it could be known at `as_of`: see the module
    docstring. Empty when nothing was observed at or before it."""
    with engine.connect() as conn:
        refreshed = conn.execute(text("SELECT max(ts) FROM market_refreshes WHERE ts <= :as_of"),
                                 {"as_of": as_of}).scalar()
        # As the live read: hash joins cost the same whatever a partition's statistics say.
        conn.execute(text("SET LOCAL enable_nestloop = off"))
        frame = pd.read_sql_query(text(_UNIVERSE_SQL), conn,
                                  params={"as_of": as_of, "refreshed": refreshed or as_of})
    return to_market_frame(frame)


# How far back a held market's last observation is looked for (bounds the partitions read).
STATE_LOOKBACK = timedelta(days=7)

# Each (time, market): its latest observation in [time - STATE_LOOKBACK, time]. The constant
# bounds let the planner keep to the partitions of the whole span.
_STATES_SQL = f"""
SELECT t.at, m.market_id, p.ts AS observed_at, p.source, p.yes_price, p.no_price, p.best_bid, p.best_ask,
       p.last_trade_price, p.bids, p.asks,
       coalesce(p.tick_size, m.tick_size) AS tick_size, coalesce(p.min_order_size, m.min_order_size) AS min_order_size,
       coalesce(p.fees_enabled, m.fees_enabled) AS fees_enabled, coalesce(p.fee_rate, m.fee_rate) AS fee_rate,
       coalesce(p.fee_exponent, m.fee_exponent) AS fee_exponent,
       coalesce(p.fee_taker_only, m.fee_taker_only) AS fee_taker_only,
       p.closed AS observed_closed, m.closed AS closed_now, m.accepting_orders AS accepting_now,
       r.closed_time, r.outcome_prices AS final_prices, r.uma_resolution_status AS final_uma_status
FROM unnest(CAST(:times AS timestamptz[])) AS t(at)
CROSS JOIN markets m
LEFT JOIN LATERAL (
    SELECT s.* FROM market_snapshots s
    WHERE s.market_id = m.market_id AND s.ts <= t.at AND s.ts >= t.at - CAST(:lookback AS interval)
      AND s.ts >= :since AND s.ts <= :until
    {_LATEST_FIRST} LIMIT 1
) p ON true
LEFT JOIN market_resolutions r ON r.market_id = m.market_id
WHERE m.market_id = ANY(:ids)
ORDER BY t.at, m.market_id
"""


def market_states_at(conn, market_ids, at: datetime) -> dict[str, dict]:
    """Each market's state at `at` for fills, marks, exits and settlement: its latest observation
    at or before `at` (book columns where it has a book; `observed_at` says when), closed with its
    final prices once its recorded resolution time has come. Markets with neither are left out."""
    return market_states_at_times(conn, market_ids, [at]).get(at, {})


def market_states_at_times(conn, market_ids, times) -> dict[datetime, dict[str, dict]]:
    """`market_states_at` for each of `times`, in one read: {time: {market_id: state}}."""
    ids = sorted(set(market_ids))
    times = sorted(set(times))
    if not ids or not times:
        return {}
    rows = conn.execute(text(_STATES_SQL), {
        "ids": ids, "times": times, "lookback": STATE_LOOKBACK,
        "since": times[0] - STATE_LOOKBACK, "until": times[-1],
    }).mappings()
    states: dict[datetime, dict[str, dict]] = {at: {} for at in times}
    for r in rows:
        at = r["at"]
        # Resolved by `at`: its recorded closed time has come (an import without one: the first
        # history row that says closed, which lies at or after the close).
        resolved = (r["closed_time"] <= at) if r["closed_time"] is not None else bool(r["observed_closed"])
        if r["observed_at"] is None and not resolved:
            continue
        closed = resolved or bool(r["observed_closed"])
        state = {k: r[k] for k in ("market_id", "observed_at", "source", "yes_price", "no_price", "best_bid",
                                   "best_ask", "last_trade_price", "bids", "asks", "tick_size", "min_order_size",
                                   "fees_enabled", "fee_rate", "fee_exponent", "fee_taker_only")}
        state.update(
            closed=closed,
            accepting_orders=False if closed else (True if r["closed_now"] else r["accepting_now"]),
            outcome_prices=r["final_prices"] if resolved else None,
            uma_resolution_status=r["final_uma_status"] if resolved else None,
            resolved_at=r["closed_time"] if resolved else None,
        )
        states[at][r["market_id"]] = state
    return states


def market_event_times(conn, market_ids, start: datetime, end: datetime) -> dict[datetime | None, set[str]]:
    """When in [start, end) a replay must look at each of these markets: its observations and
    its recorded resolution time, as {time: markets}; under None, the markets that resolved
    before `start` (a position carried into a window after its market's close settles at once)."""
    ids = sorted(set(market_ids))
    if not ids:
        return {}
    rows = conn.execute(text(
        "SELECT DISTINCT ts, market_id FROM market_snapshots "
        "WHERE market_id = ANY(:ids) AND ts >= :start AND ts < :end "
        "UNION SELECT closed_time, market_id FROM market_resolutions WHERE market_id = ANY(:ids) "
        "AND closed_time >= :start AND closed_time < :end "
        "UNION SELECT NULL, market_id FROM market_resolutions WHERE market_id = ANY(:ids) AND closed_time < :start"
    ), {"ids": ids, "start": start, "end": end})
    events: dict[datetime | None, set[str]] = {}
    for at, market_id in rows:
        events.setdefault(at, set()).add(market_id)
    return events
