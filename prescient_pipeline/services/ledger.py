"""Booking fills into the ledger tables, inside a caller's transaction.

Every function here expects the portfolio row to be locked (`lock_portfolio`) by the caller's
transaction, so no two writers interleave on one portfolio. Cash moves only with a trade row
(buy, sell, settle) or a logged transfer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import bindparam, func, select, text, update

from ..db.schema import portfolio_positions, portfolios, trades
from ..domain.accounting import ZERO, PositionState, Totals, mark, portfolio_totals, to_money, to_price, to_shares
from ..domain.execution import Fill, OutcomeBook
from ..domain.risk import PortfolioState
from ..errors import InputError


def lock_portfolio(conn, portfolio_id: int) -> dict:
    row = conn.execute(
        select(portfolios).where(portfolios.c.portfolio_id == portfolio_id).with_for_update()
    ).first()
    if row is None:
        raise InputError(f"no portfolio with id {portfolio_id}")
    return dict(row._mapping)


def market_clock(conn) -> datetime | None:
    """Ledger time is market time: the latest observation of any market.

    Live, that is a few minutes behind the wall clock; against the simulator it is the
    simulated clock, so holding times and history dates follow the data.
    """
    return conn.execute(text("SELECT max(ts) FROM market_snapshots")).scalar()


def open_position_rows(conn, portfolio_id: int) -> list[dict]:
    rows = conn.execute(
        select(portfolio_positions)
        .where(portfolio_positions.c.portfolio_id == portfolio_id, portfolio_positions.c.status == "open")
        .order_by(portfolio_positions.c.position_id)
    )
    return [dict(r._mapping) for r in rows]


def portfolio_state(row: dict) -> PortfolioState:
    return PortfolioState.from_row(row)


def book_buy(conn, portfolio_id: int, *, signal: dict, fill: Fill, price_seen, market_state, at: datetime) -> int:
    """Open a position for a buy fill and record the trade; returns the trade id.

    The position is marked at the outcome's displayed price (its entry mark, what exits compare
    with) and valued at its bid beside it."""
    book = OutcomeBook.from_state(signal["side"], market_state)
    entry_mark = mark_price_of(book, fill.price)
    position = PositionState(signal["market_id"], signal["side"], fill.shares, fill.cost, fill.price)
    market_value, unrealized = mark(position, entry_mark)
    position_id = conn.execute(_INSERT_POSITION, dict(
        portfolio_id=portfolio_id, market_id=signal["market_id"], event_id=signal.get("event_id"),
        token_id=signal.get("token_id"), question=signal.get("question"), side=signal["side"],
        shares=fill.shares, avg_price=fill.price, cost_basis=fill.cost, entry_fee=fill.fee,
        current_price=entry_mark, entry_mark=entry_mark, market_value=market_value, unrealized_pnl=unrealized,
        liquidation_value=liquidation_value(position, book.best_bid, market_value),
        status="open", opened_at=at, last_marked_at=at, signal_id=signal.get("signal_id"),
        group_id=signal.get("group_id"),
    )).scalar_one()
    trade_id = conn.execute(_INSERT_TRADE, dict(
        portfolio_id=portfolio_id, signal_id=signal.get("signal_id"), position_id=position_id,
        market_id=signal["market_id"], side=signal["side"], action="buy", shares=fill.shares,
        price=fill.price, price_seen=price_seen, amount=fill.cost, fee=fill.fee,
        cash_delta=-fill.cost, reason="signal", executed_at=at, **fill_columns(fill),
        # A replay's state says when it was observed; a live state is the market's current row.
        observed_at=market_state.get("observed_at") if isinstance(market_state, dict) else None,
    )).scalar_one()
    conn.execute(_DEBIT_BUY, {"portfolio": portfolio_id, "cost": fill.cost, "fee": fill.fee, "at": at})
    return trade_id


def fill_columns(fill: Fill) -> dict:
    """The trade columns that say how a fill was priced."""
    return {
        "evidence": fill.evidence,
        "levels": [[str(price), str(shares)] for price, shares in fill.levels],
        "mid_price": fill.mid, "slippage": fill.slippage, "requested_amount": fill.requested if fill.action == "buy" else None,
    }


def mark_price_of(book: OutcomeBook, fallback) -> Decimal:
    """The displayed price of an outcome (`OutcomeBook.displayed_price`), else `fallback`."""
    shown = book.displayed_price
    return to_price(shown if shown is not None else fallback)


def liquidation_value(position: PositionState, bid, market_value: Decimal) -> Decimal:
    """What selling the position at its side's best bid would bring before fees; at its mark
    (`market_value`) when no bid is known."""
    return market_value if bid is None else to_money(position.shares * bid)


# Built once: execution runs these for every fill.
_INSERT_POSITION = portfolio_positions.insert().returning(portfolio_positions.c.position_id)
_INSERT_TRADE = trades.insert().returning(trades.c.trade_id)
_DEBIT_BUY = update(portfolios).where(portfolios.c.portfolio_id == bindparam("portfolio")).values(
    current_balance=portfolios.c.current_balance - bindparam("cost"),
    total_fees=portfolios.c.total_fees + bindparam("fee"),
    trade_count=portfolios.c.trade_count + 1,
    total_trades_executed=portfolios.c.total_trades_executed + 1,
    last_trade_at=bindparam("at"), last_updated=func.now(),
)


@dataclass(frozen=True)
class Close:
    """A position closed (a settlement, or a sale that sold every share) or reduced (a sale that
    the bids took only part of: the rest stays open)."""

    portfolio_id: int
    position: dict  # its portfolio_positions row
    action: str  # sell | settle
    price: Decimal
    fee: Decimal
    proceeds: Decimal  # cash received, net of the fee
    reason: str
    gross: Decimal | None = None  # before the fee (a sale); None: the proceeds
    fill: Fill | None = None  # how a sale was priced; None: a settlement

    @property
    def shares(self) -> Decimal:
        return self.fill.shares if self.fill is not None else to_shares(self.position["shares"])

    @property
    def whole(self) -> bool:
        return self.shares >= to_shares(self.position["shares"])

    @property
    def cost(self) -> Decimal:
        """The cost basis the shares sold take with them: all of it, or their share of it."""
        basis = to_money(self.position["cost_basis"])
        return basis if self.whole else to_money(basis * self.shares / to_shares(self.position["shares"]))

    @property
    def realized(self) -> Decimal:
        return to_money(self.proceeds) - self.cost

    @property
    def round_trip_realized(self) -> Decimal:
        """The position's realized P&L once this is booked (earlier partial sales included)."""
        return to_money(self.position.get("realized_pnl") or 0) + self.realized


# Positions and portfolios take their closes in one statement each, whatever their number.
# A position's realized P&L, proceeds and exit fee add up over its sales.
_CLOSE_POSITIONS = text(
    """
    UPDATE portfolio_positions p
    SET status = 'closed', close_reason = v.reason, closed_at = :at, exit_price = v.price,
        exit_fee = p.exit_fee + v.fee, proceeds = coalesce(p.proceeds, 0) + v.proceeds,
        realized_pnl = p.realized_pnl + v.realized, current_price = v.price, market_value = 0,
        liquidation_value = 0, unrealized_pnl = 0, last_marked_at = :at
    FROM unnest(CAST(:ids AS bigint[]), CAST(:reasons AS text[]), CAST(:prices AS numeric[]),
                CAST(:fees AS numeric[]), CAST(:proceeds AS numeric[]), CAST(:realized AS numeric[]))
         AS v(position_id, reason, price, fee, proceeds, realized)
    WHERE p.position_id = v.position_id
    """
)
_REDUCE_POSITIONS = text(
    """
    UPDATE portfolio_positions p
    SET shares = p.shares - v.shares, cost_basis = p.cost_basis - v.cost, exit_fee = p.exit_fee + v.fee,
        proceeds = coalesce(p.proceeds, 0) + v.proceeds, realized_pnl = p.realized_pnl + v.realized
    FROM unnest(CAST(:ids AS bigint[]), CAST(:shares AS numeric[]), CAST(:costs AS numeric[]),
                CAST(:fees AS numeric[]), CAST(:proceeds AS numeric[]), CAST(:realized AS numeric[]))
         AS v(position_id, shares, cost, fee, proceeds, realized)
    WHERE p.position_id = v.position_id
    """
)
# A round trip counts as won or lost when its position closes.
_CREDIT_PORTFOLIOS = text(
    """
    UPDATE portfolios p
    SET current_balance = p.current_balance + v.proceeds, realized_pnl = p.realized_pnl + v.realized,
        total_fees = p.total_fees + v.fees, trade_count = p.trade_count + v.trades,
        total_winning_trades = p.total_winning_trades + v.wins,
        total_losing_trades = p.total_losing_trades + v.closed - v.wins,
        last_trade_at = :at, last_updated = now()
    FROM unnest(CAST(:ids AS integer[]), CAST(:proceeds AS numeric[]), CAST(:realized AS numeric[]),
                CAST(:fees AS numeric[]), CAST(:trades AS integer[]), CAST(:closed AS integer[]),
                CAST(:wins AS integer[]))
         AS v(portfolio_id, proceeds, realized, fees, trades, closed, wins)
    WHERE p.portfolio_id = v.portfolio_id
    """
)


def _close_fill_columns(close: Close) -> dict:
    if close.fill is None:
        return {"evidence": None, "levels": None, "mid_price": None, "slippage": None, "requested_amount": None}
    return fill_columns(close.fill)


def book_closes(conn, closes: list[Close], at: datetime) -> None:
    """Book closes (and partial sales) of positions of locked portfolios: a trade row each, the
    positions closed or reduced, and each portfolio's cash, realized P&L, fees and win/loss
    counters moved."""
    if not closes:
        return
    conn.execute(trades.insert(), [{
        "portfolio_id": c.portfolio_id, "signal_id": None, "position_id": c.position["position_id"],
        "market_id": c.position["market_id"], "side": c.position["side"], "action": c.action,
        "shares": c.shares, "price": c.price, "price_seen": None,
        "amount": c.gross if c.gross is not None else c.proceeds, "fee": c.fee, "cash_delta": c.proceeds,
        "realized_pnl": c.realized, "reason": c.reason, "executed_at": at, **_close_fill_columns(c),
    } for c in closes])
    whole = [c for c in closes if c.whole]
    partial = [c for c in closes if not c.whole]
    if whole:
        conn.execute(_CLOSE_POSITIONS, {
            "at": at, "ids": [c.position["position_id"] for c in whole], "reasons": [c.reason for c in whole],
            "prices": [c.price for c in whole], "fees": [c.fee for c in whole],
            "proceeds": [c.proceeds for c in whole], "realized": [c.realized for c in whole],
        })
    if partial:
        conn.execute(_REDUCE_POSITIONS, {
            "ids": [c.position["position_id"] for c in partial], "shares": [c.shares for c in partial],
            "costs": [c.cost for c in partial], "fees": [c.fee for c in partial],
            "proceeds": [c.proceeds for c in partial], "realized": [c.realized for c in partial],
        })
    sums: dict[int, dict] = {}
    for c in closes:
        s = sums.setdefault(c.portfolio_id, {"proceeds": ZERO, "realized": ZERO, "fees": ZERO, "trades": 0,
                                             "closed": 0, "wins": 0})
        s["proceeds"] += c.proceeds
        s["realized"] += c.realized
        s["fees"] += c.fee
        s["trades"] += 1
        if c.whole:
            s["closed"] += 1
            s["wins"] += 1 if c.round_trip_realized > 0 else 0
    ids = list(sums)
    conn.execute(_CREDIT_PORTFOLIOS, {"at": at, "ids": ids, **{
        name: [sums[i][name] for i in ids] for name in ("proceeds", "realized", "fees", "trades", "closed", "wins")}})


def derived_totals(row: dict, marked: list[tuple[PositionState, Decimal | None]],
                   positions_liquidation: Decimal | None = None) -> tuple[Totals, dict]:
    """A portfolio's totals, and its derived columns to store, from its row and its open
    positions, each paired with its mark price (None: its last mark); `positions_liquidation`
    is their value at the bid (None: at their marks)."""
    totals = portfolio_totals(
        cash=row["current_balance"], initial_balance=row["initial_balance"],
        net_transfers=row["net_transfers"], realized_pnl=row["realized_pnl"],
        positions=marked, fees=row["total_fees"], portfolio_id=row["portfolio_id"],
    )
    closed = row["total_winning_trades"] + row["total_losing_trades"]
    return totals, {
        "total_invested": sum((p.cost_basis for p, _ in marked), ZERO),
        "unrealized_pnl": totals.unrealized_pnl,
        "total_profit_loss": totals.realized_pnl + totals.unrealized_pnl,
        "avg_trade_pnl": to_money(totals.realized_pnl / closed) if closed else ZERO,
        "liquidation_value": totals.cash + (totals.positions_value if positions_liquidation is None
                                            else positions_liquidation),
    }


def refresh_totals(conn, portfolio_id: int) -> Totals:
    """Recompute the portfolio's derived columns from its open positions; return its totals."""
    row = lock_portfolio(conn, portfolio_id)
    rows = open_position_rows(conn, portfolio_id)
    positions = [PositionState.from_row(p) for p in rows]
    at_bid = sum((to_money(r["liquidation_value"] if r["liquidation_value"] is not None else r["market_value"] or 0)
                  for r in rows), ZERO)
    totals, derived = derived_totals(row, [(p, p.current_price) for p in positions], at_bid)
    conn.execute(update(portfolios).where(portfolios.c.portfolio_id == portfolio_id).values(**derived))
    return totals


def write_derived_totals(conn, derived: dict[int, dict], **values) -> None:
    """Store `derived_totals` columns of many locked portfolios in one statement, and set
    `values` (the same for all of them)."""
    if not derived:
        return
    ids = list(derived)
    extra = "".join(f", {name} = :{name}" for name in values)
    conn.execute(text(
        f"""
        UPDATE portfolios p
        SET total_invested = v.invested, unrealized_pnl = v.unrealized, total_profit_loss = v.pnl,
            avg_trade_pnl = v.avg_pnl, liquidation_value = v.liquidation, last_updated = now(){extra}
        FROM unnest(CAST(:ids AS integer[]), CAST(:invested AS numeric[]), CAST(:unrealized AS numeric[]),
                    CAST(:pnl AS numeric[]), CAST(:avg_pnl AS numeric[]), CAST(:liquidation AS numeric[]))
             AS v(portfolio_id, invested, unrealized, pnl, avg_pnl, liquidation)
        WHERE p.portfolio_id = v.portfolio_id
        """
    ), {
        "ids": ids,
        "invested": [derived[i]["total_invested"] for i in ids],
        "unrealized": [derived[i]["unrealized_pnl"] for i in ids],
        "pnl": [derived[i]["total_profit_loss"] for i in ids],
        "avg_pnl": [derived[i]["avg_trade_pnl"] for i in ids],
        "liquidation": [derived[i]["liquidation_value"] for i in ids],
        **values,
    })
