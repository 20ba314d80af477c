"""The strategy interface: config keys and their validation, the cycle context, and `run`.

A strategy is one file defining one `Strategy` subclass and one instance of it. It declares its own
config keys (`own_keys`) and may change the defaults of common keys (`common_overrides`); its
config is COMMON_KEYS' defaults overlaid by those, then by the portfolio's `strategy_config`.

`signals()` returns *unsized* signals: `amount` is the share of one stake (1.0 for a single buy;
for a basket, each leg's share of the basket's cost, summing to 1.0). `run()` sizes them.
"""

from __future__ import annotations

import difflib
import math
from functools import cached_property
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from prescient_pipeline.domain.market_frame import has_derived, with_derived
from prescient_pipeline.domain.strategies.filters import apply_filters
from prescient_pipeline.domain.strategies.sizing import size_signals

SIGNAL_COLUMNS = [
    "market_id",
    "event_id",
    "token_id",
    "question",
    "side",
    "amount",
    "price_seen",
    "confidence",
    "reason",
    "group_id",
]


class ConfigError(ValueError):
    """A bad strategy name or config; the message is one line and names the key."""


@dataclass(frozen=True)
class StrategyContext:
    as_of: datetime  # tz-aware UTC cycle time: the strategy sees market state as of this instant
    cash: float
    equity: float  # cash + open positions' value
    held_market_ids: frozenset[str] = frozenset()
    max_position_size: float | None = None

    def __post_init__(self):
        if self.as_of.tzinfo is None:
            raise ValueError("StrategyContext.as_of must be timezone-aware (UTC)")


@dataclass(frozen=True)
class StrategyResult:
    signals: pd.DataFrame  # SIGNAL_COLUMNS, amounts in USD
    funnel: list[tuple[str, int]]  # [(step, markets remaining), ...] from ("universe", n)
    config: dict  # the validated config that produced them


# --- config keys -------------------------------------------------------------------------------

NUMBER, INTEGER, BOOLEAN, TEXT, CHOICE, TEXT_LIST = "number", "integer", "boolean", "text", "choice", "text_list"


@dataclass(frozen=True)
class ConfigKey:
    name: str
    default: Any
    help: str
    kind: str = NUMBER
    minimum: float | None = None
    maximum: float | None = None
    optional: bool = False  # None is allowed and means "off"
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        bounds = []
        if self.minimum is not None:
            bounds.append(f">= {self.minimum:g}")
        if self.maximum is not None:
            bounds.append(f"<= {self.maximum:g}")
        kind = f"one of {', '.join(self.choices)}" if self.kind == CHOICE else self.kind
        text = " ".join([kind, *bounds]) + (", or null (off)" if self.optional else "")
        return f"{self.help} [{text}]"

    def check(self, value: Any) -> Any:
        """The value normalised (ints to float for numbers, tuples to lists), or ConfigError."""
        if value is None:
            if self.optional:
                return None
            raise ConfigError(f"{self.name}: must not be null")
        if self.kind in (NUMBER, INTEGER):
            return self._check_number(value)
        if self.kind == BOOLEAN:
            if not isinstance(value, bool):
                raise ConfigError(f"{self.name}: must be true or false, got {value!r}")
            return value
        if self.kind == TEXT:
            if not isinstance(value, str):
                raise ConfigError(f"{self.name}: must be a string, got {value!r}")
            return value
        if self.kind == CHOICE:
            if value not in self.choices:
                raise ConfigError(f"{self.name}: must be one of {', '.join(self.choices)}, got {value!r}")
            return value
        if self.kind == TEXT_LIST:
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{self.name}: must be a list of strings, got {value!r}")
            return list(value)
        raise ConfigError(f"{self.name}: unsupported kind {self.kind!r}")

    def _check_number(self, value: Any) -> float | int:
        # bool is an int in Python; a flag where a number belongs is a mistake, not 0/1.
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{self.name}: must be a {self.kind}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{self.name}: must be finite, got {value!r}")
        if self.kind == INTEGER:
            if isinstance(value, float) and not value.is_integer():
                raise ConfigError(f"{self.name}: must be a whole number, got {value!r}")
            value = int(value)
        else:
            value = float(value)
        if self.minimum is not None and value < self.minimum:
            raise ConfigError(f"{self.name}: must be >= {self.minimum:g}, got {value:g}")
        if self.maximum is not None and value > self.maximum:
            raise ConfigError(f"{self.name}: must be <= {self.maximum:g}, got {value:g}")
        return value


def _key(name, default, help, kind=NUMBER, **kw) -> ConfigKey:
    return ConfigKey(name=name, default=default, help=help, kind=kind, **kw)


# Filters from the seeds (event and market thresholds, conviction band, categories/tags) plus max
# spread, sizing, exits and execution. The thresholds default low enough that a normal universe
# yields signals; the seed's much higher thresholds are a portfolio's choice, not a default.
COMMON_KEYS: tuple[ConfigKey, ...] = (
    _key("event_min_liquidity", 0.0, "Minimum event liquidity (USD); unknown passes only at 0", minimum=0),
    _key("event_min_volume", 0.0, "Minimum event volume (USD); unknown passes only at 0", minimum=0),
    _key("event_min_volume_24hr", 0.0, "Minimum event 24h volume (USD); unknown passes only at 0", minimum=0),
    _key("event_min_days_until_end", None, "Minimum days until the event ends; unknown end fails", optional=True),
    _key("event_max_days_until_end", None, "Maximum days until the event ends; unknown end fails",
         optional=True, minimum=0),
    _key("market_min_liquidity", 1000.0, "Minimum market liquidity (USD); unknown passes only at 0", minimum=0),
    _key("market_min_volume", 0.0, "Minimum market volume (USD); unknown passes only at 0", minimum=0),
    _key("market_min_volume_24hr", 0.0, "Minimum market 24h volume (USD); unknown passes only at 0", minimum=0),
    _key("market_min_conviction", 0.0, "Minimum conviction |yes - no|", minimum=0, maximum=1),
    _key("market_max_conviction", 1.0, "Maximum conviction |yes - no|", minimum=0, maximum=1),
    _key("max_spread", 0.10, "Maximum YES book spread (ask - bid); unknown spread fails when set",
         optional=True, minimum=0, maximum=1),
    _key("min_days_until_end", 0.0,
         "Minimum days until the market ends (0 drops markets past their end date); unknown end passes only at 0",
         optional=True),
    _key("categories", [], "Only these categories (case-insensitive); empty = all", TEXT_LIST),
    _key("tags", [], "Only markets with at least one of these tags (case-insensitive); empty = all", TEXT_LIST),
    _key("exclude_tags", [], "Drop markets with any of these tags (case-insensitive)", TEXT_LIST),
    _key("sizing_mode", "fixed", "fixed: trade_amount per trade; fraction: equity_fraction * equity", CHOICE,
         choices=("fixed", "fraction")),
    _key("trade_amount", 100.0, "USD per trade (per basket for arbitrage) when sizing_mode is fixed",
         minimum=0.01),
    _key("equity_fraction", 0.02, "Share of equity per trade when sizing_mode is fraction",
         minimum=0.0001, maximum=1),
    _key("max_signals_per_cycle", 10, "Keep the highest-confidence signals (a basket counts once)", INTEGER,
         minimum=1, optional=True),
    _key("stop_loss_percentage", None, "Sell when a position has lost this share of its cost (0.15 = 15%)",
         optional=True, minimum=0.0001, maximum=1),
    _key("take_profit_percentage", None, "Sell when a position has gained this share of its cost",
         optional=True, minimum=0.0001),
    _key("max_holding_hours", None, "Sell a position held longer than this", optional=True, minimum=0.01),
    _key("slippage_bps", 50.0,
         "Half-spread of a fill priced without a book: added to the outcome price on a buy (basis points)",
         minimum=0, maximum=10_000),
    _key("max_slippage_bps", 200.0,
         "A buy takes ask levels up to the price its signal saw plus this (basis points); null = no limit",
         optional=True, minimum=0, maximum=10_000),
    _key("fee_rate", None,
         "null: each market's own fee schedule; a number overrides it for every market: "
         "taker fee per share = fee_rate * (p * (1 - p)) ** fee_exponent", optional=True, minimum=0, maximum=1),
    _key("fee_exponent", 1.0, "Exponent of an overriding fee_rate", minimum=0, maximum=4),
    _key("cycle_cron", None, "Cron of this portfolio's trading cycle; null = the daily cycle", TEXT,
         optional=True),
)
COMMON_DEFAULTS: dict[str, Any] = {key.name: key.default for key in COMMON_KEYS}
_COMMON_BY_NAME = {key.name: key for key in COMMON_KEYS}


def _check_common(config: dict) -> None:
    _ordered(config, "market_min_conviction", "market_max_conviction")
    _ordered(config, "event_min_days_until_end", "event_max_days_until_end")
    cron = config.get("cycle_cron")
    if cron is not None and len(cron.split()) != 5:
        raise ConfigError(f"cycle_cron: must have 5 fields (minute hour day month weekday), got {cron!r}")


def _ordered(config: dict, low: str, high: str) -> None:
    if config.get(low) is not None and config.get(high) is not None and config[low] > config[high]:
        raise ConfigError(f"{low}: must be <= {high} ({config[low]:g} > {config[high]:g})")


# --- the interface -----------------------------------------------------------------------------


class Strategy:
    name: str = ""
    description: str = ""
    # Arbitrage buys YES and NO of one market, so the one-position-per-market risk check must not apply.
    allows_multiple_positions_per_market: bool = False
    own_keys: tuple[ConfigKey, ...] = ()
    common_overrides: dict[str, Any] = {}

    @cached_property
    def config_keys(self) -> dict[str, ConfigKey]:
        keys = dict(_COMMON_BY_NAME)
        for name, default in self.common_overrides.items():
            keys[name] = _replace_default(keys[name], default)
        keys.update({key.name: key for key in self.own_keys})
        return keys

    @property
    def default_config(self) -> dict[str, Any]:
        return {name: _copy(key.default) for name, key in self.config_keys.items()}

    def info(self) -> dict:
        keys = self.config_keys
        return {
            "name": self.name,
            "description": self.description,
            "allows_multiple_positions_per_market": self.allows_multiple_positions_per_market,
            "default_config": self.default_config,
            "help": {name: key.describe() for name, key in keys.items()},
        }

    def validate_config(self, overrides: dict | None) -> dict:
        """Defaults overlaid by `overrides`; ConfigError on unknown keys, wrong types or ranges."""
        if overrides is None:
            overrides = {}
        if not isinstance(overrides, dict):
            raise ConfigError(f"strategy config: must be an object of key: value, got {type(overrides).__name__}")
        keys = self.config_keys
        for name in overrides:
            if name not in keys:
                close = difflib.get_close_matches(str(name), keys, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"{name}: unknown config key for strategy {self.name}{hint}")
        config = {name: key.check(overrides[name]) if name in overrides else _copy(key.default)
                  for name, key in keys.items()}
        _check_common(config)
        self.check_config(config)
        return config

    def check_config(self, config: dict) -> None:
        """Cross-key rules of this strategy (e.g. min <= max); raise ConfigError."""

    def filter_universe(
        self, markets: pd.DataFrame, config: dict, ctx: StrategyContext
    ) -> tuple[pd.DataFrame, list[tuple[str, int]]]:
        return apply_filters(_derived(markets, ctx), config)

    def signals(self, markets: pd.DataFrame, config: dict, ctx: StrategyContext) -> pd.DataFrame:
        raise NotImplementedError

    def run(self, markets: pd.DataFrame, overrides_or_config: dict | None, ctx: StrategyContext) -> StrategyResult:
        """Validate, filter, drop held markets, signal, size, cap the count."""
        config = self.validate_config(overrides_or_config)
        kept, funnel = self.filter_universe(markets, config, ctx)
        if ctx.held_market_ids:
            kept = kept[~kept["market_id"].isin(ctx.held_market_ids)]
            funnel.append(("not_held", len(kept)))
        raw = self.signals(kept, config, ctx)
        funnel.append(("signalled", int(raw["market_id"].nunique())))
        sized = size_signals(raw, config, ctx)
        funnel.append(("selected", int(sized["market_id"].nunique())))
        return StrategyResult(signals=sized, funnel=funnel, config=config)


def _replace_default(key: ConfigKey, default: Any) -> ConfigKey:
    return replace(key, default=key.check(default))


def _copy(value):
    return list(value) if isinstance(value, list) else value


def _derived(markets: pd.DataFrame, ctx: StrategyContext) -> pd.DataFrame:
    return markets if has_derived(markets) else with_derived(markets, ctx.as_of)


# --- helpers strategies share ------------------------------------------------------------------


def empty_signals() -> pd.DataFrame:
    frame = pd.DataFrame({name: pd.Series(dtype=object) for name in SIGNAL_COLUMNS})
    for name in ("amount", "price_seen", "confidence"):
        frame[name] = frame[name].astype("float64")
    return frame


def make_signals(
    markets: pd.DataFrame,
    side,
    price_seen,
    confidence,
    reason,
    amount=1.0,
    group_id=None,
) -> pd.DataFrame:
    """SIGNAL_COLUMNS for the rows of `markets`; the other arguments are scalars or row-aligned arrays."""
    if len(markets) == 0:
        return empty_signals()
    side = np.broadcast_to(np.asarray(side, dtype=object), len(markets))
    token_id = np.where(side == "YES", markets["yes_token_id"].to_numpy(dtype=object),
                        markets["no_token_id"].to_numpy(dtype=object))
    frame = pd.DataFrame(
        {
            "market_id": markets["market_id"].to_numpy(dtype=object),
            "event_id": markets["event_id"].to_numpy(dtype=object),
            "token_id": token_id,
            "question": markets["question"].to_numpy(dtype=object),
            "side": side,
            "amount": np.broadcast_to(np.asarray(amount, dtype="float64"), len(markets)),
            "price_seen": np.broadcast_to(np.asarray(price_seen, dtype="float64"), len(markets)),
            "confidence": np.broadcast_to(np.asarray(confidence, dtype="float64"), len(markets)),
            "reason": np.broadcast_to(np.asarray(reason, dtype=object), len(markets)),
            "group_id": np.broadcast_to(np.asarray(group_id, dtype=object), len(markets)),
        }
    )
    return frame[SIGNAL_COLUMNS]


def strictly_inside_unit(prices) -> np.ndarray:
    """True where a price can be bought: known and strictly between 0 and 1."""
    values = np.asarray(prices, dtype="float64")
    with np.errstate(invalid="ignore"):
        return (values > 0.0) & (values < 1.0)


def liquidity_score(liquidity: pd.Series) -> np.ndarray:
    """0 at no/unknown liquidity, 1 at $1M or more, logarithmic in between."""
    values = np.nan_to_num(liquidity.to_numpy(dtype="float64"), nan=0.0).clip(min=0.0)
    return np.clip(np.log10(1.0 + values) / 6.0, 0.0, 1.0)


def band_position(price: np.ndarray, low: float, high: float) -> np.ndarray:
    """Where `price` sits in [low, high]: 0 at low, 1 at high (1 when the band is a single point)."""
    if high <= low:
        return np.ones_like(price, dtype="float64")
    return np.clip((price - low) / (high - low), 0.0, 1.0)


__all__ = [
    "SIGNAL_COLUMNS",
    "COMMON_KEYS",
    "COMMON_DEFAULTS",
    "ConfigError",
    "ConfigKey",
    "Strategy",
    "StrategyContext",
    "StrategyResult",
    "empty_signals",
    "make_signals",
    "strictly_inside_unit",
    "liquidity_score",
    "band_position",
]
