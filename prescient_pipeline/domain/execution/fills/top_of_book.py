"""Fills at the best bid / ask with no depth known (evidence `top_of_book`): the whole order at
the top price, as every fill was priced before depth was stored."""

from __future__ import annotations

from ..order_book import OutcomeBook
from .base import FillModel


class TopOfBook(FillModel):
    evidence = "top_of_book"

    def ask_levels(self, book: OutcomeBook):
        return [] if book.best_ask is None else [(book.best_ask, None)]

    def bid_levels(self, book: OutcomeBook):
        return [] if book.best_bid is None else [(book.best_bid, None)]


__all__ = ["TopOfBook"]
