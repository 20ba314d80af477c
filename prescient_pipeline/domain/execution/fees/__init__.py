"""Fee models, and which one applies to a market at a fill's time.

A new fee model is one class in one file here implementing `FeeModel`.
"""

from __future__ import annotations

from typing import Any

from .base import FeeModel, LevelTaken
from .free import NoFee
from .polymarket import PolymarketTakerFee


def _get(state: Any, name: str):
    try:
        value = state[name]
    except (KeyError, TypeError, IndexError):
        value = getattr(state, name, None)
    # pandas rows carry NaN/NA for unknown
    return None if value is None or value != value else value


def market_fee_model(state: Any) -> FeeModel:
    """The fee regime a market states in its row (markets / market_snapshots as of the fill):
    `fees_enabled` false or unknown is fee-free; enabled with a rate charges Polymarket's taker
    fee (exponent 1 when none is given); enabled without a rate, the conservative default, flagged."""
    enabled = _get(state, "fees_enabled")
    if not enabled:
        return NoFee()
    rate = _get(state, "fee_rate")
    if rate is None:
        return PolymarketTakerFee.conservative()
    exponent = _get(state, "fee_exponent")
    return PolymarketTakerFee(rate, 1 if exponent is None else exponent)


__all__ = ["FeeModel", "LevelTaken", "NoFee", "PolymarketTakerFee", "market_fee_model"]
