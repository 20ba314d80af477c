"""A portfolio as it stood at a past time, reconstructed from its ledger (live or backtest).

- trades executed before the time, as they were;
- each position opened before then, as it stood then: one closed later is open again, with the
  shares and cost basis its earlier sales left, marked at the last stored observation of its
  side before the time (else at its entry price);
- cash = initial balance + transfers logged before then + those trades' cash flows.
Not reconstructable: the marks the portfolio showed at that moment, and liquidation values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select, text

from ..db.schema import portfolio_positions, trades
from ..domain.accounting import to_money

ZERO = Decimal(0)


@dataclass(frozen=True)
class Standing:
    at: datetime
    transfers: Decimal  # net transfers logged before `at`
    trades: list[dict]  # executed before `at`, in order
    positions: list[dict]  # opened before `at`, each as it stood then (status open or closed)
    cash: Decimal

    @property
    def open_positions(self) -> list[dict]:
        return [p for p in self.positions if p["status"] == "open"]


def standing_at(conn, portfolio: dict, at: datetime) -> Standing:
    """`portfolio` (its `portfolios` row) as it stood at `at`: see the module docstring."""
    portfolio_id = portfolio["portfolio_id"]
    transfers = to_money(conn.execute(text(
        "SELECT coalesce(sum(CASE WHEN to_portfolio_id = :pid THEN amount ELSE -amount END), 0) "
        "FROM portfolio_rebalancing_log WHERE (to_portfolio_id = :pid OR from_portfolio_id = :pid) "
        "AND \"timestamp\" < :at"), {"pid": portfolio_id, "at": at}).scalar())
    booked = [dict(r._mapping) for r in conn.execute(
        select(trades).where(trades.c.portfolio_id == portfolio_id, trades.c.executed_at < at)
        .order_by(trades.c.executed_at, trades.c.trade_id))]
    by_position: dict[int, list[dict]] = {}
    for t in booked:
        by_position.setdefault(t["position_id"], []).append(t)
    positions = [_position_at(conn, dict(r._mapping), by_position.get(r.position_id, []), at) for r in conn.execute(
        select(portfolio_positions).where(portfolio_positions.c.portfolio_id == portfolio_id,
                                          portfolio_positions.c.opened_at < at)
        .order_by(portfolio_positions.c.position_id))]
    cash = to_money(portfolio["initial_balance"] + transfers + sum((t["cash_delta"] for t in booked), ZERO))
    return Standing(at, transfers, booked, positions, cash)


def _position_at(conn, position: dict, booked: list[dict], end: datetime) -> dict:
    """A position as it stood at `end`, from its trades booked before then."""
    row = dict(position)
    if position["closed_at"] is not None and position["closed_at"] < end:
        return row  # closed by then: exactly as it is
    buys = [t for t in booked if t["action"] == "buy"]
    sales = [t for t in booked if t["action"] != "buy"]
    bought_shares = sum((t["shares"] for t in buys), ZERO) or position["shares"]
    bought_cost = sum((t["amount"] for t in buys), ZERO) or position["cost_basis"]
    # A sale takes away the cost basis of its shares: its proceeds minus its realized P&L.
    shares = bought_shares - sum((t["shares"] for t in sales), ZERO)
    cost = to_money(bought_cost - sum((t["cash_delta"] - (t["realized_pnl"] or ZERO) for t in sales), ZERO))
    price, marked_at = _last_observed_price(conn, position["market_id"], position["side"], end)
    if price is None:
        price, marked_at = position["entry_mark"] or position["avg_price"], position["opened_at"]
    value = to_money(shares * price)
    row.update(
        shares=shares, cost_basis=cost, current_price=price, market_value=value, liquidation_value=None,
        unrealized_pnl=value - cost, realized_pnl=sum((t["realized_pnl"] or ZERO for t in sales), ZERO),
        exit_price=None, exit_fee=sum((t["fee"] for t in sales), ZERO),
        proceeds=sum((t["cash_delta"] for t in sales), ZERO) if sales else None,
        status="open", close_reason=None, settlement_flag=None, closed_at=None, last_marked_at=marked_at,
    )
    return row


def _last_observed_price(conn, market_id: str, side: str, end: datetime):
    column = "yes_price" if side == "YES" else "no_price"
    row = conn.execute(text(
        f"SELECT {column} AS price, ts FROM market_snapshots WHERE market_id = :m AND ts < :end "
        f"AND {column} IS NOT NULL ORDER BY ts DESC LIMIT 1"), {"m": market_id, "end": end}).first()
    return (row.price, row.ts) if row else (None, None)
