"""Momentum: buy the favourite while its price sits in a band.

The crowd's favourite tends to keep winning; the band keeps out coin flips (too low) and
near-certainties with nothing left to earn (too high). Replaces the seed's `min_confidence` 0.75
with a conviction band 0.50-0.65, a combination that could never signal.
"""

from __future__ import annotations

from prescient_pipeline.domain.strategies.base import ConfigKey
from prescient_pipeline.domain.strategies.favourite_band import FavouriteBandStrategy


class Momentum(FavouriteBandStrategy):
    name = "momentum"
    description = "Buy the favourite outcome when its price is inside a band (default 0.55-0.85)."
    buys_favourite = True
    own_keys = (
        ConfigKey("favourite_min_price", 0.55, "Lowest favourite price to buy", minimum=0, maximum=1),
        ConfigKey("favourite_max_price", 0.85, "Highest favourite price to buy", minimum=0, maximum=1),
    )

    def describe(self, side, price, favourite_price, low, high) -> str:
        return f"favourite {side} at {price:.3f} in band {low:.2f}-{high:.2f}"


STRATEGY = Momentum()
