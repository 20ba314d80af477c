"""When a market has resolved, and what each of its shares pays.

A market settles only when Gamma says `closed` is true AND its two outcome prices are exactly
("1", "0") or ("0", "1") (the winner pays $1 a share, the loser $0) or ("0.5", "0.5") (a 50-50
resolution refunds $0.50 a share). Everything else waits and carries a flag that says why:

- an open market, however certain it looks: 0.9995/0.0005 prices and even a UMA status of
  "resolved" appear hours before `closed` (the pre-settlement trap);
- a UMA proposal or dispute still running (even on a closed market: the answer may change);
- closed but `["0","0"]` (legacy markets with no winner) or fractional prices (legacy
  Long/Short markets), missing or unparseable prices, or not exactly two prices.

Prices compare exactly as Decimals: "1", "1.0" and 1 are one; "0.9995" is not. Index 0 is YES
and index 1 is NO, the order of Gamma's `outcomes` / `clobTokenIds`. Settlement pays no fee.
The functions are pure: applying a settlement twice gives the same numbers, and making sure it
is booked once is the caller's job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Mapping, Sequence

from prescient_pipeline.domain.accounting import PositionState, to_money

ONE, HALF, ZERO = Decimal(1), Decimal("0.5"), Decimal(0)

# Flags for markets that are not settled (stored as `portfolio_positions.settlement_flag`).
OPEN = "open"
RESOLVED_BUT_OPEN = "resolved_but_open"
RESOLUTION_PROPOSED = "resolution_proposed"
RESOLUTION_DISPUTED = "resolution_disputed"
MISSING_PRICES = "missing_prices"
MALFORMED_PRICES = "malformed_prices"
NOT_BINARY = "not_binary"
NO_WINNER = "no_winner"
NOT_FINAL_PRICES = "not_final_prices"
# A held market neither Gamma nor the CLOB knows any more: kept at its last mark, never settled.
MARKET_MISSING = "market_missing"

# Kinds of settlement.
YES_WON = "yes_won"
NO_WON = "no_won"
FIFTY_FIFTY = "fifty_fifty"


@dataclass(frozen=True)
class MarketResolution:
    """The resolution fields of a market, as received (prices as strings or numbers)."""

    closed: bool | None
    outcome_prices: Sequence[Any] | str | None
    uma_resolution_status: str | None = None
    market_id: str | None = None


@dataclass(frozen=True)
class Settlement:
    kind: str  # yes_won | no_won | fifty_fifty
    yes_payout: Decimal
    no_payout: Decimal

    @property
    def winner(self) -> str | None:
        return {YES_WON: "YES", NO_WON: "NO"}.get(self.kind)


@dataclass(frozen=True)
class NotSettled:
    flag: str
    detail: str = ""


def _field(market: Any, name: str) -> Any:
    if isinstance(market, Mapping):
        return market.get(name)
    return getattr(market, name, None)


def _parse_prices(raw: Any) -> tuple[Decimal, ...] | str:
    """The prices as Decimals, or the flag saying why they cannot be read."""
    if raw is None or (isinstance(raw, str) and raw.strip() in ("", "[]")):
        return MISSING_PRICES
    if isinstance(raw, str):
        # Gamma sends the list as JSON text inside a string; accept that as received too.
        try:
            raw = json.loads(raw)
        except ValueError:
            return MALFORMED_PRICES
    if not isinstance(raw, (list, tuple)):
        return MALFORMED_PRICES
    if not raw:
        return MISSING_PRICES
    try:
        prices = tuple(Decimal(str(p)) for p in raw)
    except (InvalidOperation, ValueError):
        return MALFORMED_PRICES
    if any(not p.is_finite() for p in prices):
        return MALFORMED_PRICES
    return prices


def settlement_for(market: MarketResolution | Mapping[str, Any] | Any) -> Settlement | NotSettled:
    """The settlement of `market` (fields closed, outcome_prices, uma_resolution_status)."""
    raw_closed = _field(market, "closed")
    # Only a real true counts (numpy's True_ and the text "true" included); None is not closed.
    closed = raw_closed is True or str(raw_closed).lower() == "true"
    status = (_field(market, "uma_resolution_status") or "").strip().lower()
    raw_prices = _field(market, "outcome_prices")

    if status == "disputed":
        return NotSettled(RESOLUTION_DISPUTED, "a UMA dispute is running")
    if status == "proposed":
        return NotSettled(RESOLUTION_PROPOSED, "a UMA proposal is in its challenge period")
    if not closed:
        if status == "resolved":
            detail = f"UMA says resolved but closed is not true; prices {raw_prices}"
            return NotSettled(RESOLVED_BUT_OPEN, detail)
        return NotSettled(OPEN, f"closed is not true; prices {raw_prices}")

    prices = _parse_prices(raw_prices)
    if isinstance(prices, str):
        return NotSettled(prices, f"outcome prices {raw_prices!r}")
    if len(prices) != 2:
        return NotSettled(NOT_BINARY, f"{len(prices)} outcome prices, expected 2")
    yes, no = prices
    if (yes, no) == (ONE, ZERO):
        return Settlement(YES_WON, ONE, ZERO)
    if (yes, no) == (ZERO, ONE):
        return Settlement(NO_WON, ZERO, ONE)
    if (yes, no) == (HALF, HALF):
        return Settlement(FIFTY_FIFTY, HALF, HALF)
    if (yes, no) == (ZERO, ZERO):
        return NotSettled(NO_WINNER, "closed with prices 0/0")
    return NotSettled(NOT_FINAL_PRICES, f"closed with prices {yes}/{no}, not 1/0, 0/1 or 0.5/0.5")


def payout_per_share(settlement: Settlement, side: str) -> Decimal:
    if side == "YES":
        return settlement.yes_payout
    if side == "NO":
        return settlement.no_payout
    raise ValueError(f"side must be YES or NO, not {side!r}")


def settle_position(position: PositionState, settlement: Settlement) -> tuple[Decimal, Decimal]:
    """(proceeds, realized P&L) of redeeming the whole position; no fee is charged."""
    proceeds = to_money(position.shares * payout_per_share(settlement, position.side))
    return proceeds, proceeds - position.cost_basis


__all__ = [
    "MarketResolution",
    "Settlement",
    "NotSettled",
    "settlement_for",
    "payout_per_share",
    "settle_position",
    "OPEN",
    "RESOLVED_BUT_OPEN",
    "RESOLUTION_PROPOSED",
    "RESOLUTION_DISPUTED",
    "MISSING_PRICES",
    "MALFORMED_PRICES",
    "NOT_BINARY",
    "NO_WINNER",
    "NOT_FINAL_PRICES",
    "MARKET_MISSING",
    "YES_WON",
    "NO_WON",
    "FIFTY_FIFTY",
]
