"""Arbitrage: buy a complete set of outcomes for less than the $1 it is certain to pay.

Two kinds of basket, each executed all or none (its legs share a `group_id`):
- negRisk event: exactly one market of the event resolves YES, so one YES share of every market
  pays $1. Bought only when every market of the event is here (rows == event_market_count, after
  the filters and held markets; a count of 0 or 1 means unknown: no basket) and every YES ask is
  known and strictly inside (0, 1).
- binary market: one YES plus one NO share pays $1.
A basket is bought when the cost of one share set (asks plus taker fees) is below
1 - min_profit_margin, and not below 1 - max_profit_margin: an edge that wide is far more likely
a leg the universe does not show (or a stale price) than free money. Legs are sized in equal
shares, not equal dollars: each leg's amount is in proportion to its cost per share, and
execution then fills every leg of a basket with the same share count (what the thinnest leg's
book allows), so one share set pays $1 whichever leg wins. Asks come from `book.ask_prices`
(book first, else outcome price plus slippage); fees are each market's own schedule, or the
portfolio's `fee_rate` override.

Augmented negRisk events (placeholders and an "Other" outcome whose meaning changes) are never a
complete basket: the listed YES prices can sum below $1 with no edge at all. An event is
augmented when the frame says so (`neg_risk_augmented`, `neg_risk_other`) or when a leg is
named like a placeholder ("Person A", "Other"); such events give no basket, and their
placeholder and Other markets are not traded at all.

Confidence grows with the edge: 0.5 + 5 * (1 - cost), capped at 1 (a 10-cent edge is 1.0).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from prescient_pipeline.domain.book import ask_prices
from prescient_pipeline.domain.execution.fees.polymarket import CONSERVATIVE_RATE, per_share_array
from prescient_pipeline.domain.strategies.base import (
    ConfigError,
    ConfigKey,
    Strategy,
    StrategyContext,
    empty_signals,
    make_signals,
    strictly_inside_unit,
)


_PLACEHOLDER_TITLE = re.compile(
    r"^\s*(other|others|another)\b|^\s*(person|player|candidate|team|option|outcome|party|country|company|"
    r"individual|nominee)\s+[a-z]{1,2}\s*$", re.IGNORECASE)
_PLACEHOLDER_QUESTION = re.compile(
    r"\b(?:[Pp]erson|[Pp]layer|[Cc]andidate|[Tt]eam|[Oo]ption|[Oo]utcome|[Pp]arty|[Cc]ountry|[Cc]ompany|"
    r"[Ii]ndividual|[Nn]ominee) [A-Z]{1,2}\b|\b(?:any )?other\b|\banother\b", re.IGNORECASE)


def placeholder_legs(markets: pd.DataFrame) -> np.ndarray:
    """Markets that are an augmented negRisk event's placeholder or "Other" outcome: by their
    group item title where they have one, else (negRisk markets only: a binary market asking
    about "another" something is no placeholder) by their question."""
    titles = (markets["group_item_title"].to_numpy(dtype=object) if "group_item_title" in markets
              else np.full(len(markets), None, dtype=object))
    questions = markets["question"].to_numpy(dtype=object)
    neg_risk = (markets["neg_risk"].fillna(False).to_numpy(dtype=bool) if "neg_risk" in markets
                else np.ones(len(markets), dtype=bool))
    named = np.zeros(len(markets), dtype=bool)
    for row, (title, question, in_neg_risk) in enumerate(zip(titles, questions, neg_risk)):
        if isinstance(title, str) and title.strip():
            named[row] = _PLACEHOLDER_TITLE.search(title) is not None
        elif in_neg_risk and isinstance(question, str):
            named[row] = _PLACEHOLDER_QUESTION.search(question) is not None
    other = markets["neg_risk_other"].fillna(False).to_numpy(dtype=bool) if "neg_risk_other" in markets else False
    return named | other


def augmented_events(markets: pd.DataFrame, placeholders: np.ndarray) -> np.ndarray:
    """Per row: its event is an augmented negRisk event (flagged, or with a placeholder leg)."""
    flagged = (markets["neg_risk_augmented"].fillna(False).to_numpy(dtype=bool)
               if "neg_risk_augmented" in markets else np.zeros(len(markets), dtype=bool))
    frame = pd.DataFrame({"event_id": markets["event_id"].to_numpy(dtype=object), "aug": flagged | placeholders})
    return frame.groupby("event_id", sort=False, dropna=False)["aug"].transform("any").to_numpy(dtype=bool)


def fee_per_share(markets: pd.DataFrame, price: np.ndarray, config: dict) -> np.ndarray:
    """Taker fee per share at `price` for every row: the portfolio's override, else each market's
    schedule (fee-free unless enabled; enabled without a rate: the conservative default)."""
    if config.get("fee_rate") is not None:
        return per_share_array(price, config["fee_rate"], config.get("fee_exponent", 1.0))
    if "fees_enabled" not in markets:
        return np.zeros(len(price))
    enabled = markets["fees_enabled"].fillna(False).to_numpy(dtype=bool)
    rate = markets["fee_rate"].to_numpy(dtype="float64")
    rate = np.where(np.isnan(rate), float(CONSERVATIVE_RATE), rate)
    exponent = markets["fee_exponent"].to_numpy(dtype="float64")
    exponent = np.where(np.isnan(exponent), 1.0, exponent)
    with np.errstate(invalid="ignore"):
        return np.where(enabled, per_share_array(price, rate, exponent), 0.0)


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
        slip = config["slippage_bps"]
        ask_yes = ask_prices(markets, "YES", slip).to_numpy(dtype="float64")
        ask_no = ask_prices(markets, "NO", slip).to_numpy(dtype="float64")
        cost_yes = ask_yes + fee_per_share(markets, ask_yes, config)
        cost_no = ask_no + fee_per_share(markets, ask_no, config)
        placeholders = placeholder_legs(markets)
        augmented = augmented_events(markets, placeholders)
        parts = []
        in_basket = np.zeros(len(markets), dtype=bool)
        if config["neg_risk_baskets"]:
            basket_rows = self._neg_risk_rows(markets, ask_yes, cost_yes, floor, ceiling, augmented)
            in_basket = basket_rows["chosen"]
            parts.append(self._neg_risk_signals(markets, ask_yes, basket_rows, ceiling))
        if config["binary_pairs"]:
            parts.append(self._binary_signals(markets, ask_yes, ask_no, cost_yes, cost_no, floor, ceiling,
                                              ~in_basket & ~placeholders))
        parts = [p for p in parts if not p.empty]
        if not parts:
            return empty_signals()
        return pd.concat(parts, ignore_index=True)

    @staticmethod
    def _neg_risk_rows(
        markets: pd.DataFrame, ask_yes: np.ndarray, cost: np.ndarray, floor: float, ceiling: float,
        augmented: np.ndarray,
    ) -> dict:
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
            chosen = ((expected >= 2) & (present == expected) & all_valid & ~augmented
                      & (total < ceiling) & (total >= floor))
        return {"chosen": chosen, "cost": cost, "total": total, "legs": present}

    @staticmethod
    def _neg_risk_signals(markets, ask_yes, rows: dict, ceiling: float) -> pd.DataFrame:
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
        markets, ask_yes, ask_no, cost_yes, cost_no, floor: float, ceiling: float, eligible: np.ndarray
    ) -> pd.DataFrame:
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
