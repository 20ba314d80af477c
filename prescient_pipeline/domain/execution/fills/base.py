"""The fill model interface and the walk every model shares.

A fill model says which price levels a taker order can take (`ask_levels` for a buy,
`bid_levels` for a sale) and with what evidence; the walk is the same for all of them.

A buy spends at most `amount` dollars, fee included, like Polymarket's market BUY (specified in
dollars): it takes ask levels best first while their price is within its limit, each share at
its level's price plus that price's fee, until the amount, the limit or the book runs out. What
is left is cancelled (fill-and-kill): the fill records the amount requested beside what it cost.
Shares round down to the share quantum; the fee is the venue's rounding of the order's fee, and
when that rounding would take the cost past the amount a few shares fewer are taken.

A sale takes bid levels best first for its shares, fill-and-kill too: shares the listed bids
cannot take stay unsold.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Sequence

from ...accounting import SHARES_QUANTUM, ZERO, shares_bought, to_money, to_price, to_shares
from ..fees import FeeModel
from ..order_book import OutcomeBook

# (price, size); size None: as much as the order wants (a quote with no known depth)
OfferedLevel = tuple[Decimal, Decimal | None]


class FillRejected(ValueError):
    """The order does not fill at all; the message is the signal's rejection reason."""


@dataclass(frozen=True)
class Fill:
    action: str  # buy | sell
    shares: Decimal
    notional: Decimal  # sum of price * shares over the levels taken
    fee: Decimal
    levels: tuple[tuple[Decimal, Decimal], ...]  # (price, shares) taken, best first
    evidence: str  # depth | top_of_book | history
    mid: Decimal | None  # the outcome's mid at that moment, if the book has two sides
    requested: Decimal  # a buy: dollars asked for; a sale: shares asked for
    fee_flag: str | None = None

    @property
    def price(self) -> Decimal:
        """Average price per share, fee excluded."""
        return to_price(self.notional / self.shares)

    @property
    def cost(self) -> Decimal:
        """Cash a buy pays: notional plus fee (its cost basis)."""
        return self.notional + self.fee

    @property
    def gross(self) -> Decimal:
        return self.notional

    @property
    def proceeds(self) -> Decimal:
        """Cash a sale receives: notional minus fee."""
        return self.notional - self.fee

    @property
    def slippage(self) -> Decimal | None:
        """Dollars given up against the mid (positive: worse than the mid)."""
        if self.mid is None:
            return None
        at_mid = to_money(self.shares * self.mid)
        return self.notional - at_mid if self.action == "buy" else at_mid - self.notional

    @property
    def partial(self) -> bool:
        if self.action == "sell":
            return self.shares < self.requested
        return self.cost < self.requested - Decimal("0.01")


class FillModel(ABC):
    evidence: str = ""

    @abstractmethod
    def ask_levels(self, book: OutcomeBook) -> Sequence[OfferedLevel]:
        """Levels a buy can take, best first (empty: nothing to buy at)."""

    @abstractmethod
    def bid_levels(self, book: OutcomeBook) -> Sequence[OfferedLevel]:
        """Levels a sale can take, best first (empty: nobody to sell to)."""

    def buy(self, book: OutcomeBook, amount: Decimal, fees: FeeModel, limit: Decimal | None = None,
            max_shares: Decimal | None = None) -> Fill:
        """Spend up to `amount` (fee included) on at most `max_shares` shares at prices up to `limit`."""
        amount = to_money(amount)
        if amount <= 0:
            raise ValueError(f"buy amount must be positive, got {amount}")
        offered = [(p, s) for p, s in self.ask_levels(book) if ZERO < p < 1]
        if not offered:
            raise FillRejected(f"no price to buy {book.side} at")
        first = offered[0][0]
        if limit is not None and first > limit:
            raise FillRejected(f"best ask {_plain(first)} above limit {_plain(limit)}")
        wanted = max_shares if max_shares is not None else amount / (first + fees.per_share(first))
        if book.min_order_size is not None and wanted < book.min_order_size:
            raise FillRejected(
                f"below minimum order size: {_plain(to_shares(wanted))} shares < {_plain(book.min_order_size)}")
        taken = _walk_buy(offered, amount, fees, limit, max_shares)
        if not taken:
            raise FillRejected(f"amount {amount} buys no {book.side} share")
        notional, fee = _priced(taken, fees)
        return Fill("buy", sum((s for _, s in taken), ZERO), notional, fee, tuple(taken), self.evidence,
                    book.mid, amount, fees.flag)

    def sell(self, book: OutcomeBook, shares: Decimal, fees: FeeModel) -> Fill:
        """Sell up to `shares` into the bids (no limit: an exit takes what the book pays); what
        the listed bids cannot take stays unsold (fill-and-kill)."""
        shares = to_shares(shares)
        if shares <= 0:
            raise ValueError(f"sell shares must be positive, got {shares}")
        offered = [(p, s) for p, s in self.bid_levels(book) if ZERO < p <= 1]
        if not offered:
            raise FillRejected(f"no bid to sell {book.side} into")
        taken, left = [], shares
        for price, size in offered:
            take = left if size is None else min(left, to_shares(size))
            if take > 0:
                taken.append((price, take))
                left -= take
            if left <= 0:
                break
        if not taken:
            raise FillRejected(f"no bid to sell {book.side} into")
        notional, fee = _priced(taken, fees)
        return Fill("sell", shares - left, notional, fee, tuple(taken), self.evidence, book.mid, shares, fees.flag)


def _plain(number: Decimal) -> str:
    return format(number.normalize(), "f")


def _priced(taken: list[tuple[Decimal, Decimal]], fees: FeeModel) -> tuple[Decimal, Decimal]:
    return to_money(sum((p * s for p, s in taken), ZERO)), to_money(fees.order_fee(taken))


def _walk_buy(offered: Sequence[OfferedLevel], amount: Decimal, fees: FeeModel, limit: Decimal | None,
              max_shares: Decimal | None) -> list[tuple[Decimal, Decimal]]:
    taken: list[tuple[Decimal, Decimal]] = []
    budget = amount
    room = max_shares
    for price, size in offered:
        if limit is not None and price > limit:
            break
        per_share = price + fees.per_share(price)
        take = budget / per_share
        if size is not None:
            take = min(take, size)
        if room is not None:
            take = min(take, room)
        take = shares_bought(take)
        if take <= 0:
            break
        taken.append((price, take))
        budget -= take * per_share
        if room is not None:
            room -= take
        if size is None or take < size:
            break  # the amount (or the share count) ran out at this level
    # Rounding the notional and the fee may cost a little more than the walk did: give back
    # shares at the last level until the order fits its amount.
    for _ in range(10):
        if not taken:
            break
        notional, fee = _priced(taken, fees)
        excess = notional + fee - amount
        if excess <= 0:
            break
        price, shares = taken[-1]
        step = (excess / (price + fees.per_share(price)) / SHARES_QUANTUM).to_integral_value(ROUND_CEILING)
        fewer = shares - max(step, 1) * SHARES_QUANTUM
        taken[-1:] = [(price, fewer)] if fewer > 0 else []
    return taken


__all__ = ["Fill", "FillModel", "FillRejected", "OfferedLevel"]
