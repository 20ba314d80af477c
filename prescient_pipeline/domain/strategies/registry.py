"""Find strategies by name: the four built-ins, plus plugins from installed distributions.

A plugin is an installed distribution declaring an entry point in the group
"prescient_pipeline.strategies", e.g. in its pyproject.toml:

    [project.entry-points."prescient_pipeline.strategies"]
    my_strategy = "my_package.my_strategy:STRATEGY"

The entry point may name a Strategy instance or a Strategy subclass (instantiated without
arguments). A plugin that fails to load, is not a Strategy, has no name, or reuses a built-in's
name is logged and skipped: one broken plugin must not stop every portfolio's cycle.
Built-in names are resolved without scanning entry points, so the per-portfolio lookup is cheap.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

from prescient_pipeline.domain.strategies import arbitrage, hybrid, mean_reversion, momentum
from prescient_pipeline.domain.strategies.base import ConfigError, Strategy

ENTRY_POINT_GROUP = "prescient_pipeline.strategies"

BUILTINS: dict[str, Strategy] = {
    s.name: s for s in (momentum.STRATEGY, mean_reversion.STRATEGY, arbitrage.STRATEGY, hybrid.STRATEGY)
}

log = logging.getLogger(__name__)


def plugin_strategies() -> dict[str, Strategy]:
    """Strategies declared by installed distributions, read now (not cached)."""
    found: dict[str, Strategy] = {}
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            loaded = entry_point.load()
            strategy = loaded() if isinstance(loaded, type) and issubclass(loaded, Strategy) else loaded
            if not isinstance(strategy, Strategy):
                raise TypeError(f"{entry_point.value} is not a Strategy instance or subclass")
            if not strategy.name:
                raise TypeError(f"{entry_point.value} has no name")
            if strategy.name in BUILTINS:
                raise ValueError(f"name {strategy.name!r} is taken by a built-in strategy")
            strategy.default_config  # a plugin whose config cannot be built would fail every run
        except Exception as error:  # noqa: BLE001 - any plugin failure is logged and skipped
            log.warning("skipping strategy plugin %r: %s", entry_point.name, error)
            continue
        found[strategy.name] = strategy
    return found


def available_strategies() -> dict[str, Strategy]:
    """Every strategy by name: built-ins first, then plugins."""
    return {**BUILTINS, **plugin_strategies()}


def get_strategy(name: str) -> Strategy:
    if name in BUILTINS:
        return BUILTINS[name]
    strategies = available_strategies()
    if name not in strategies:
        raise ConfigError(f"strategy_type: unknown strategy {name!r} (known: {', '.join(sorted(strategies))})")
    return strategies[name]


def validate(name: str, overrides: dict | None) -> dict:
    """The full config of strategy `name` with `overrides` applied, or ConfigError."""
    return get_strategy(name).validate_config(overrides)


__all__ = ["ENTRY_POINT_GROUP", "BUILTINS", "available_strategies", "get_strategy", "plugin_strategies", "validate"]
