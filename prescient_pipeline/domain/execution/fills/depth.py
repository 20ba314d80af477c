"""Fills that walk the stored book levels (evidence `depth`)."""

from __future__ import annotations

from ..order_book import OutcomeBook
from .base import FillModel


class DepthWalk(FillModel):
    evidence = "depth"

    def ask_levels(self, book: OutcomeBook):
        return book.asks

    def bid_levels(self, book: OutcomeBook):
        return book.bids


__all__ = ["DepthWalk"]
