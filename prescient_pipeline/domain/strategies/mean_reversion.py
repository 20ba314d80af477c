"""Mean reversion: when the favourite is strongly priced, buy the underdog.

Bets that lopsided markets overshoot. Below the band the market is not lopsided enough to
revert; above it the underdog is nearly dead and cheap for a reason.
"""

from __future__ import annotations

from prescient_pipeline.domain.strategies.base import ConfigKey
from prescient_pipeline.domain.strategies.favourite_band import FavouriteBandStrategy


class MeanReversion(FavouriteBandStrategy):
    name = "mean_reversion"
    description = "When the favourite's price is inside a band (default 0.70-0.95), buy the underdog."
    buys_favourite = False
    own_keys = (
        ConfigKey("favourite_min_price", 0.70, "Lowest favourite price at which to buy the underdog",
                  minimum=0, maximum=1),
        ConfigKey("favourite_max_price", 0.95, "Highest favourite price at which to buy the underdog",
                  minimum=0, maximum=1),
    )

    def describe(self, side, price, favourite_price, low, high) -> str:
        return f"underdog {side} at {price:.3f}; favourite at {favourite_price:.3f} in band {low:.2f}-{high:.2f}"


STRATEGY = MeanReversion()
