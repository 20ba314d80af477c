"""Strategies keyed on the favourite's price being inside a band: momentum and mean reversion.

They differ only in which side they buy once the favourite is in the band. Confidence: 70% where
the favourite sits in the band, 30% liquidity (logarithmic, full at $1M).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from prescient_pipeline.domain.book import ask_prices
from prescient_pipeline.domain.strategies.base import (
    ConfigError,
    Strategy,
    StrategyContext,
    band_position,
    liquidity_score,
    make_signals,
    strictly_inside_unit,
)


class FavouriteBandStrategy(Strategy):
    """Subclasses set `buys_favourite` and `describe(side, price, favourite_price, low, high)`."""

    buys_favourite: bool = True

    def describe(self, side: str, price: float, favourite_price: float, low: float, high: float) -> str:
        raise NotImplementedError

    def check_config(self, config: dict) -> None:
        if config["favourite_min_price"] > config["favourite_max_price"]:
            raise ConfigError(
                f"favourite_min_price: must be <= favourite_max_price "
                f"({config['favourite_min_price']:g} > {config['favourite_max_price']:g})"
            )

    def signals(self, markets: pd.DataFrame, config: dict, ctx: StrategyContext) -> pd.DataFrame:
        low, high = config["favourite_min_price"], config["favourite_max_price"]
        yes = markets["yes_price"].to_numpy(dtype="float64")
        no = markets["no_price"].to_numpy(dtype="float64")
        favourite_price = markets["favourite_price"].to_numpy(dtype="float64")
        yes_is_favourite = yes >= no
        buys_yes = yes_is_favourite if self.buys_favourite else ~yes_is_favourite
        bought_price = np.where(buys_yes, yes, no)
        ask = np.where(buys_yes, ask_prices(markets, "YES", config["slippage_bps"]).to_numpy(dtype="float64"),
                       ask_prices(markets, "NO", config["slippage_bps"]).to_numpy(dtype="float64"))
        with np.errstate(invalid="ignore"):
            chosen = (
                (yes != no)  # equal prices: no favourite
                & (favourite_price >= low)
                & (favourite_price <= high)
                & strictly_inside_unit(bought_price)
                & strictly_inside_unit(ask)
            )
        picked = markets[chosen]
        side = np.where(buys_yes[chosen], "YES", "NO")
        price, fav = bought_price[chosen], favourite_price[chosen]
        confidence = 0.7 * band_position(fav, low, high) + 0.3 * liquidity_score(picked["liquidity"])
        reason = [self.describe(s, p, f, low, high) for s, p, f in zip(side, price, fav)]
        return make_signals(picked, side, price, np.round(confidence, 4), reason)
