"""Pre-trade risk checks: may this portfolio spend this amount on this market side now?

Each check returns the reason a buy is refused (stored on the signal as `rejection_reason`) or
None when it may go ahead. Checks run in a fixed order so the reason is always the first rule
broken: portfolio status, amount, cash, max_position_size, max_total_exposure, max_positions,
one open position per market (or per market side), and an optional cap on every portfolio's
combined exposure to one market.

Exposure is measured at cost basis (dollars put in, fees included), not at market value, so a
position's share of the limits does not drift with prices.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Iterable, Mapping, Protocol, Sequence

from prescient_pipeline.domain.accounting import ZERO, PositionState, to_money


@dataclass(frozen=True)
class PortfolioState:
    """The limits and cash of one portfolio (a `portfolios` row; cash is `current_balance`)."""

    portfolio_id: int | None
    status: str
    cash: Decimal
    initial_balance: Decimal
    max_position_size: Decimal | None = None  # None: no limit
    max_total_exposure: Decimal | None = None  # None: no limit
    max_positions: int | None = None  # None: no limit

    def __post_init__(self) -> None:
        object.__setattr__(self, "cash", to_money(self.cash))
        object.__setattr__(self, "initial_balance", to_money(self.initial_balance))
        for name in ("max_position_size", "max_total_exposure"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, to_money(value))

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "PortfolioState":
        return cls(
            portfolio_id=row.get("portfolio_id"),
            status=row["status"],
            cash=row["current_balance"],
            initial_balance=row["initial_balance"],
            max_position_size=row.get("max_position_size"),
            max_total_exposure=row.get("max_total_exposure"),
            max_positions=row.get("max_positions"),
        )


class BuyRequest(Protocol):
    """What a check needs from a signal (a `trading_signals` row or a strategy's signal)."""

    market_id: str
    side: str
    amount: Any


@dataclass(frozen=True)
class Buy:
    """A plain `BuyRequest`."""

    market_id: str
    side: str
    amount: Decimal


def _usd(value: Decimal) -> str:
    """Dollars without the quantum's trailing zeros: 100.000000 -> 100, 99.5 stays 99.5."""
    return format(value.normalize(), "f")


def check_buy(
    portfolio: PortfolioState,
    open_positions: Sequence[PositionState],
    signal: BuyRequest,
    *,
    allows_multiple_positions_per_market: bool = False,
    market_exposure_cap: Any = None,
    all_portfolios_market_exposure: Any = 0,
) -> str | None:
    """Why `portfolio` may not buy `signal.amount` of `signal.market_id`/`side`, or None.

    `allows_multiple_positions_per_market` (binary arbitrage holds YES and NO) relaxes the
    one-position-per-market rule to one per market side. `market_exposure_cap` limits the cost
    basis all portfolios together hold in the market (`all_portfolios_market_exposure` is the
    current total); None turns it off.
    """
    amount = to_money(signal.amount)
    market, side = signal.market_id, signal.side

    if portfolio.status != "active":
        return f"portfolio {portfolio.status}"
    if amount <= 0:
        return f"amount {_usd(amount)} is not positive"
    if portfolio.cash < amount:
        return f"insufficient cash: need {_usd(amount)}, have {_usd(portfolio.cash)}"
    if portfolio.max_position_size is not None and amount > portfolio.max_position_size:
        return f"amount {_usd(amount)} exceeds max_position_size {_usd(portfolio.max_position_size)}"
    if portfolio.max_total_exposure is not None:
        exposure = sum((p.cost_basis for p in open_positions), ZERO) + amount
        if exposure > portfolio.max_total_exposure:
            return (
                f"exposure {_usd(exposure)} would exceed max_total_exposure "
                f"{_usd(portfolio.max_total_exposure)}"
            )
    # Every buy opens a new position row (adding to an open one is refused below).
    if portfolio.max_positions is not None and len(open_positions) + 1 > portfolio.max_positions:
        return f"already at max_positions {portfolio.max_positions}"
    if allows_multiple_positions_per_market:
        if any(p.market_id == market and p.side == side for p in open_positions):
            return f"already holds market {market} side {side}"
    elif any(p.market_id == market for p in open_positions):
        return f"already holds market {market}"
    if market_exposure_cap is not None:
        cap = to_money(market_exposure_cap)
        combined = to_money(all_portfolios_market_exposure) + amount
        if combined > cap:
            return (
                f"all portfolios' exposure to market {market} would be {_usd(combined)}, "
                f"above the cap {_usd(cap)}"
            )
    return None


def check_group(
    portfolio: PortfolioState,
    open_positions: Sequence[PositionState],
    signals: Iterable[BuyRequest],
    *,
    allows_multiple_positions_per_market: bool = False,
    market_exposure_cap: Any = None,
    all_portfolios_market_exposure: Mapping[str, Any] | None = None,
) -> str | None:
    """Check legs that must execute all or none (an arbitrage basket) as if filled in order.

    Each leg is checked against the portfolio after the earlier legs: less cash, more exposure,
    more positions. Returns the first leg's reason, naming the leg, or None when all pass.
    `all_portfolios_market_exposure` maps market id to the current combined cost basis.
    """
    signals = list(signals)
    if not signals:
        return "empty signal group"
    exposure_by_market = {k: to_money(v) for k, v in (all_portfolios_market_exposure or {}).items()}
    positions = list(open_positions)
    for number, signal in enumerate(signals, start=1):
        reason = check_buy(
            portfolio,
            positions,
            signal,
            allows_multiple_positions_per_market=allows_multiple_positions_per_market,
            market_exposure_cap=market_exposure_cap,
            all_portfolios_market_exposure=exposure_by_market.get(signal.market_id, ZERO),
        )
        if reason is not None:
            return f"leg {number}/{len(signals)} ({signal.market_id} {signal.side}): {reason}"
        amount = to_money(signal.amount)
        portfolio = replace(portfolio, cash=portfolio.cash - amount)
        # A placeholder for the leg's position: only market, side and cost basis matter here.
        positions.append(PositionState(signal.market_id, signal.side, ZERO, amount, ZERO))
        exposure_by_market[signal.market_id] = exposure_by_market.get(signal.market_id, ZERO) + amount
    return None


__all__ = ["PortfolioState", "PositionState", "BuyRequest", "Buy", "check_buy", "check_group"]
