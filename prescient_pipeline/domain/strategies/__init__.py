"""Trading strategies: one interface (`base.Strategy`), one file per strategy, a registry by name."""

from prescient_pipeline.domain.strategies.base import (
    COMMON_DEFAULTS,
    SIGNAL_COLUMNS,
    ConfigError,
    ConfigKey,
    Strategy,
    StrategyContext,
    StrategyResult,
)
from prescient_pipeline.domain.strategies.registry import (
    ENTRY_POINT_GROUP,
    available_strategies,
    get_strategy,
    validate,
)

__all__ = [
    "COMMON_DEFAULTS",
    "SIGNAL_COLUMNS",
    "ENTRY_POINT_GROUP",
    "ConfigError",
    "ConfigKey",
    "Strategy",
    "StrategyContext",
    "StrategyResult",
    "available_strategies",
    "get_strategy",
    "validate",
]
