"""Exit rules checked on every price update: stop loss, take profit, maximum holding time.

P&L is judged at the price the position could be sold at now (the bid of its side) against
its cost basis (entry fee included): `pnl_pct = (shares * bid - cost_basis) / cost_basis`.
The exit fee is not deducted for the decision; the sale itself pays it (`fills.sell`).
Percentages are fractions (0.15 = 15%). A missing (None) threshold turns its rule off. With no
bid there is nothing to sell into, so no rule fires, not even the holding-time one.
Rules are checked in the order stop loss, take profit, holding time, so when several apply
the reason is the protective one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Mapping

from prescient_pipeline.domain.accounting import PositionState, to_money, to_price

STOP_LOSS = "stop_loss"
TAKE_PROFIT = "take_profit"
MAX_HOLDING_TIME = "max_holding_time"


@dataclass(frozen=True)
class ExitRules:
    stop_loss_percentage: float | None = None
    take_profit_percentage: float | None = None
    max_holding_hours: float | None = None

    def __post_init__(self) -> None:
        # A stop at 0% would sell every position right after the entry fee; beyond 100% it
        # could never trigger. Both are configuration mistakes, not "off".
        if self.stop_loss_percentage is not None and not 0 < self.stop_loss_percentage <= 1:
            raise ValueError(
                f"stop_loss_percentage must be a fraction in (0, 1], got {self.stop_loss_percentage}"
            )
        if self.take_profit_percentage is not None and not self.take_profit_percentage > 0:
            raise ValueError(
                f"take_profit_percentage must be positive, got {self.take_profit_percentage}"
            )
        if self.max_holding_hours is not None and not self.max_holding_hours > 0:
            raise ValueError(f"max_holding_hours must be positive, got {self.max_holding_hours}")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "ExitRules":
        """Pick the exit settings out of a strategy config; other keys are not ours to judge."""
        return cls(
            stop_loss_percentage=config.get("stop_loss_percentage"),
            take_profit_percentage=config.get("take_profit_percentage"),
            max_holding_hours=config.get("max_holding_hours"),
        )


@dataclass(frozen=True)
class ExitDecision:
    reason: str  # stop_loss | take_profit | max_holding_time (the position's close_reason)
    bid_price: Decimal
    market_value: Decimal  # shares * bid, before the exit fee
    pnl_pct: Decimal | None


def exit_decision(
    position: PositionState,
    bid_price: Any,
    now: datetime,
    config: ExitRules | Mapping[str, Any],
) -> ExitDecision | None:
    """Whether to sell `position` now at `bid_price`, and why; None to keep holding."""
    rules = config if isinstance(config, ExitRules) else ExitRules.from_config(config)
    if bid_price is None:
        return None
    bid = to_price(bid_price)
    market_value = to_money(position.shares * bid)
    pnl_pct = (
        (market_value - position.cost_basis) / position.cost_basis if position.cost_basis > 0 else None
    )

    def decide(reason: str) -> ExitDecision:
        return ExitDecision(reason, bid, market_value, pnl_pct)

    if pnl_pct is not None:
        if rules.stop_loss_percentage is not None and pnl_pct <= -_fraction(rules.stop_loss_percentage):
            return decide(STOP_LOSS)
        if rules.take_profit_percentage is not None and pnl_pct >= _fraction(rules.take_profit_percentage):
            return decide(TAKE_PROFIT)
    if rules.max_holding_hours is not None and position.opened_at is not None:
        if now - position.opened_at >= timedelta(hours=float(rules.max_holding_hours)):
            return decide(MAX_HOLDING_TIME)
    return None


def _fraction(value: float) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


__all__ = ["STOP_LOSS", "TAKE_PROFIT", "MAX_HOLDING_TIME", "ExitRules", "ExitDecision", "exit_decision"]
