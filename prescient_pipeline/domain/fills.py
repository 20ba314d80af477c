"""Fills at one known price: a shorthand over the execution model (`domain.execution`) for
callers that have a price rather than a book (tests, benchmarks, what-if arithmetic).

`buy(amount, price, fee_rate)` spends up to `amount` dollars, fee included, at `price`;
`sell(shares, price, fee_rate)` sells at `price`. The fee is Polymarket's taker fee with
exponent 1 (`PolymarketTakerFee`), or none at rate 0; both return an `execution.Fill`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .accounting import to_price
from .execution.fees import FeeModel, NoFee, PolymarketTakerFee
from .execution.fills import Fill, TopOfBook
from .execution.order_book import OutcomeBook


def fee_model(fee_rate: Any = 0, exponent: Any = 1) -> FeeModel:
    rate = Decimal(str(fee_rate))
    if rate < 0:
        raise ValueError(f"fee_rate must not be negative, got {rate}")
    return NoFee() if rate == 0 else PolymarketTakerFee(rate, exponent)


def _at(price: Any) -> OutcomeBook:
    price = to_price(price)
    return OutcomeBook("YES", None, None, price, price, price, None, None, None)


def buy(amount: Any, price: Any, fee_rate: Any = 0) -> Fill:
    """Spend up to `amount` on shares at `price`; ValueError unless 0 < price < 1 and amount > 0."""
    if not 0 < to_price(price) < 1:
        raise ValueError(f"buy price must be strictly between 0 and 1, got {price}")
    return TopOfBook().buy(_at(price), Decimal(str(amount)), fee_model(fee_rate))


def sell(shares: Any, price: Any, fee_rate: Any = 0) -> Fill:
    """Sell `shares` at `price`; ValueError unless 0 < price <= 1 and shares > 0."""
    if not 0 < to_price(price) <= 1:
        raise ValueError(f"sell price must be in (0, 1], got {price}")
    return TopOfBook().sell(_at(price), Decimal(str(shares)), fee_model(fee_rate))


__all__ = ["fee_model", "buy", "sell"]
