"""Checks of the prices, sizes and flags Polymarket sends, applied where each answer is parsed.

Missing (absent or null; blank text for a number) is unknown and becomes None. A value that is
present but is not what its field holds raises `InvalidValue`: a price must be a finite number in
[0, 1], a size a finite number >= 0, a flag true or false (a JSON boolean or the text
"true"/"false"). Nothing is clipped or guessed: "7.5" is not a price of 1 and "yes" is not true.
The record holding a bad value is unusable as a whole; its parser counts it under `reason`.
"""

from __future__ import annotations

import math

__all__ = ["InvalidValue", "flag", "price", "size"]

PRICE = "price"
SIZE = "size"
FLAG = "flag"


class InvalidValue(ValueError):
    """A present value that is not a valid `kind` (price, size or flag)."""

    def __init__(self, kind: str, field: str, value):
        self.kind = kind
        self.field = field
        self.value = value
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        super().__init__(f"{field} is not a valid {kind}: {shown}")

    @property
    def reason(self) -> str:
        """The rejection reason parsers count: invalid_price, invalid_size or invalid_flag."""
        return f"invalid_{self.kind}"


def _finite(value, kind: str, field: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidValue(kind, field, value)
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise InvalidValue(kind, field, value) from None
    if not math.isfinite(number):
        raise InvalidValue(kind, field, value)
    return number


def price(value, field: str = "price") -> float | None:
    """A probability in [0, 1] from a number or numeric text; None when missing."""
    number = _finite(value, PRICE, field)
    if number is not None and not 0.0 <= number <= 1.0:
        raise InvalidValue(PRICE, field, value)
    return number


def size(value, field: str = "size") -> float | None:
    """A quantity >= 0 (shares, dollars of volume or liquidity); None when missing."""
    number = _finite(value, SIZE, field)
    if number is not None and number < 0:
        raise InvalidValue(SIZE, field, value)
    return number


def flag(value, field: str = "flag") -> bool | None:
    """True or False from a JSON boolean or the text "true"/"false" (any case); None when missing.

    Nothing else is a flag: not "yes", 1, "1" or "": a market whose `closed` cannot be read must
    not be stored as closed = NULL, which would read as tradable.
    """
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "false"):
            return text == "true"
    raise InvalidValue(FLAG, field, value)
