"""Fills from a price point alone (evidence `history`): a price-history point or an outcome
price without a book. A buy pays the price plus a half-spread, a sale gets it minus the
half-spread, each rounded to the market's tick against the trader (buys up, sales down)."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from ...accounting import to_price
from ..order_book import OutcomeBook
from .base import FillModel


def _on_tick(price: Decimal, tick: Decimal | None, rounding: str) -> Decimal:
    if tick is None or tick <= 0:
        return to_price(price)
    return to_price((price / tick).to_integral_value(rounding) * tick)


class HistoryPrice(FillModel):
    evidence = "history"

    def __init__(self, half_spread: Decimal) -> None:
        self.half_spread = Decimal(half_spread)

    def ask_levels(self, book: OutcomeBook):
        if book.price is None:
            return []
        price = _on_tick(min(book.price + self.half_spread, Decimal(1)), book.tick, ROUND_CEILING)
        return [(price, None)] if price < 1 else []

    def bid_levels(self, book: OutcomeBook):
        if book.price is None:
            return []
        price = _on_tick(max(book.price - self.half_spread, Decimal(0)), book.tick, ROUND_FLOOR)
        return [(price, None)] if price > 0 else []


__all__ = ["HistoryPrice"]
