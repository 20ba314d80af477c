"""The universe filters every strategy shares, vectorised, with a funnel of what each step kept.

Unknown values (NaN liquidity/volume, NaT end dates, NaN spread) are decided explicitly:
- a minimum on an amount (liquidity, volume, 24h volume) drops unknowns only when the threshold
  is > 0; at 0 the step is off and unknowns are kept;
- a minimum on days until end applies to known dates always (so 0 drops markets already past
  their end date) and drops unknown dates only when the threshold is > 0;
- a maximum (days until end, spread) that is set (not None) drops unknowns: the bound cannot be
  shown to hold.
A step that cannot drop anything (threshold None, amount minimum 0, conviction band [0, 1], empty
lists) is skipped and does not appear in the funnel.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def apply_filters(markets: pd.DataFrame, config: dict) -> tuple[pd.DataFrame, list[tuple[str, int]]]:
    """The markets passing every configured filter, and [(step, markets remaining), ...]."""
    mask = np.ones(len(markets), dtype=bool)
    funnel: list[tuple[str, int]] = [("universe", len(markets))]

    def step(name: str, passes: np.ndarray) -> None:
        nonlocal mask
        mask &= passes
        funnel.append((name, int(mask.sum())))

    step("tradable", tradable(markets))
    for column, key in (
        ("event_liquidity", "event_min_liquidity"),
        ("event_volume", "event_min_volume"),
        ("event_volume_24hr", "event_min_volume_24hr"),
    ):
        if config[key] > 0:
            step(column, amount_at_least(markets[column], config[key]))
    if config["event_min_days_until_end"] is not None or config["event_max_days_until_end"] is not None:
        step(
            "event_days_until_end",
            days_within(markets["event_days_to_end"], config["event_min_days_until_end"],
                        config["event_max_days_until_end"]),
        )
    for column, key in (
        ("liquidity", "market_min_liquidity"),
        ("volume", "market_min_volume"),
        ("volume_24hr", "market_min_volume_24hr"),
    ):
        if config[key] > 0:
            step(f"market_{column}", amount_at_least(markets[column], config[key]))
    if config["min_days_until_end"] is not None:
        step("days_until_end", days_within(markets["days_to_end"], config["min_days_until_end"], None))
    if config["market_min_conviction"] > 0 or config["market_max_conviction"] < 1:
        conviction = markets["conviction"].to_numpy(dtype="float64")
        with np.errstate(invalid="ignore"):
            step("conviction", (conviction >= config["market_min_conviction"])
                 & (conviction <= config["market_max_conviction"]))
    if config["max_spread"] is not None:
        spread = markets["spread"].to_numpy(dtype="float64")
        # A hair of tolerance: 0.58 - 0.48 is 0.0999999... in floating point, and 0.10 must pass 0.10.
        with np.errstate(invalid="ignore"):
            step("spread", spread <= config["max_spread"] + 1e-9)
    if config["categories"]:
        wanted = {c.lower() for c in config["categories"]}
        category = markets["category"].astype(object).where(markets["category"].notna(), "")
        step("categories", category.map(lambda c: str(c).lower() in wanted).to_numpy(dtype=bool))
    if config["tags"]:
        step("tags", _any_tag(markets["tags"], config["tags"], mask))
    if config["exclude_tags"]:
        step("exclude_tags", ~_any_tag(markets["tags"], config["exclude_tags"], mask))
    return markets[mask], funnel


def tradable(markets: pd.DataFrame) -> np.ndarray:
    """Active, not closed, not refusing orders (unknown counts as accepting), and priced."""
    accepting = markets["accepting_orders"].astype("boolean").fillna(True).to_numpy(dtype=bool)
    priced = markets["yes_price"].notna().to_numpy() & markets["no_price"].notna().to_numpy()
    return (
        markets["active"].to_numpy(dtype=bool)
        & ~markets["closed"].to_numpy(dtype=bool)
        & accepting
        & priced
    )


def amount_at_least(values: pd.Series, threshold: float) -> np.ndarray:
    array = values.to_numpy(dtype="float64")
    known = ~np.isnan(array)
    with np.errstate(invalid="ignore"):
        passes = array >= threshold
    return known & passes if threshold > 0 else passes | ~known


def days_within(days: pd.Series, minimum: float | None, maximum: float | None) -> np.ndarray:
    array = days.to_numpy(dtype="float64")
    known = ~np.isnan(array)
    passes = np.ones(len(array), dtype=bool)
    with np.errstate(invalid="ignore"):
        if minimum is not None:
            passes &= (array >= minimum) | (~known & (minimum <= 0))
        if maximum is not None:
            passes &= known & (array <= maximum)
    return passes


def _any_tag(tags: pd.Series, wanted: list[str], rows: np.ndarray) -> np.ndarray:
    """True where a market has one of `wanted` (case-insensitive); only rows still in play are read."""
    wanted_lower = {t.lower() for t in wanted}
    result = np.zeros(len(tags), dtype=bool)
    positions = np.flatnonzero(rows)
    values = tags.to_numpy(dtype=object)
    result[positions] = [
        any(str(t).lower() in wanted_lower for t in (values[i] or ())) for i in positions
    ]
    return result


__all__ = ["apply_filters", "tradable", "amount_at_least", "days_within"]
