"""How good a portfolio's entries and fills were: metrics that matter most for a backtest, and
mean the same for a live portfolio.

- Brier score and calibration of the entries. A buy at price p of a side is read as the forecast
  "this side wins with probability p"; the settlement says what happened (1 a winner, 0 a loser,
  0.5 a 50/50). Only settled positions have an outcome: a position sold before its market
  resolved is not scored.
- Return per capital-day locked: the positions' P&L over the sum of what each one cost times the
  days it was held. A strategy that earns 1% in a day beats one that earns 2% in a month.
- Execution cost: fees and slippage (dollars paid against the mid at the time of the fill), in
  dollars and in basis points of the traded notional.
- Evidence: the share of fills priced from a book (depth or top of book) versus from the price
  history only (a history price plus a configured half-spread: no book was seen).

Pure functions of plain rows; None when a metric is undefined (nothing to measure).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

CALIBRATION_BUCKETS = 10  # forecasts in tenths: [0, 0.1), [0.1, 0.2), ..., [0.9, 1.0]
SECONDS_PER_DAY = 86400.0
BOOK_EVIDENCE = ("depth", "top_of_book")
HISTORY_EVIDENCE = "history"


@dataclass(frozen=True)
class Entry:
    """A settled position: the price paid per share of its side, and what a share paid out."""

    forecast: float  # entry price: the market's probability of the bought side winning
    outcome: float  # settlement price per share: 1, 0 or 0.5


def brier_score(entries: Iterable[Entry]) -> float | None:
    """Mean of (forecast - outcome)^2 over the settled entries; None without any. 0 is perfect;
    always forecasting 0.5 scores 0.25."""
    errors = [(e.forecast - e.outcome) ** 2 for e in entries]
    return sum(errors) / len(errors) if errors else None


def calibration(entries: Iterable[Entry], buckets: int = CALIBRATION_BUCKETS) -> list[dict]:
    """Forecast buckets of width 1/buckets (a forecast of exactly 1 goes in the last) with their
    count, mean forecast and realized frequency (mean outcome); only buckets holding entries.
    Well calibrated entries have mean_forecast close to realized in every bucket."""
    grouped: dict[int, list[Entry]] = {}
    for e in entries:
        grouped.setdefault(min(int(e.forecast * buckets), buckets - 1), []).append(e)
    return [{
        "bucket_low": i / buckets,
        "bucket_high": (i + 1) / buckets,
        "count": len(group),
        "mean_forecast": sum(e.forecast for e in group) / len(group),
        "realized": sum(e.outcome for e in group) / len(group),
    } for i, group in sorted(grouped.items())]


@dataclass(frozen=True)
class Holding:
    """A position's capital and time: what the buy cost (fee included), when it was opened and
    closed (None: still open), and its P&L (realized plus unrealized)."""

    cost: float
    opened_at: datetime
    closed_at: datetime | None
    pnl: float


def capital_days(holdings: Iterable[Holding], held_until: datetime) -> float:
    """Sum of cost x days held; an open position counts until `held_until` (the ledger's latest
    time: now for a live portfolio, the end of the last replayed day for a backtest)."""
    total = 0.0
    for h in holdings:
        end = h.closed_at or held_until
        total += h.cost * max((end - h.opened_at).total_seconds(), 0.0) / SECONDS_PER_DAY
    return total


def return_per_capital_day(holdings: Iterable[Holding], held_until: datetime) -> float | None:
    """P&L of the positions / capital-days they locked; None when no capital was locked."""
    holdings = list(holdings)
    locked = capital_days(holdings, held_until)
    return sum(h.pnl for h in holdings) / locked if locked > 0 else None


@dataclass(frozen=True)
class Fill:
    """A buy or sale (settlements are not fills): dollars traded, fee, slippage against the mid
    (None: unknown) and how it was priced (None: recorded before fills said so)."""

    amount: float
    fee: float
    slippage: float | None
    evidence: str | None


def execution_costs(fills: Iterable[Fill]) -> dict[str, Any]:
    """Fees and slippage paid versus the mid, in dollars and in basis points of the traded
    notional; the evidence mix of the fills."""
    fills = list(fills)
    notional = sum(f.amount for f in fills)
    fees = sum(f.fee for f in fills)
    slippage = sum(f.slippage for f in fills if f.slippage is not None)
    book = sum(1 for f in fills if f.evidence in BOOK_EVIDENCE)
    history = sum(1 for f in fills if f.evidence == HISTORY_EVIDENCE)
    known = book + history

    def bps(dollars: float) -> float | None:
        return dollars / notional * 1e4 if notional > 0 else None

    return {
        "fills": len(fills),
        "traded_notional": notional,
        "fees_paid": fees,
        "slippage_paid": slippage,
        "execution_cost": fees + slippage,
        "fees_bps": bps(fees),
        "slippage_bps": bps(slippage),
        "execution_cost_bps": bps(fees + slippage),
        "fills_from_book": book,
        "fills_from_history": history,
        "fills_unknown_evidence": len(fills) - known,
        "book_fill_share": book / known if known else None,
        "history_fill_share": history / known if known else None,
    }


def backtest_metrics(entries: Iterable[Entry], holdings: Iterable[Holding], fills: Iterable[Fill],
                     held_until: datetime) -> dict[str, Any]:
    """Every metric of this module in one dict (JSON-ready: floats, ints, None, lists)."""
    entries, holdings = list(entries), list(holdings)
    result = {
        "settled_entries": len(entries),
        "brier_score": brier_score(entries),
        "calibration": calibration(entries),
        "positions": len(holdings),
        "capital_days": capital_days(holdings, held_until),
        "return_per_capital_day": return_per_capital_day(holdings, held_until),
        **execution_costs(fills),
    }
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in result.items()}
