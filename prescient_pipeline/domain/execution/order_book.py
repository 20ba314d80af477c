"""One outcome's side of a binary market's book, as a taker sees it at one moment.

A binary market has one order book, for its YES token; the NO book mirrors it: NO asks are
1 - YES bids and NO bids are 1 - YES asks (levels and sizes alike). Levels come from the
market row's `bids` / `asks` ([[price, size], ...], best first, up to 20 a side); they are used
only while they agree with the row's best bid / ask, so a stale depth never prices a fresh top.

The displayed price follows Polymarket's rule: the midpoint, or the last trade when the spread
is wider than $0.10 (the midpoint when no trade is known).
"""

from __future__ import annotations

import json
from functools import cached_property
from decimal import Decimal, InvalidOperation
from typing import Any

from ..accounting import to_price

WIDE_SPREAD = Decimal("0.10")
ONE = Decimal(1)

Level = tuple[Decimal, Decimal]  # (price, size in shares)


def field(state: Any, name: str) -> Any:
    """`name` of a mapping, a pandas row or an object; None when absent or unknown (NaN/NA)."""
    try:
        value = state[name]
    except (KeyError, TypeError, IndexError):
        value = getattr(state, name, None)
    try:
        if value is None or value != value:
            return None
    except (TypeError, ValueError):  # pd.NA compares to NA
        return None
    return value


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    if type(value) is Decimal:  # as the database returns NUMERIC
        return value if value.is_finite() else None
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def parse_levels(raw: Any, best_first_descending: bool) -> tuple[Level, ...]:
    """[[price, size], ...] (JSON text or a list; numbers or strings) as Decimal levels, best
    first; levels outside (0, 1) or without a positive size are dropped."""
    if raw is None:
        return ()
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return ()
    levels = []
    for level in raw if isinstance(raw, (list, tuple)) else ():
        if not isinstance(level, (list, tuple)) or len(level) < 2:
            continue
        price, size = _decimal(level[0]), _decimal(level[1])
        if price is not None and size is not None and 0 < price < 1 and size > 0:
            levels.append((to_price(price), size))
    return tuple(sorted(levels, key=lambda lv: lv[0], reverse=best_first_descending))


def _mirror(levels: tuple[Level, ...]) -> tuple[Level, ...]:
    return tuple((ONE - price, size) for price, size in levels)


class OutcomeBook:
    """`side`'s book. Levels are parsed only when a fill asks for them: marks read the top alone."""

    def __init__(self, side: str, asks: Any, bids: Any, best_ask: Decimal | None, best_bid: Decimal | None,
                 price: Decimal | None, last_trade: Decimal | None, tick: Decimal | None,
                 min_order_size: Decimal | None, mirrored: bool = False) -> None:
        self.side = side
        self.best_ask, self.best_bid = best_ask, best_bid
        self.price, self.last_trade = price, last_trade
        self.tick, self.min_order_size = tick, min_order_size
        # Raw levels as stored: asks/bids of this side's book, or, mirrored, the YES bids/asks.
        self._raw_asks, self._raw_bids, self._mirrored = asks, bids, mirrored

    @classmethod
    def from_state(cls, side: str, state: Any) -> "OutcomeBook":
        """`side`'s book from a markets / market_snapshots row (or a market frame row)."""
        if side not in ("YES", "NO"):
            raise ValueError(f"side must be YES or NO, not {side!r}")
        bid, ask = _decimal(field(state, "best_bid")), _decimal(field(state, "best_ask"))
        raw_bids, raw_asks = field(state, "bids"), field(state, "asks")
        if bid is None and raw_bids:
            levels = parse_levels(raw_bids, True)
            bid = levels[0][0] if levels else None
        if ask is None and raw_asks:
            levels = parse_levels(raw_asks, False)
            ask = levels[0][0] if levels else None
        last = _decimal(field(state, "last_trade_price"))
        tick, min_size = _decimal(field(state, "tick_size")), _decimal(field(state, "min_order_size"))
        if side == "YES":
            return cls("YES", raw_asks, raw_bids, ask, bid, _decimal(field(state, "yes_price")), last, tick, min_size)
        return cls("NO", raw_bids, raw_asks, None if bid is None else ONE - bid, None if ask is None else ONE - ask,
                   _decimal(field(state, "no_price")), None if last is None else ONE - last, tick, min_size,
                   mirrored=True)

    @cached_property
    def asks(self) -> tuple[Level, ...]:
        """Ask levels, best (lowest) first; () without depth or when it disagrees with the top."""
        if self._mirrored:  # NO asks = 1 - YES bids
            levels = _agreeing(parse_levels(self._raw_asks, True), None if self.best_ask is None else ONE - self.best_ask)
            return _mirror(levels)
        return _agreeing(parse_levels(self._raw_asks, False), self.best_ask)

    @cached_property
    def bids(self) -> tuple[Level, ...]:
        """Bid levels, best (highest) first."""
        if self._mirrored:  # NO bids = 1 - YES asks
            levels = _agreeing(parse_levels(self._raw_bids, False), None if self.best_bid is None else ONE - self.best_bid)
            return _mirror(levels)
        return _agreeing(parse_levels(self._raw_bids, True), self.best_bid)

    @cached_property
    def mid(self) -> Decimal | None:
        if self.best_bid is None or self.best_ask is None:
            return None
        return to_price((self.best_bid + self.best_ask) / 2)

    @cached_property
    def displayed_price(self) -> Decimal | None:
        """What Polymarket shows: the mid, or the last trade when the spread exceeds $0.10;
        the outcome price when the book has no two sides."""
        mid = self.mid
        if mid is None:
            return self.price
        if self.best_ask - self.best_bid > WIDE_SPREAD and self.last_trade is not None:
            return self.last_trade
        return mid


def _agreeing(levels: tuple[Level, ...], best: Decimal | None) -> tuple[Level, ...]:
    if not levels or best is None:
        return levels
    return levels if levels[0][0] == to_price(best) else ()


__all__ = ["WIDE_SPREAD", "Level", "OutcomeBook", "field", "parse_levels"]
