"""A fee-free market (or a what-if study without fees): nothing is charged."""

from __future__ import annotations

from decimal import Decimal
from typing import Iterable

from .base import FeeModel, LevelTaken

ZERO = Decimal(0)


class NoFee(FeeModel):
    def per_share(self, price: Decimal) -> Decimal:
        return ZERO

    def order_fee(self, taken: Iterable[LevelTaken]) -> Decimal:
        return ZERO

    def describe(self) -> str:
        return "fee-free"


__all__ = ["NoFee"]
