"""Exit rules checked on every price update: stop loss, take profit, maximum holding time.

The market's move is judged, not the spread: the position's mark now (the displayed price)
against its mark at entry (the displayed price when it was bought),
`move = mark / entry_mark - 1`. A buy at the ask in an unchanged market has moved 0, however
wide the spread it crossed. Positions without an entry mark (opened before it was kept) use
their average fill price. The sale itself walks the bids and pays the exit fee.
Percentages are fractions (0.15 = 15%). A missing (None) threshold turns its rule off. With no
bid there is nothing to sell into, so the caller fires no rule, not even the holding-time one.
Rules are checked in the order stop loss, take profit, holding time, so when several apply
the reason is the protective one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Mapping

from prescient_pipeline.domain.accounting import PositionState, to_price

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
    mark: Decimal  # the displayed price the decision was taken at
    move: Decimal | None  # mark / entry mark - 1


def exit_decision(
    position: PositionState,
    mark: Any,
    now: datetime,
    config: ExitRules | Mapping[str, Any],
    entry_mark: Any = None,
) -> ExitDecision | None:
    """Whether to sell `position` now, its mark being `mark`, and why; None to keep holding."""
    rules = config if isinstance(config, ExitRules) else ExitRules.from_config(config)
    if mark is None:
        return None
    mark = to_price(mark)
    entry = to_price(entry_mark) if entry_mark is not None else position.avg_price
    move = mark / entry - 1 if entry > 0 else None

    def decide(reason: str) -> ExitDecision:
        return ExitDecision(reason, mark, move)

    if move is not None:
        if rules.stop_loss_percentage is not None and move <= -_fraction(rules.stop_loss_percentage):
            return decide(STOP_LOSS)
        if rules.take_profit_percentage is not None and move >= _fraction(rules.take_profit_percentage):
            return decide(TAKE_PROFIT)
    if rules.max_holding_hours is not None and position.opened_at is not None:
        if now - position.opened_at >= timedelta(hours=float(rules.max_holding_hours)):
            return decide(MAX_HOLDING_TIME)
    return None


def _fraction(value: float) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


__all__ = ["STOP_LOSS", "TAKE_PROFIT", "MAX_HOLDING_TIME", "ExitRules", "ExitDecision", "exit_decision"]
