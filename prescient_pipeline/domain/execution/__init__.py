"""The execution model: fee models, fill models, the outcome book they read, and a portfolio's
execution settings. Pure: no SQL, HTTP or Dagster."""

from .fees import FeeModel, NoFee, PolymarketTakerFee, market_fee_model
from .fills import DepthWalk, Fill, FillModel, FillRejected, HistoryPrice, TopOfBook
from .order_book import OutcomeBook
from .settings import ExecutionSettings

__all__ = ["FeeModel", "NoFee", "PolymarketTakerFee", "market_fee_model", "Fill", "FillModel", "FillRejected",
           "DepthWalk", "TopOfBook", "HistoryPrice", "OutcomeBook", "ExecutionSettings"]
