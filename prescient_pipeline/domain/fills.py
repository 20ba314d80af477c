"""Virtual fills: what a taker order costs or returns on a binary market, fee included.

Polymarket's taker fee per share is `fee_rate * p * (1 - p)` (makers pay nothing, and a paper
trader is always a taker). A buy spends a fixed dollar `amount` that must cover both the shares
and the fee on those shares, so the share count solves

    amount = shares * p + fee_rate * p * (1 - p) * shares  =>  shares = amount / (p + fee_rate*p*(1-p))

Shares round down to the share quantum and the fee is what the amount leaves after the shares,
so the position never gets more than it paid for and cash falls by exactly `amount`.

Price helpers return None when there is nothing to trade at (no quote, or a price outside
(0, 1)); the fill functions raise ValueError on such input, since reaching them is a caller bug.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from prescient_pipeline.domain import book
from prescient_pipeline.domain.accounting import ZERO, shares_bought, to_money, to_price, to_shares


@dataclass(frozen=True)
class BuyFill:
    shares: Decimal
    price: Decimal
    fee: Decimal
    cost: Decimal  # cash paid: the whole amount, fee included (the position's cost basis)


@dataclass(frozen=True)
class SellFill:
    shares: Decimal
    price: Decimal
    fee: Decimal
    gross: Decimal  # shares * price, before the fee
    proceeds: Decimal  # cash received: gross - fee


def _fee_per_share(price: Decimal, fee_rate: Decimal) -> Decimal:
    return fee_rate * price * (1 - price)


def _check_fee_rate(fee_rate: Any) -> Decimal:
    fee_rate = Decimal(str(fee_rate))
    if fee_rate < 0:
        raise ValueError(f"fee_rate must not be negative, got {fee_rate}")
    return fee_rate


def taker_fee(shares: Any, price: Any, fee_rate: Any) -> Decimal:
    """Taker fee in dollars for `shares` traded at `price`."""
    price, fee_rate = to_price(price), _check_fee_rate(fee_rate)
    return to_money(to_shares(shares) * _fee_per_share(price, fee_rate))


def buy(amount: Any, price: Any, fee_rate: Any = 0) -> BuyFill:
    """Spend `amount` dollars on shares at `price`; raises ValueError unless 0 < price < 1."""
    amount, price, fee_rate = to_money(amount), to_price(price), _check_fee_rate(fee_rate)
    if amount <= 0:
        raise ValueError(f"buy amount must be positive, got {amount}")
    if not ZERO < price < 1:
        raise ValueError(f"buy price must be strictly between 0 and 1, got {price}")
    shares = shares_bought(amount / (price + _fee_per_share(price, fee_rate)))
    fee = to_money(amount - shares * price)
    return BuyFill(shares=shares, price=price, fee=fee, cost=amount)


def sell(shares: Any, price: Any, fee_rate: Any = 0) -> SellFill:
    """Sell `shares` at `price`; raises ValueError unless 0 <= price <= 1 and shares > 0."""
    shares, price, fee_rate = to_shares(shares), to_price(price), _check_fee_rate(fee_rate)
    if shares <= 0:
        raise ValueError(f"sell shares must be positive, got {shares}")
    if not ZERO <= price <= 1:
        raise ValueError(f"sell price must be between 0 and 1, got {price}")
    gross = to_money(shares * price)
    fee = taker_fee(shares, price, fee_rate)
    return SellFill(shares=shares, price=price, fee=fee, gross=gross, proceeds=gross - fee)


def _field(state: Any, name: str) -> Any:
    """Read `name` from a mapping, a pandas row or an object with attributes; None if absent."""
    try:
        return state[name]
    except (KeyError, TypeError, IndexError):
        return getattr(state, name, None)


def _quote_args(state: Any) -> tuple:
    return tuple(_field(state, k) for k in ("yes_price", "no_price", "best_bid", "best_ask"))


def buy_fill_price(side: str, market_state: Any, slippage_bps: float = 0.0) -> Decimal | None:
    """Price a buy of `side` fills at (`book.ask_price`), or None if unknown or not in (0, 1).

    `market_state` has yes_price, no_price, best_bid, best_ask (a markets/market_snapshots row).
    """
    price = book.ask_price(side, *_quote_args(market_state), slippage_bps=slippage_bps)
    if price is None:
        return None
    price = to_price(price)
    return price if ZERO < price < 1 else None


def sell_fill_price(side: str, market_state: Any, slippage_bps: float = 0.0) -> Decimal | None:
    """Price a sale of `side` fills at (`book.bid_price`), or None if unknown or not above 0
    (a zero bid means nobody is buying)."""
    price = book.bid_price(side, *_quote_args(market_state), slippage_bps=slippage_bps)
    if price is None:
        return None
    price = min(to_price(price), Decimal(1))
    return price if price > 0 else None


__all__ = [
    "BuyFill",
    "SellFill",
    "taker_fee",
    "buy",
    "sell",
    "buy_fill_price",
    "sell_fill_price",
]
