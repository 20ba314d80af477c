"""The fee model interface: what a taker pays on top of (or out of) a fill's notional.

A fee model prices one order: the shares taken at each price level. It returns the fee in
dollars, already rounded the way its venue rounds it, so the ledger books exactly that amount.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from decimal import Decimal
from typing import Iterable

LevelTaken = tuple[Decimal, Decimal]  # (price, shares)


class FeeModel(ABC):
    # Why this model was chosen when that is worth a user's attention (e.g. parameters unknown).
    flag: str | None = None

    @abstractmethod
    def per_share(self, price: Decimal) -> Decimal:
        """Unrounded fee for one share taken at `price`."""

    @abstractmethod
    def order_fee(self, taken: Iterable[LevelTaken]) -> Decimal:
        """Fee in dollars for an order that took these levels, rounded as the venue rounds it."""

    def describe(self) -> str:
        return type(self).__name__


__all__ = ["FeeModel", "LevelTaken"]
