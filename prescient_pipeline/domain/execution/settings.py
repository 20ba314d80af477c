"""A portfolio's execution settings, built once from its strategy config and handed to every
service that fills, exits or settles, so no service re-reads fee, slippage or exit keys.

Config keys and what they mean under this model (stored configs keep working):
- `fee_rate` (default null): null charges each market's own fee schedule as stated at the fill
  (`fees_enabled`, `fee_rate`, `fee_exponent` of the market row); a number overrides it for every
  market with `fee_rate * (p * (1 - p)) ** fee_exponent` per share (0: no fees), for what-if
  studies. A stored `fee_rate` keeps its old meaning exactly (exponent 1).
- `fee_exponent` (default 1): the exponent of an overriding `fee_rate`.
- `max_slippage_bps` (default 200): a buy's limit is the price the signal saw plus this
  (null: no limit); ask levels above it are not taken.
- `slippage_bps` (default 50): the half-spread of a fill priced from a price point alone (no
  book: the outcome price or a history point), as before.
- `stop_loss_percentage`, `take_profit_percentage`, `max_holding_hours`: the exit rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from decimal import Decimal
from typing import Any, Mapping

from ..accounting import to_price
from ..exits import ExitRules
from .fees import FeeModel, NoFee, PolymarketTakerFee, market_fee_model
from .fills import DepthWalk, Fill, FillModel, HistoryPrice, TopOfBook
from .order_book import OutcomeBook

BPS = Decimal(10_000)


def _bps(value: Any) -> Decimal:
    return Decimal(repr(value)) / BPS if isinstance(value, float) else Decimal(value) / BPS


@dataclass(frozen=True)
class ExecutionSettings:
    fee_override: FeeModel | None = None  # None: each market's own schedule
    max_slippage: Decimal | None = Decimal("0.02")  # price units above the price seen; None: no limit
    half_spread: Decimal = Decimal("0.005")  # for fills priced from a price point alone
    exits: ExitRules = field(default_factory=ExitRules)
    history_only: bool = False  # a replay with price points only: every fill is a history fill

    @classmethod
    def from_config(cls, config: Mapping[str, Any], history_only: bool = False) -> "ExecutionSettings":
        rate = config.get("fee_rate")
        if rate is None:
            override = None
        elif rate == 0:
            override = NoFee()
        else:
            exponent = config.get("fee_exponent")
            override = PolymarketTakerFee(Decimal(repr(rate)) if isinstance(rate, float) else rate,
                                          1 if exponent is None else exponent)
        max_slippage = config.get("max_slippage_bps", 200)
        return cls(
            fee_override=override,
            max_slippage=None if max_slippage is None else _bps(max_slippage),
            half_spread=_bps(config.get("slippage_bps") or 0),
            exits=ExitRules.from_config(config),
            history_only=history_only,
        )

    @cached_property
    def has_exits(self) -> bool:
        return self.exits != ExitRules()

    def fee_model(self, market_state: Any) -> FeeModel:
        return self.fee_override if self.fee_override is not None else market_fee_model(market_state)

    def fill_model(self, book: OutcomeBook, action: str) -> FillModel:
        """Depth when the book lists levels for this action, else its top, else the price alone."""
        if not self.history_only:
            if (book.asks if action == "buy" else book.bids):
                return DepthWalk()
            if (book.best_ask if action == "buy" else book.best_bid) is not None:
                return TopOfBook()
        return HistoryPrice(self.half_spread)

    def buy_limit(self, price_seen: Any, model: FillModel, book: OutcomeBook) -> Decimal | None:
        """The highest price a buy takes: the price the signal saw (else the best price the fill
        model offers) plus the maximum slippage."""
        if self.max_slippage is None:
            return None
        if price_seen is None:
            offered = model.ask_levels(book)
            price_seen = offered[0][0] if offered else None
        return None if price_seen is None else to_price(Decimal(str(price_seen)) + self.max_slippage)

    def buy(self, side: str, market_state: Any, amount: Any, price_seen: Any = None,
            max_shares: Decimal | None = None) -> Fill:
        """Fill a buy of `side` on a market row; raises FillRejected with the reason."""
        book = OutcomeBook.from_state(side, market_state)
        model = self.fill_model(book, "buy")
        return model.buy(book, Decimal(str(amount)), self.fee_model(market_state),
                         self.buy_limit(price_seen, model, book), max_shares)

    def sell(self, side: str, market_state: Any, shares: Any) -> Fill:
        """Fill a sale of `shares` of `side`; raises FillRejected when nobody buys."""
        book = OutcomeBook.from_state(side, market_state)
        return self.fill_model(book, "sell").sell(book, Decimal(str(shares)), self.fee_model(market_state))


__all__ = ["ExecutionSettings"]
