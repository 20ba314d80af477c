"""Hybrid: momentum, mean reversion and arbitrage at once, each stake scaled by its weight.

One universe (the common filters) feeds every component with a weight above 0. A component's
own keys are set here with its name as prefix (`momentum_favourite_min_price`, ...). Merging:
- arbitrage baskets win their markets (they are riskless), so directional signals on a basket's
  markets are dropped;
- directional signals on one market that disagree on the side (momentum buys the favourite,
  mean reversion the underdog) keep the side with the higher weight * confidence;
- signals that agree add their amounts and keep the higher confidence.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from prescient_pipeline.domain.strategies import arbitrage, mean_reversion, momentum
from prescient_pipeline.domain.strategies.base import (
    COMMON_DEFAULTS,
    SIGNAL_COLUMNS,
    ConfigError,
    ConfigKey,
    Strategy,
    StrategyContext,
    empty_signals,
)

COMPONENTS: tuple[Strategy, ...] = (momentum.STRATEGY, mean_reversion.STRATEGY, arbitrage.STRATEGY)
DEFAULT_WEIGHTS = {"momentum": 0.5, "mean_reversion": 0.25, "arbitrage": 0.25}


def _weight_key(component: Strategy) -> ConfigKey:
    return ConfigKey(
        f"{component.name}_weight",
        DEFAULT_WEIGHTS[component.name],
        f"Share of the stake given to {component.name} signals (0 = off)",
        minimum=0,
        maximum=10,
    )


def _prefixed(component: Strategy, key: ConfigKey) -> ConfigKey:
    return replace(key, name=f"{component.name}_{key.name}", help=f"{component.name}: {key.help}")


class Hybrid(Strategy):
    name = "hybrid"
    description = "Weighted combination of momentum, mean_reversion and arbitrage; amounts scaled by weight."
    allows_multiple_positions_per_market = True  # its arbitrage component buys YES and NO of a market
    own_keys = tuple(_weight_key(c) for c in COMPONENTS) + tuple(
        _prefixed(c, key) for c in COMPONENTS for key in c.own_keys
    )

    def check_config(self, config: dict) -> None:
        if sum(config[f"{c.name}_weight"] for c in COMPONENTS) <= 0:
            raise ConfigError("momentum_weight: at least one component weight must be above 0")
        for component in COMPONENTS:
            try:
                component.check_config(self.component_config(component, config))
            except ConfigError as error:
                raise ConfigError(f"{component.name}_{error}") from None

    @staticmethod
    def component_config(component: Strategy, config: dict) -> dict:
        own = {key.name: config[f"{component.name}_{key.name}"] for key in component.own_keys}
        return {**{name: config[name] for name in COMMON_DEFAULTS}, **own}

    def signals(self, markets: pd.DataFrame, config: dict, ctx: StrategyContext) -> pd.DataFrame:
        parts = []
        for component in COMPONENTS:
            weight = config[f"{component.name}_weight"]
            if weight <= 0:
                continue
            found = component.signals(markets, self.component_config(component, config), ctx)
            if found.empty:
                continue
            found = found.copy()
            found["amount"] = found["amount"] * weight
            found["reason"] = f"{component.name} x{weight:g}: " + found["reason"].astype(str)
            found["_score"] = found["confidence"] * weight
            parts.append(found)
        if not parts:
            return empty_signals()
        return _merge(pd.concat(parts, ignore_index=True))


def _merge(found: pd.DataFrame) -> pd.DataFrame:
    baskets = found[found["group_id"].notna()]
    directional = found[found["group_id"].isna() & ~found["market_id"].isin(baskets["market_id"])]
    directional = directional.sort_values("_score", ascending=False, kind="stable")
    top_side = directional.groupby("market_id", sort=False)["side"].transform("first")
    directional = directional[directional["side"] == top_side]
    repeated = directional.duplicated(["market_id", "side"], keep=False).to_numpy()
    if repeated.any():
        combined = (
            directional[repeated]
            .groupby(["market_id", "side"], sort=False, as_index=False)
            .agg(
                event_id=("event_id", "first"),
                token_id=("token_id", "first"),
                question=("question", "first"),
                amount=("amount", "sum"),
                price_seen=("price_seen", "first"),
                confidence=("confidence", "max"),
                reason=("reason", "; ".join),
                group_id=("group_id", "first"),
            )
        )
        directional = pd.concat([directional[~repeated], combined], ignore_index=True)
    merged = pd.concat([baskets, directional], ignore_index=True)
    merged["group_id"] = merged["group_id"].astype(object).where(merged["group_id"].notna(), None)
    return merged[SIGNAL_COLUMNS].reset_index(drop=True)


STRATEGY = Hybrid()

__all__ = ["Hybrid", "STRATEGY", "COMPONENTS", "DEFAULT_WEIGHTS"]
