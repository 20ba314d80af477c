"""Which price a taker gets on a binary market.

A binary market has one order book, for its YES token; the NO book mirrors it
(NO ask = 1 - YES bid, NO bid = 1 - YES ask). Buys take the ask, sells hit the bid. Without
book data the outcome price plus (or minus) `slippage_bps` stands in.
Scalars use None for unknown; the vectorised versions use NaN.
"""

from __future__ import annotations

import math

import pandas as pd

SIDES = ("YES", "NO")


def _known(x) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def ask_price(side: str, yes_price, no_price, best_bid, best_ask, slippage_bps: float = 0.0):
    """Price paid to buy one share of `side`, or None when nothing is known."""
    slip = slippage_bps / 10_000
    if side == "YES":
        if _known(best_ask):
            return float(best_ask)
        return min(1.0, float(yes_price) + slip) if _known(yes_price) else None
    if side == "NO":
        if _known(best_bid):
            return 1.0 - float(best_bid)
        return min(1.0, float(no_price) + slip) if _known(no_price) else None
    raise ValueError(f"side must be YES or NO, not {side!r}")


def bid_price(side: str, yes_price, no_price, best_bid, best_ask, slippage_bps: float = 0.0):
    """Price received for selling one share of `side`, or None when nothing is known."""
    slip = slippage_bps / 10_000
    if side == "YES":
        if _known(best_bid):
            return float(best_bid)
        return max(0.0, float(yes_price) - slip) if _known(yes_price) else None
    if side == "NO":
        if _known(best_ask):
            return 1.0 - float(best_ask)
        return max(0.0, float(no_price) - slip) if _known(no_price) else None
    raise ValueError(f"side must be YES or NO, not {side!r}")


def ask_prices(frame: pd.DataFrame, side: str, slippage_bps: float = 0.0) -> pd.Series:
    """`ask_price` for every row of a market frame (columns yes_price, no_price, best_bid, best_ask)."""
    slip = slippage_bps / 10_000
    if side == "YES":
        fallback = (frame["yes_price"].astype(float) + slip).clip(upper=1.0)
        return frame["best_ask"].astype(float).where(frame["best_ask"].notna(), fallback)
    if side == "NO":
        fallback = (frame["no_price"].astype(float) + slip).clip(upper=1.0)
        return (1.0 - frame["best_bid"].astype(float)).where(frame["best_bid"].notna(), fallback)
    raise ValueError(f"side must be YES or NO, not {side!r}")


def bid_prices(frame: pd.DataFrame, side: str, slippage_bps: float = 0.0) -> pd.Series:
    slip = slippage_bps / 10_000
    if side == "YES":
        fallback = (frame["yes_price"].astype(float) - slip).clip(lower=0.0)
        return frame["best_bid"].astype(float).where(frame["best_bid"].notna(), fallback)
    if side == "NO":
        fallback = (frame["no_price"].astype(float) - slip).clip(lower=0.0)
        return (1.0 - frame["best_ask"].astype(float)).where(frame["best_ask"].notna(), fallback)
    raise ValueError(f"side must be YES or NO, not {side!r}")


__all__ = ["SIDES", "ask_price", "bid_price", "ask_prices", "bid_prices"]
