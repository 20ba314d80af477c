"""What `prescient status` reports about the app database (Dagster and the API are asked by the CLI)."""

from __future__ import annotations

from sqlalchemy import Engine, text

from ..db.migrate import current_revision, head_revision
from .market_store import last_refresh
from .reports import unbalanced_portfolios


def database_status(engine: Engine) -> dict:
    """Reachability, migration state, freshness and balance; raises if the server is unreachable."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    current, head = current_revision(engine), head_revision()
    status = {"reachable": True, "revision": current, "head": head, "migrated": current == head}
    if not status["migrated"]:
        return status
    with engine.connect() as conn:
        refreshed_at, markets = last_refresh(conn)
        status["last_refresh"] = {"at": refreshed_at, "markets": markets}
        status["last_price_update"] = conn.execute(text("SELECT max(last_price_update) FROM portfolios")).scalar()
        status["portfolios"] = [dict(r._mapping) for r in conn.execute(text(
            """
            SELECT p.portfolio_id, p.name, p.status, p.last_price_update,
                   (SELECT max(cycle_date) FROM trading_signals s WHERE s.portfolio_id = p.portfolio_id) AS last_cycle
            FROM portfolios p ORDER BY p.portfolio_id
            """
        ))]
    status["unbalanced"] = unbalanced_portfolios(engine)
    return status
