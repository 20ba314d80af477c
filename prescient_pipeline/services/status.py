"""What `prescient status` reports about the app database (Dagster and the API are asked by the CLI),
and the open positions whose market needs a user's eye (flagged by the price update)."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, text

from ..db.migrate import current_revision, head_revision
from ..domain.settlement import MARKET_MISSING
from .reports import unbalanced_portfolios

_FLAGGED_SQL = """
SELECT p.portfolio_id, f.name AS portfolio, p.position_id, p.market_id, coalesce(m.question, p.question) AS question,
       p.side, p.settlement_flag AS flag, c.missing_since, c.gamma_checked_at, p.current_price, p.last_marked_at
FROM portfolio_positions p
JOIN portfolios f ON f.portfolio_id = p.portfolio_id
LEFT JOIN markets m ON m.market_id = p.market_id
LEFT JOIN market_resolution_checks c ON c.market_id = p.market_id
WHERE p.status = 'open' AND p.settlement_flag IS NOT NULL
  AND (CAST(:pid AS integer) IS NULL OR p.portfolio_id = :pid)
ORDER BY p.portfolio_id, p.position_id
"""


def flagged_positions(conn_or_engine: Connection | Engine, portfolio_id: int | None = None) -> list[dict]:
    """Open positions whose market is resolving, resolved without a payable answer, or gone:
    what the price update flagged (`portfolio_positions.settlement_flag`)."""
    if isinstance(conn_or_engine, Engine):
        with conn_or_engine.connect() as conn:
            return flagged_positions(conn, portfolio_id)
    return [dict(r._mapping) for r in conn_or_engine.execute(text(_FLAGGED_SQL), {"pid": portfolio_id})]


def describe_flag(row: dict) -> str:
    """One line a user can act on."""
    where = f"portfolio {row['portfolio_id']} ({row['portfolio']}): {row['side']} position in market {row['market_id']}"
    if row["flag"] == MARKET_MISSING:
        since = row["missing_since"].isoformat() if row["missing_since"] else "this update"
        return f"{where} is known to neither Gamma nor the CLOB since {since}; kept at its last mark {row['current_price']}"
    return f"{where} is not settled: {row['flag']}; kept open at {row['current_price']}"


def database_status(engine: Engine) -> dict:
    """Reachability, migration state, freshness and balance; raises if the server is unreachable."""
    from .market_store import last_refresh  # pandas: not for the commands that only read flags

    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    current, head = current_revision(engine), head_revision()
    status = {"reachable": True, "revision": current, "head": head, "migrated": current == head}
    if not status["migrated"]:
        return status
    with engine.connect() as conn:
        refreshed_at, markets = last_refresh(conn)
        status["last_refresh"] = {"at": refreshed_at, "markets": markets}
        status["last_price_update"] = conn.execute(text("SELECT max(last_price_update) FROM portfolios WHERE mode = 'live'")).scalar()
        status["portfolios"] = [dict(r._mapping) for r in conn.execute(text(
            """
            SELECT p.portfolio_id, p.name, p.mode, p.status, p.last_price_update,
                   (SELECT max(cycle_date) FROM trading_signals s WHERE s.portfolio_id = p.portfolio_id) AS last_cycle
            FROM portfolios p ORDER BY p.portfolio_id
            """
        ))]
    status["unbalanced"] = unbalanced_portfolios(engine)
    status["flagged_positions"] = flagged_positions(engine)
    return status
