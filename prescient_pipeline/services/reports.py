"""What users read: the per-portfolio report, the trade list, the balance check."""

from __future__ import annotations

from sqlalchemy import Engine, text

from ..domain.accounting import BALANCE_TOLERANCE

REPORT_SQL = """
SELECT p.portfolio_id, p.name, p.strategy_type, p.mode, p.status,
       p.current_balance AS cash,
       coalesce(pos.value, 0) AS positions_value,
       p.current_balance + coalesce(pos.value, 0) AS total_value,
       p.current_balance + coalesce(pos.at_bid, 0) AS liquidation_value,
       p.initial_balance, p.net_transfers, p.realized_pnl,
       coalesce(pos.value, 0) - coalesce(pos.cost, 0) AS unrealized_pnl,
       p.total_fees AS fees,
       coalesce(pos.n, 0) AS open_positions,
       (SELECT count(*) FROM trades t WHERE t.portfolio_id = p.portfolio_id) AS trades,
       c.win_rate, c.sharpe_ratio AS sharpe, c.sortino_ratio AS sortino, p.max_drawdown,
       c.return_1d, c.return_7d, c.return_30d, c.return_all_time, c.signal_execution_rate,
       p.last_price_update
FROM portfolios p
LEFT JOIN (
    SELECT portfolio_id, sum(market_value) AS value, sum(cost_basis) AS cost, count(*) AS n,
           sum(coalesce(liquidation_value, market_value)) AS at_bid
    FROM portfolio_positions WHERE status = 'open' GROUP BY portfolio_id
) pos ON pos.portfolio_id = p.portfolio_id
LEFT JOIN portfolio_performance_cache c ON c.portfolio_id = p.portfolio_id
WHERE (CAST(:pid AS integer) IS NULL OR p.portfolio_id = :pid)
ORDER BY p.portfolio_id
"""


def report(engine: Engine, portfolio_id: int | None = None) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(REPORT_SQL), {"pid": portfolio_id})]


def recent_trades(engine: Engine, portfolio_id: int | None = None, limit: int = 50) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(text(
            """
            SELECT t.trade_id, t.portfolio_id, p.name AS portfolio_name, p.mode, t.executed_at, t.action,
                   t.market_id, coalesce(m.question, pp.question) AS question, t.side,
                   t.shares, t.price, t.amount, t.fee, t.cash_delta, t.realized_pnl, t.reason,
                   t.evidence, t.requested_amount, t.mid_price, t.slippage, t.observed_at
            FROM trades t
            JOIN portfolios p ON p.portfolio_id = t.portfolio_id
            LEFT JOIN markets m ON m.market_id = t.market_id
            LEFT JOIN portfolio_positions pp ON pp.position_id = t.position_id
            WHERE (CAST(:pid AS integer) IS NULL OR t.portfolio_id = :pid)
            ORDER BY t.executed_at DESC, t.trade_id DESC LIMIT :limit
            """
        ), {"pid": portfolio_id, "limit": limit})
        return [dict(r._mapping) for r in rows]


def open_positions(engine: Engine, portfolio_id: int) -> list[dict]:
    """A portfolio's open positions with their market's question (the market row's, else the
    one stored with the position)."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            """
            SELECT pp.*, coalesce(m.question, pp.question) AS question
            FROM portfolio_positions pp LEFT JOIN markets m ON m.market_id = pp.market_id
            WHERE pp.portfolio_id = :pid AND pp.status = 'open'
            ORDER BY pp.position_id
            """
        ), {"pid": portfolio_id})
        return [dict(r._mapping) for r in rows]


# Two independent routes to the same number: the books balance when the running columns
# (cash, realized P&L) agree with each other and with the trade rows.
BALANCE_SQL = """
SELECT p.portfolio_id, p.name,
       p.current_balance AS cash,
       coalesce(pos.value, 0) AS positions_value,
       p.initial_balance + p.net_transfers + p.realized_pnl + (coalesce(pos.value, 0) - coalesce(pos.cost, 0)) AS expected_total,
       p.current_balance + coalesce(pos.value, 0) AS total_value,
       p.initial_balance + p.net_transfers + coalesce(t.cash_flow, 0) AS cash_from_trades,
       coalesce(t.realized, 0) AS realized_from_trades, p.realized_pnl
FROM portfolios p
LEFT JOIN (SELECT portfolio_id, sum(market_value) AS value, sum(cost_basis) AS cost
           FROM portfolio_positions WHERE status = 'open' GROUP BY portfolio_id) pos
       ON pos.portfolio_id = p.portfolio_id
LEFT JOIN (SELECT portfolio_id, sum(cash_delta) AS cash_flow, sum(coalesce(realized_pnl, 0)) AS realized
           FROM trades GROUP BY portfolio_id) t ON t.portfolio_id = p.portfolio_id
WHERE (CAST(:pid AS integer) IS NULL OR p.portfolio_id = :pid)
ORDER BY p.portfolio_id
"""


def unbalanced_portfolios(engine: Engine, portfolio_id: int | None = None) -> list[str]:
    """One message per portfolio (or for the one given) whose books do not balance to the cent
    (empty when all do)."""
    problems = []
    with engine.connect() as conn:
        for r in conn.execute(text(BALANCE_SQL), {"pid": portfolio_id}):
            for what, actual, expected in (
                ("total_value vs initial + transfers + realized + unrealized", r.total_value, r.expected_total),
                ("cash vs initial + transfers + trade cash flows", r.cash, r.cash_from_trades),
                ("realized_pnl vs trades", r.realized_pnl, r.realized_from_trades),
            ):
                if abs(actual - expected) >= BALANCE_TOLERANCE:
                    problems.append(f"portfolio {r.portfolio_id} ({r.name}): {what}: "
                                    f"{actual} != {expected} (difference {actual - expected})")
    return problems



# Settled positions: the price paid per share (the forecast) and the payout per share (the outcome).
_SETTLED_ENTRIES_SQL = """
SELECT pos.avg_price AS forecast, t.price AS outcome
FROM trades t JOIN portfolio_positions pos ON pos.position_id = t.position_id
WHERE t.portfolio_id = :pid AND t.action = 'settle'
ORDER BY t.executed_at, t.trade_id
"""
# Each position's capital: what its buy cost (fee included), held from open to close.
_HOLDINGS_SQL = """
SELECT coalesce(b.cost, pos.cost_basis) AS cost, pos.opened_at, pos.closed_at,
       pos.realized_pnl + CASE WHEN pos.status = 'open' THEN pos.unrealized_pnl ELSE 0 END AS pnl
FROM portfolio_positions pos
LEFT JOIN (SELECT position_id, sum(amount) AS cost FROM trades WHERE action = 'buy' GROUP BY position_id) b
       ON b.position_id = pos.position_id
WHERE pos.portfolio_id = :pid
"""
_FILLS_SQL = """
SELECT amount, fee, slippage, evidence FROM trades
WHERE portfolio_id = :pid AND action IN ('buy', 'sell')
"""
# The ledger's latest time: open positions count as held until then (for a backtest, the end of
# the last replayed day, not the wall clock).
_LEDGER_TIME_SQL = """
SELECT greatest(
    (SELECT max(last_marked_at) FROM portfolio_positions WHERE portfolio_id = :pid),
    (SELECT max(executed_at) FROM trades WHERE portfolio_id = :pid),
    (SELECT max("timestamp") FROM portfolio_history WHERE portfolio_id = :pid))
"""


def backtest_metrics(engine: Engine, portfolio_id: int) -> dict:
    """Brier score and calibration of the entries, return per capital-day, fees and slippage
    against the mid, and the book/history evidence mix of the fills (domain/backtest_metrics.py).
    For any portfolio, live or backtest."""
    from datetime import datetime, timezone

    from ..domain import backtest_metrics as bm

    params = {"pid": portfolio_id}
    with engine.connect() as conn:
        entries = [bm.Entry(float(r.forecast), float(r.outcome)) for r in conn.execute(text(_SETTLED_ENTRIES_SQL), params)]
        holdings = [bm.Holding(float(r.cost), r.opened_at, r.closed_at, float(r.pnl))
                    for r in conn.execute(text(_HOLDINGS_SQL), params)]
        fills = [bm.Fill(float(r.amount), float(r.fee), None if r.slippage is None else float(r.slippage), r.evidence)
                 for r in conn.execute(text(_FILLS_SQL), params)]
        held_until = conn.execute(text(_LEDGER_TIME_SQL), params).scalar() or datetime.now(timezone.utc)
    return bm.backtest_metrics(entries, holdings, fills, held_until)
