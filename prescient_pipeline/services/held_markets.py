"""The markets the ledger still depends on: those with an open position."""

from __future__ import annotations

from sqlalchemy import Engine, text


def held_markets(engine: Engine) -> list[dict]:
    """market_id, question and token ids of every market some portfolio holds open."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            """
            SELECT m.market_id, m.question, m.yes_token_id, m.no_token_id
            FROM markets m
            WHERE EXISTS (SELECT 1 FROM portfolio_positions p WHERE p.market_id = m.market_id AND p.status = 'open')
            ORDER BY m.market_id
            """
        ))
        return [dict(r._mapping) for r in rows]
