"""Proof of no look-ahead in a backtest's ledger: the fills and settlements that broke the rule.

- A fill (buy or sale) must be priced from an observation at or before its signal's as-of time
  (a sale without a signal: at or before the fill itself). `trades.observed_at` records the
  observation a replayed buy used; a replayed exit is priced at the observation it is booked at
  (`executed_at`), so one without `observed_at` passes.
Only trades from the portfolio's first replayed day on are checked (a fork's copied past was
booked by its source).
- A settlement must not happen before the market's recorded resolution time
  (`market_resolutions.closed_time`); a settlement with no recorded resolution is not proven.

Both return the offending trades (empty: the rule held).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, text

_LATE_OBSERVATIONS_SQL = """
SELECT t.trade_id, t.portfolio_id, t.market_id, t.action, t.executed_at, t.observed_at,
       coalesce(s.as_of, a.as_of) AS signal_as_of
FROM trades t
JOIN portfolios p ON p.portfolio_id = t.portfolio_id
LEFT JOIN trading_signals s ON s.signal_id = t.signal_id
LEFT JOIN signal_archives a ON a.signal_id = t.signal_id
WHERE t.portfolio_id = ANY(:pids) AND t.action IN ('buy', 'sell') AND t.executed_at < :until
  AND t.executed_at >= coalesce(CAST(p.backtest_from AS timestamp) AT TIME ZONE 'UTC', '-infinity')
  AND ((t.action = 'buy' AND t.observed_at IS NULL) OR t.observed_at > t.executed_at
       OR t.observed_at > coalesce(s.as_of, a.as_of, t.executed_at))
ORDER BY t.portfolio_id, t.trade_id
"""

_EARLY_SETTLEMENTS_SQL = """
SELECT t.trade_id, t.portfolio_id, t.market_id, t.executed_at, r.closed_time
FROM trades t
JOIN portfolios p ON p.portfolio_id = t.portfolio_id
LEFT JOIN market_resolutions r ON r.market_id = t.market_id
WHERE t.portfolio_id = ANY(:pids) AND t.action = 'settle' AND t.executed_at < :until
  AND t.executed_at >= coalesce(CAST(p.backtest_from AS timestamp) AT TIME ZONE 'UTC', '-infinity')
  AND (r.closed_time IS NULL OR t.executed_at < r.closed_time)
ORDER BY t.portfolio_id, t.trade_id
"""


def _rows(engine: Engine, sql: str, portfolio_ids: list[int], until: datetime) -> list[dict]:
    if not portfolio_ids:
        return []
    with engine.connect() as conn:
        return [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r._mapping.items()}
                for r in conn.execute(text(sql), {"pids": list(portfolio_ids), "until": until})]


def fills_after_their_observations(engine: Engine, portfolio_ids: list[int], until: datetime) -> list[dict]:
    """Fills before `until` priced from an observation later than their signal's as-of (or than
    the fill), or with no recorded observation time."""
    return _rows(engine, _LATE_OBSERVATIONS_SQL, portfolio_ids, until)


def settlements_before_resolution(engine: Engine, portfolio_ids: list[int], until: datetime) -> list[dict]:
    """Settlements before `until` booked before the market's recorded resolution time, or for a
    market with none recorded."""
    return _rows(engine, _EARLY_SETTLEMENTS_SQL, portfolio_ids, until)
