"""Polymarket's taker fee: `shares * rate * (p * (1 - p)) ** exponent`, paid in pUSD.

Rate and exponent are per market (Gamma `feeSchedule`, CLOB market info `fd.r` / `fd.e`), e.g.
rate 0.05, exponent 1 for a 2026 V2 category, or rate 0.25, exponent 2 for the early-2026
crypto schedule. Makers pay nothing, and a paper order always takes, so every fill pays it.

Rounding: the fee of one order is summed over the levels it took and rounded once to 4 decimal
places (0.0001 pUSD, the smallest fee Polymarket charges), half up; a fee that rounds to 0 is
not charged.

`per_share_array` is the same formula over numpy arrays, for strategies that price whole
market frames at once (arbitrage's cost of a share set).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable

import numpy as np

from .base import FeeModel, LevelTaken

FEE_QUANTUM = Decimal("0.0001")

# Charged when a market says fees are enabled but gives no parameters: the highest category
# rate seen in 2026 outside crypto, exponent 1 (flagged on the trade's fee model).
CONSERVATIVE_RATE = Decimal("0.05")
CONSERVATIVE_EXPONENT = Decimal(1)


def _exact(value) -> Decimal:
    value = value if isinstance(value, Decimal) else Decimal(str(value))
    # An integral exponent as an int keeps Decimal powers exact.
    return Decimal(int(value)) if value == value.to_integral_value() else value


def round_fee(fee: Decimal) -> Decimal:
    return fee.quantize(FEE_QUANTUM, rounding=ROUND_HALF_UP)


def per_share_array(price: np.ndarray, rate, exponent) -> np.ndarray:
    """The formula per share over arrays (float; rate and exponent may be arrays too)."""
    return np.asarray(rate, dtype="float64") * np.power(price * (1.0 - price), np.asarray(exponent, dtype="float64"))


class PolymarketTakerFee(FeeModel):
    def __init__(self, rate, exponent=1, flag: str | None = None) -> None:
        self.rate = _exact(rate)
        self.exponent = _exact(exponent)
        if self.rate < 0 or self.exponent < 0:
            raise ValueError(f"fee rate and exponent must not be negative, got {self.rate}, {self.exponent}")
        self.flag = flag

    def per_share(self, price: Decimal) -> Decimal:
        base = price * (1 - price)
        if base <= 0:
            return Decimal(0)
        exponent = int(self.exponent) if self.exponent == self.exponent.to_integral_value() else self.exponent
        return self.rate * base ** exponent

    def order_fee(self, taken: Iterable[LevelTaken]) -> Decimal:
        return round_fee(sum((shares * self.per_share(price) for price, shares in taken), Decimal(0)))

    def describe(self) -> str:
        return f"taker rate {self.rate} exponent {self.exponent}" + (f" ({self.flag})" if self.flag else "")

    @classmethod
    def conservative(cls) -> "PolymarketTakerFee":
        return cls(CONSERVATIVE_RATE, CONSERVATIVE_EXPONENT, flag="fee_parameters_unknown")


__all__ = ["FEE_QUANTUM", "CONSERVATIVE_RATE", "CONSERVATIVE_EXPONENT", "round_fee", "per_share_array",
           "PolymarketTakerFee"]
