"""Arbitrage: buy a complete set of outcomes for less than the $1 it is certain to pay.

Two kinds of basket, each executed all or none (its legs share a `group_id`):
- negRisk event: exactly one market of the event resolves YES, so one YES share of every market
  pays $1. Bought only when every market of the event is here (rows == event_market_count, after
  the filters and held markets; a count of 0 or 1 means unknown: no basket) and every YES ask is
  known and strictly inside (0, 1).
- binary market: one YES plus one NO share pays $1.
A basket is bought when the cost of one share set (asks plus taker fees) is below
1 - min_profit_margin, and not below 1 - max_profit_margin: an edge that wide is far more likely
a leg the universe does not show (or a stale price) than free money. Leg amounts are in
proportion to each leg's cost per share, so every leg buys the same number of shares. Asks come
from `book.ask_prices` (book first, else outcome price plus slippage).

Confidence grows with the edge: 0.5 + 5 * (1 - cost), capped at 1 (a 10-cent edge is 1.0).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from prescient_pipeline.domain.book import ask_prices
from prescient_pipeline.domain.strategies.base import (
    ConfigError,
    ConfigKey,
    Strategy,
    StrategyContext,
    empty_signals,
    make_signals,
    strictly_inside_unit,
)


def _cost_per_share(ask: np.ndarray, fee_rate: float) -> np.ndarray:
    return ask + fee_rate * ask * (1.0 - ask)


def _confidence(edge: np.ndarray) -> np.ndarray:
    return np.round(np.clip(0.5 + 5.0 * edge, 0.0, 1.0), 4)


class Arbitrage(Strategy):
    name = "arbitrage"
    description = (
        "Buy every YES of a negRisk event, or YES and NO of a binary market, when the asks sum "
        "below 1 - margin; legs execute all or none."
    )
    allows_multiple_positions_per_market = True
    own_keys = (
        ConfigKey("min_profit_margin", 0.01, "Buy when a share set costs less than 1 - this",
                  minimum=0, maximum=0.5),
        ConfigKey("max_profit_margin", 0.20,
                  "Skip share sets cheaper than 1 - this: so wide an edge means a missing leg or stale prices",
                  minimum=0, maximum=1, optional=True),
        ConfigKey("neg_risk_baskets", True, "Look for baskets across negRisk events", kind="boolean"),
        ConfigKey("binary_pairs", True, "Look for YES + NO pairs within one market", kind="boolean"),
    )
    # Every leg must survive the filters for a basket to be complete; per-leg liquidity and spread
    # thresholds would mostly just break baskets, so they are off unless a portfolio sets them.
    common_overrides = {"market_min_liquidity": 0.0, "max_spread": None}

    def check_config(self, config: dict) -> None:
        high = config["max_profit_margin"]
        if high is not None and config["min_profit_margin"] > high:
            raise ConfigError(
                f"min_profit_margin: must be <= max_profit_margin ({config['min_profit_margin']:g} > {high:g})"
            )

    def signals(self, markets: pd.DataFrame, config: dict, ctx: StrategyContext) -> pd.DataFrame:
        ceiling = 1.0 - config["min_profit_margin"]
        floor = 0.0 if config["max_profit_margin"] is None else 1.0 - config["max_profit_margin"]
        slip, fee_rate = config["slippage_bps"], config["fee_rate"]
        ask_yes = ask_prices(markets, "YES", slip).to_numpy(dtype="float64")
        ask_no = ask_prices(markets, "NO", slip).to_numpy(dtype="float64")
        parts = []
        in_basket = np.zeros(len(markets), dtype=bool)
        if config["neg_risk_baskets"]:
            basket_rows = self._neg_risk_rows(markets, ask_yes, fee_rate, floor, ceiling)
            in_basket = basket_rows["chosen"]
            parts.append(self._neg_risk_signals(markets, ask_yes, fee_rate, basket_rows, ceiling))
        if config["binary_pairs"]:
            parts.append(self._binary_signals(markets, ask_yes, ask_no, fee_rate, floor, ceiling, ~in_basket))
        parts = [p for p in parts if not p.empty]
        if not parts:
            return empty_signals()
        return pd.concat(parts, ignore_index=True)

    @staticmethod
    def _neg_risk_rows(
        markets: pd.DataFrame, ask_yes: np.ndarray, fee_rate: float, floor: float, ceiling: float
    ) -> dict:
        cost = _cost_per_share(ask_yes, fee_rate)
        frame = pd.DataFrame(
            {
                "event_id": markets["event_id"].to_numpy(dtype=object),
                "valid": strictly_inside_unit(ask_yes) & markets["neg_risk"].to_numpy(dtype=bool),
                "cost": cost,
            }
        )
        by_event = frame.groupby("event_id", sort=False, dropna=False)
        present = by_event["event_id"].transform("size").to_numpy()
        all_valid = by_event["valid"].transform("all").to_numpy(dtype=bool)
        total = by_event["cost"].transform("sum").to_numpy(dtype="float64")
        expected = markets["event_market_count"].to_numpy(dtype="int64")
        with np.errstate(invalid="ignore"):
            chosen = (expected >= 2) & (present == expected) & all_valid & (total < ceiling) & (total >= floor)
        return {"chosen": chosen, "cost": cost, "total": total, "legs": present}

    @staticmethod
    def _neg_risk_signals(markets, ask_yes, fee_rate, rows: dict, ceiling: float) -> pd.DataFrame:
        chosen = rows["chosen"]
        if not chosen.any():
            return empty_signals()
        picked = markets[chosen]
        total = rows["total"][chosen]
        legs = rows["legs"][chosen]
        reason = [f"negRisk basket of {n} YES legs: asks sum {t:.3f} < {ceiling:.3f}" for n, t in zip(legs, total)]
        return make_signals(
            picked,
            "YES",
            ask_yes[chosen],
            _confidence(1.0 - total),
            reason,
            amount=rows["cost"][chosen] / total,
            group_id=("arb-event-" + picked["event_id"].astype(str)).to_numpy(dtype=object),
        )

    @staticmethod
    def _binary_signals(
        markets, ask_yes, ask_no, fee_rate, floor: float, ceiling: float, eligible: np.ndarray
    ) -> pd.DataFrame:
        cost_yes = _cost_per_share(ask_yes, fee_rate)
        cost_no = _cost_per_share(ask_no, fee_rate)
        total = cost_yes + cost_no
        with np.errstate(invalid="ignore"):
            priced = strictly_inside_unit(ask_yes) & strictly_inside_unit(ask_no)
            chosen = eligible & priced & (total < ceiling) & (total >= floor)
        if not chosen.any():
            return empty_signals()
        picked = markets[chosen]
        group_id = ("arb-market-" + picked["market_id"].astype(str)).to_numpy(dtype=object)
        confidence = _confidence(1.0 - total[chosen])
        reason = [
            f"YES ask {y:.3f} + NO ask {n:.3f} = {t:.3f} < {ceiling:.3f}"
            for y, n, t in zip(ask_yes[chosen], ask_no[chosen], total[chosen])
        ]
        yes_legs = make_signals(picked, "YES", ask_yes[chosen], confidence, reason,
                                amount=cost_yes[chosen] / total[chosen], group_id=group_id)
        no_legs = make_signals(picked, "NO", ask_no[chosen], confidence, reason,
                               amount=cost_no[chosen] / total[chosen], group_id=group_id)
        # Keep each pair's two legs next to each other.
        return pd.concat([yes_legs, no_legs]).sort_index(kind="stable").reset_index(drop=True)


STRATEGY = Arbitrage()
