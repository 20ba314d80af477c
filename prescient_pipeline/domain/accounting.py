"""The paper ledger's books: precision, positions, marks, totals and the balance invariant.

Every ledger number is a `Decimal` at a fixed quantum that matches its NUMERIC column
(MONEY 6 dp, SHARES 8 dp, PRICE 8 dp). Each value is quantised once, where it is produced, and
the same quantised value is stored, summed and compared. That makes the invariant

    total_value == initial_balance + net_transfers + realized_pnl + unrealized_pnl

hold exactly, not approximately: cash only moves by amounts that also move cost basis,
realized P&L or transfers, and unrealized P&L is defined per position from the very market
value that goes into total value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any, Iterable, Mapping, NamedTuple

MONEY_QUANTUM = Decimal("0.000001")
SHARES_QUANTUM = Decimal("0.00000001")
PRICE_QUANTUM = Decimal("0.00000001")
ZERO = Decimal("0")

# Half away from zero, as PostgreSQL rounds NUMERIC: a value stored unquantised would be
# rounded the same way by the database.
ROUNDING = ROUND_HALF_UP

# A ledger that is off by this much (a cent) or more is out of balance.
BALANCE_TOLERANCE = Decimal("0.01")


def _decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        # Through str, so 0.1 becomes Decimal("0.1") and not its binary expansion.
        return Decimal(repr(value))
    return Decimal(value)


def to_money(value: Any) -> Decimal:
    return _decimal(value).quantize(MONEY_QUANTUM, rounding=ROUNDING)


def to_shares(value: Any, rounding: str = ROUNDING) -> Decimal:
    return _decimal(value).quantize(SHARES_QUANTUM, rounding=rounding)


def to_price(value: Any) -> Decimal:
    return _decimal(value).quantize(PRICE_QUANTUM, rounding=ROUNDING)


def shares_bought(value: Any) -> Decimal:
    """Shares credited by a buy: rounded down, so a fill never gives more than was paid for."""
    return to_shares(value, rounding=ROUND_DOWN)


@dataclass(frozen=True)
class PositionState:
    """An open position as the ledger sees it (a `portfolio_positions` row)."""

    market_id: str
    side: str
    shares: Decimal
    cost_basis: Decimal  # dollars paid, entry fee included
    avg_price: Decimal  # fill price per share, fee excluded
    opened_at: datetime | None = None
    entry_fee: Decimal = ZERO
    current_price: Decimal | None = None  # the last mark, if any
    position_id: int | None = None
    event_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "shares", to_shares(self.shares))
        object.__setattr__(self, "cost_basis", to_money(self.cost_basis))
        object.__setattr__(self, "avg_price", to_price(self.avg_price))
        object.__setattr__(self, "entry_fee", to_money(self.entry_fee))
        if self.current_price is not None:
            object.__setattr__(self, "current_price", to_price(self.current_price))

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "PositionState":
        """Build from a `portfolio_positions` row mapping (extra columns are ignored)."""
        return cls(
            market_id=row["market_id"],
            side=row["side"],
            shares=row["shares"],
            cost_basis=row["cost_basis"],
            avg_price=row["avg_price"],
            opened_at=row.get("opened_at"),
            entry_fee=row.get("entry_fee") or ZERO,
            current_price=row.get("current_price"),
            position_id=row.get("position_id"),
            event_id=row.get("event_id"),
        )


def open_position(
    market_id: str, side: str, fill: Any, opened_at: datetime | None = None, **extra: Any
) -> PositionState:
    """The position a buy fill opens: cost basis is the whole amount paid, fee included."""
    return PositionState(
        market_id=market_id,
        side=side,
        shares=fill.shares,
        cost_basis=fill.cost,
        avg_price=fill.price,
        opened_at=opened_at,
        entry_fee=fill.fee,
        **extra,
    )


class Mark(NamedTuple):
    market_value: Decimal
    unrealized_pnl: Decimal


def mark_price(position: PositionState, price: Any) -> Decimal:
    """The price a position is valued at: `price`, or when unknown (None) the last mark,
    else the entry price, so total value stays defined while a market has no quote."""
    if price is None:
        price = position.current_price if position.current_price is not None else position.avg_price
    return to_price(price)


def mark(position: PositionState, price: Any) -> Mark:
    """Value a position: `(market_value, unrealized_pnl)` at `mark_price(position, price)`."""
    market_value = to_money(position.shares * mark_price(position, price))
    return Mark(market_value, market_value - position.cost_basis)


def close_position(position: PositionState, proceeds: Any) -> Decimal:
    """Realized P&L of closing the whole position for `proceeds` (net of any exit fee)."""
    return to_money(proceeds) - position.cost_basis


@dataclass(frozen=True)
class Totals:
    """A portfolio's values at one moment (the money columns of `portfolio_history`)."""

    cash: Decimal
    positions_value: Decimal
    total_value: Decimal
    initial_balance: Decimal
    net_transfers: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    open_positions: int
    portfolio_id: int | None = None

    @property
    def total_profit_loss(self) -> Decimal:
        return self.realized_pnl + self.unrealized_pnl

    @property
    def invested(self) -> Decimal:
        """Capital the owner has put in: what the P&L is measured against."""
        return self.initial_balance + self.net_transfers


def portfolio_totals(
    *,
    cash: Any,
    initial_balance: Any,
    net_transfers: Any = ZERO,
    realized_pnl: Any = ZERO,
    positions: Iterable[tuple[PositionState, Any]] = (),
    fees: Any = ZERO,
    portfolio_id: int | None = None,
) -> Totals:
    """Totals from cash and each open position paired with its mark price (None = last mark)."""
    marks = [mark(position, price) for position, price in positions]
    positions_value = sum((m.market_value for m in marks), ZERO)
    cash = to_money(cash)
    return Totals(
        cash=cash,
        positions_value=positions_value,
        total_value=cash + positions_value,
        initial_balance=to_money(initial_balance),
        net_transfers=to_money(net_transfers),
        realized_pnl=to_money(realized_pnl),
        unrealized_pnl=sum((m.unrealized_pnl for m in marks), ZERO),
        fees=to_money(fees),
        open_positions=len(marks),
        portfolio_id=portfolio_id,
    )


def ledger_difference(totals: Totals) -> Decimal:
    """total_value - (initial + transfers + realized + unrealized); zero for a sound ledger."""
    return totals.total_value - (
        totals.initial_balance + totals.net_transfers + totals.realized_pnl + totals.unrealized_pnl
    )


class LedgerImbalanceError(ValueError):
    pass


def imbalance_message(totals: Totals, tolerance: Decimal = BALANCE_TOLERANCE) -> str | None:
    """A readable description of the imbalance, or None when the ledger balances."""
    difference = ledger_difference(totals)
    if abs(difference) < tolerance:
        return None
    who = f"portfolio {totals.portfolio_id}" if totals.portfolio_id is not None else "portfolio"
    return (
        f"{who} ledger is off by {difference}: total_value {totals.total_value} "
        f"(cash {totals.cash} + positions {totals.positions_value}) != "
        f"initial_balance {totals.initial_balance} + net_transfers {totals.net_transfers} "
        f"+ realized_pnl {totals.realized_pnl} + unrealized_pnl {totals.unrealized_pnl}"
    )


def check_balanced(totals: Totals, tolerance: Decimal = BALANCE_TOLERANCE) -> None:
    """Raise `LedgerImbalanceError` when |ledger_difference| >= tolerance (a cent by default)."""
    message = imbalance_message(totals, tolerance)
    if message is not None:
        raise LedgerImbalanceError(message)


def apply_transfer(cash: Any, net_transfers: Any, amount: Any) -> tuple[Decimal, Decimal]:
    """Move `amount` of capital in (positive) or out (negative): (new cash, new net transfers).

    A withdrawal may not exceed cash: open positions are not liquidated to pay it.
    """
    cash, net_transfers, amount = to_money(cash), to_money(net_transfers), to_money(amount)
    if cash + amount < 0:
        raise ValueError(f"cannot withdraw {-amount}: cash is only {cash}")
    return cash + amount, net_transfers + amount


__all__ = [
    "MONEY_QUANTUM",
    "SHARES_QUANTUM",
    "PRICE_QUANTUM",
    "BALANCE_TOLERANCE",
    "ZERO",
    "to_money",
    "to_shares",
    "to_price",
    "shares_bought",
    "PositionState",
    "open_position",
    "Mark",
    "mark_price",
    "mark",
    "close_position",
    "Totals",
    "portfolio_totals",
    "ledger_difference",
    "LedgerImbalanceError",
    "imbalance_message",
    "check_balanced",
    "apply_transfer",
]
