"""Fill models. A new one is one class in one file here implementing `FillModel`."""

from .base import Fill, FillModel, FillRejected
from .depth import DepthWalk
from .history import HistoryPrice
from .top_of_book import TopOfBook

__all__ = ["Fill", "FillModel", "FillRejected", "DepthWalk", "TopOfBook", "HistoryPrice"]
