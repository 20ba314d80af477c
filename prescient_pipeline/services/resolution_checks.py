"""When Gamma last said how each held market stands, and since when a held market is known nowhere.

Gamma is the one place that says a market closed and how it resolved, and markets resolve early
while their book keeps answering. So every held market's Gamma state is read at least once an
hour, whatever its book says: a market refresh lists every market of the active events (closed
ones included) and counts as a read of the held ones it lists; the price update asks Gamma
directly, in batches, about the rest once their last read is an hour old, and at once about a
market whose book is gone or whose end date has passed (`market_resolution_checks`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import func, text
from sqlalchemy.dialects.postgresql import insert

from ..db.schema import market_resolution_checks

# Every held market's Gamma state is read at least this often.
GAMMA_CHECK_INTERVAL = timedelta(hours=1)


def gamma_due(market: dict, has_book: bool, now: datetime) -> bool:
    """Whether the price update asks Gamma about a held market (a row with `end_date` and
    `gamma_checked_at`): its book is gone, its end date has passed, or its last read is an
    hour old (or there was none)."""
    past_end = market["end_date"] is not None and market["end_date"] <= now
    checked = market.get("gamma_checked_at")
    return not has_book or past_end or checked is None or checked <= now - GAMMA_CHECK_INTERVAL


def _upsert(conn, rows: list[dict]) -> None:
    stmt = insert(market_resolution_checks).values(rows)
    conn.execute(stmt.on_conflict_do_update(
        index_elements=["market_id"],
        # An overlapping update that observed earlier never moves the last read back.
        set_={"gamma_checked_at": func.greatest(market_resolution_checks.c.gamma_checked_at,
                                                stmt.excluded.gamma_checked_at),
              "missing_since": stmt.excluded.missing_since},
    ))


def write_resolution_checks(conn, held: list[dict], asked: Iterable[str], missing: Iterable[str],
                            observed_at: datetime) -> None:
    """A price update's reads: `asked` were read from Gamma at `observed_at`; `missing` are
    known to neither Gamma nor the CLOB (since their first such update); every other held
    market is not missing. `held` rows carry the stored `gamma_checked_at` and `missing_since`."""
    asked, missing = set(asked), set(missing)
    rows = []
    for m in sorted(held, key=lambda m: m["market_id"]):  # one lock order for overlapping updates
        market_id = m["market_id"]
        if market_id not in asked and m.get("missing_since") is None and m.get("gamma_checked_at") is not None:
            continue  # nothing new to record
        rows.append({
            "market_id": market_id,
            "gamma_checked_at": observed_at if market_id in asked else m.get("gamma_checked_at"),
            "missing_since": (m.get("missing_since") or observed_at) if market_id in missing else None,
        })
    if rows:
        _upsert(conn, rows)


# The held markets a refresh listed: Gamma told it their state (closed, outcome prices, UMA
# status), written to `markets` in the same transaction.
_REFRESH_READS = text(
    """
    INSERT INTO market_resolution_checks (market_id, gamma_checked_at, missing_since)
    SELECT s.market_id, :ts, NULL
    FROM market_snapshots s
    WHERE s.source = 'gamma' AND s.ts = :ts
      AND s.market_id IN (SELECT market_id FROM portfolio_positions WHERE status = 'open')
    ORDER BY s.market_id
    ON CONFLICT (market_id) DO UPDATE
    SET gamma_checked_at = greatest(market_resolution_checks.gamma_checked_at, EXCLUDED.gamma_checked_at),
        missing_since = NULL
    """
)


def record_refresh_reads(conn, refreshed_at: datetime) -> None:
    """Inside a refresh's transaction: the held markets it listed were read from Gamma."""
    conn.execute(_REFRESH_READS, {"ts": refreshed_at})
