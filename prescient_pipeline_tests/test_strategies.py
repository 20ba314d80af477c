"""Strategy interface: market frame, filters, sizing, config validation, registry, real data.

Per-strategy rules are in test_strategies_rules.py; the frame builders here are shared with it.
"""

from __future__ import annotations

import json
import logging
import math
import textwrap
from collections import Counter
from datetime import datetime, timezone

import pandas as pd
import pytest

from prescient_pipeline.domain.market_frame import (
    DERIVED_COLUMNS,
    MARKET_COLUMNS,
    as_market_frame,
    empty_market_frame,
    with_derived,
)
from prescient_pipeline.domain.strategies import (
    COMMON_DEFAULTS,
    SIGNAL_COLUMNS,
    ConfigError,
    StrategyContext,
    available_strategies,
    get_strategy,
    validate,
)
from prescient_pipeline.domain.strategies.filters import apply_filters
from prescient_pipeline.domain.strategies.sizing import size_signals

AS_OF = datetime(2026, 3, 1, 9, tzinfo=timezone.utc)


def market(market_id: str = "m1", **fields) -> dict:
    """One healthy, tradable market row; override any field."""
    yes = fields.pop("yes_price", 0.70)
    row = {
        "market_id": market_id,
        "event_id": f"e-{market_id}",
        "question": f"Question {market_id}?",
        "category": "Politics",
        "tags": ["politics"],
        "yes_price": yes,
        "no_price": round(1 - yes, 6),
        "best_bid": round(yes - 0.01, 6),
        "best_ask": round(yes + 0.01, 6),
        "liquidity": 50_000.0,
        "volume": 200_000.0,
        "volume_24hr": 10_000.0,
        "end_date": pd.Timestamp(AS_OF) + pd.Timedelta(days=30),
        "active": True,
        "closed": False,
        "accepting_orders": True,
        "neg_risk": False,
        "yes_token_id": f"{market_id}-yes",
        "no_token_id": f"{market_id}-no",
        "event_liquidity": 100_000.0,
        "event_volume": 500_000.0,
        "event_volume_24hr": 20_000.0,
        "event_end_date": pd.Timestamp(AS_OF) + pd.Timedelta(days=30),
        "event_market_count": 1,
    }
    row.update(fields)
    return row


def frame(*rows: dict) -> pd.DataFrame:
    return as_market_frame(list(rows))


def context(**fields) -> StrategyContext:
    values = {"as_of": AS_OF, "cash": 10_000.0, "equity": 10_000.0}
    values.update(fields)
    return StrategyContext(**values)


def unsized(*rows: dict) -> pd.DataFrame:
    """Signals as strategies return them (amount = share of one stake)."""
    base = {"event_id": "e", "token_id": "t", "question": "q", "side": "YES", "amount": 1.0,
            "price_seen": 0.5, "confidence": 0.5, "reason": "r", "group_id": None}
    return pd.DataFrame([{**base, **row} for row in rows])[SIGNAL_COLUMNS]


# --- market frame ---------------------------------------------------------------------------------


def test_market_frame_names_missing_columns_and_tolerates_missing_accepting_orders():
    row = market()
    del row["liquidity"], row["neg_risk"]
    with pytest.raises(ValueError, match="liquidity, neg_risk"):
        frame(row)
    row = market()
    del row["accepting_orders"]
    coerced = frame(row)
    assert coerced["accepting_orders"].isna().all()
    assert list(empty_market_frame().columns) == list(MARKET_COLUMNS)


def test_with_derived_columns():
    markets = with_derived(
        frame(
            market("a", yes_price=0.62, best_bid=0.60, best_ask=0.64),
            market("b", yes_price=0.20, best_bid=None),
            market("c", yes_price=0.5, end_date=None),
        ),
        AS_OF,
    )
    assert set(DERIVED_COLUMNS) <= set(markets.columns)
    a, b, c = (markets.iloc[i] for i in range(3))
    assert a["conviction"] == pytest.approx(0.24)
    assert (a["favourite"], a["favourite_price"]) == ("YES", 0.62)
    assert a["spread"] == pytest.approx(0.04)
    assert a["days_to_end"] == pytest.approx(30.0)
    assert (b["favourite"], b["favourite_price"]) == ("NO", 0.80)
    assert math.isnan(b["spread"])  # no bid: spread unknown, not 'ask - 0'
    assert c["favourite"] == "YES" and c["conviction"] == 0  # a tie reads as YES; strategies check ties
    assert math.isnan(c["days_to_end"])
    with pytest.raises(ValueError, match="timezone-aware"):
        with_derived(markets, datetime(2026, 3, 1, 9))


def test_every_strategy_handles_an_empty_universe():
    for name, strategy in available_strategies().items():
        result = strategy.run(empty_market_frame(), None, context())
        assert result.signals.empty, name
        assert list(result.signals.columns) == SIGNAL_COLUMNS
        assert result.funnel[0] == ("universe", 0)


# --- filters --------------------------------------------------------------------------------------


def filtered(rows, **overrides):
    config = get_strategy("momentum").validate_config(overrides)
    kept, funnel = apply_filters(with_derived(frame(*rows), AS_OF), config)
    return list(kept["market_id"]), funnel


def test_untradable_markets_are_dropped_and_unknown_accepting_orders_is_kept():
    kept, funnel = filtered(
        [
            market("open"),
            market("closed", closed=True),
            market("inactive", active=False),
            market("refusing", accepting_orders=False),
            market("unknown_accepting", accepting_orders=None),
            market("unpriced", yes_price=float("nan"), no_price=float("nan")),
        ]
    )
    assert kept == ["open", "unknown_accepting"]
    assert funnel[:2] == [("universe", 6), ("tradable", 2)]


def test_a_min_threshold_drops_unknown_values_only_when_above_zero():
    rows = [market("known", volume_24hr=5_000.0), market("unknown", volume_24hr=float("nan")),
            market("small", volume_24hr=10.0)]
    assert filtered(rows, market_min_volume_24hr=0)[0] == ["known", "unknown", "small"]
    assert filtered(rows, market_min_volume_24hr=100)[0] == ["known"]
    rows = [market("known"), market("unknown_liquidity", liquidity=None)]
    assert filtered(rows, market_min_liquidity=0)[0] == ["known", "unknown_liquidity"]
    assert filtered(rows, market_min_liquidity=1)[0] == ["known"]
    rows = [market("rich"), market("unknown_event", event_liquidity=None), market("poor", event_liquidity=10.0)]
    kept, funnel = filtered(rows, event_min_liquidity=1_000)
    assert kept == ["rich"]
    assert ("event_liquidity", 1) in funnel


def test_days_until_end_filters():
    soon = pd.Timestamp(AS_OF) + pd.Timedelta(hours=12)
    past = pd.Timestamp(AS_OF) - pd.Timedelta(days=1)
    rows = [market("month"), market("soon", end_date=soon), market("past", end_date=past),
            market("unknown", end_date=None)]
    assert filtered(rows)[0] == ["month", "soon", "unknown"]  # default 0: past dropped, unknown kept
    assert filtered(rows, min_days_until_end=1)[0] == ["month"]  # > 0: unknown fails
    assert filtered(rows, min_days_until_end=None)[0] == ["month", "soon", "past", "unknown"]
    rows = [market("month"), market("far", event_end_date=pd.Timestamp(AS_OF) + pd.Timedelta(days=400)),
            market("unknown_event_end", event_end_date=None)]
    assert filtered(rows, event_max_days_until_end=90)[0] == ["month"]  # set max: unknown fails
    assert filtered(rows, event_min_days_until_end=0)[0] == ["month", "far", "unknown_event_end"]


def test_spread_conviction_category_and_tag_filters():
    rows = [
        market("tight", best_bid=0.69, best_ask=0.71),
        market("edge", best_bid=0.65, best_ask=0.75),  # spread 0.10 exactly passes max_spread 0.10
        market("wide", best_bid=0.60, best_ask=0.80),
        market("no_book", best_bid=None, best_ask=None),
    ]
    assert filtered(rows)[0] == ["tight", "edge"]
    assert filtered(rows, max_spread=None)[0] == ["tight", "edge", "wide", "no_book"]
    rows = [market("calm", yes_price=0.52), market("sure", yes_price=0.90)]
    kept, funnel = filtered(rows, market_min_conviction=0.5)
    assert kept == ["sure"] and ("conviction", 1) in funnel
    rows = [
        market("pol", category="Politics", tags=["Elections", "US"]),
        market("sport", category="sports", tags=["NBA"]),
        market("none", category=None, tags=[]),
    ]
    assert filtered(rows, categories=["politics"])[0] == ["pol"]
    assert filtered(rows, tags=["nba", "elections"])[0] == ["pol", "sport"]
    assert filtered(rows, exclude_tags=["us"])[0] == ["sport", "none"]


def test_funnel_counts_only_decrease():
    rows = [market(str(i), liquidity=float(i * 500), volume_24hr=float(i * 100)) for i in range(10)]
    _, funnel = filtered(rows, market_min_volume_24hr=300, event_min_volume=1, categories=["Politics"])
    assert funnel[0] == ("universe", 10)
    counts = [n for _, n in funnel]
    assert counts == sorted(counts, reverse=True)
    assert [name for name, _ in funnel] == [
        "universe", "tradable", "event_volume", "market_liquidity", "market_volume_24hr",
        "days_until_end", "spread", "categories",
    ]


# --- sizing ---------------------------------------------------------------------------------------


def sized(signals, ctx=None, **overrides):
    config = get_strategy("momentum").validate_config(overrides)
    return size_signals(signals, config, ctx or context())


def test_fixed_and_fraction_sizing():
    signals = unsized({"market_id": "a"}, {"market_id": "b", "amount": 0.5})
    assert list(sized(signals)["amount"]) == [100.0, 50.0]
    fraction = sized(signals, context(equity=20_000.0), sizing_mode="fraction", equity_fraction=0.05)
    assert list(fraction["amount"]) == [1_000.0, 500.0]


def test_sizing_is_clipped_by_max_position_size_and_by_cash():
    signals = unsized(*({"market_id": m, "confidence": c} for m, c in (("a", 0.9), ("b", 0.8), ("c", 0.7))))
    clipped = sized(signals, context(max_position_size=40.0))
    assert list(clipped["amount"]) == [40.0, 40.0, 40.0]
    short = sized(signals, context(cash=250.0))
    assert list(zip(short["market_id"], short["amount"])) == [("a", 100.0), ("b", 100.0), ("c", 50.0)]
    assert sized(signals, context(cash=0.5)).empty  # dust is not an order
    assert sized(signals, context(cash=-10.0)).empty


def test_max_signals_keeps_the_most_confident_and_never_splits_a_basket():
    signals = unsized(
        {"market_id": "low", "confidence": 0.2},
        {"market_id": "leg1", "confidence": 0.9, "group_id": "arb-e", "amount": 0.25, "price_seen": 0.25},
        {"market_id": "leg2", "confidence": 0.9, "group_id": "arb-e", "amount": 0.75, "price_seen": 0.75},
        {"market_id": "high", "confidence": 0.8},
    )
    top2 = sized(signals, max_signals_per_cycle=2)
    assert list(top2["market_id"]) == ["leg1", "leg2", "high"]  # the basket counts once
    assert top2.loc[top2["group_id"] == "arb-e", "amount"].sum() == pytest.approx(100.0)
    assert list(sized(signals, max_signals_per_cycle=1)["market_id"]) == ["leg1", "leg2"]
    assert len(sized(signals, max_signals_per_cycle=None)) == 4
    # The largest leg must fit max_position_size: the whole basket shrinks, so shares stay equal.
    capped = sized(signals, context(max_position_size=30.0), max_signals_per_cycle=1)
    assert list(capped["amount"]) == pytest.approx([10.0, 30.0])
    shares = capped["amount"] / capped["price_seen"]
    assert shares.iloc[0] == pytest.approx(shares.iloc[1])
    # Not enough cash for the whole basket: scaled down as a whole, never half-bought.
    poor = sized(signals, context(cash=60.0), max_signals_per_cycle=1)
    assert list(poor["amount"]) == pytest.approx([15.0, 45.0])


# --- config validation ----------------------------------------------------------------------------


def test_defaults_validate_and_validation_is_idempotent():
    for name, strategy in available_strategies().items():
        config = strategy.validate_config(None)
        assert config == strategy.default_config
        assert strategy.validate_config(config) == config
        assert set(COMMON_DEFAULTS) <= set(config)
        info = strategy.info()
        assert info["name"] == name and info["description"]
        assert set(info["help"]) == set(config)
    assert validate("momentum", {"trade_amount": 25})["trade_amount"] == 25.0


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"trade_amout": 5},
         r"^trade_amout: unknown config key for strategy momentum \(did you mean 'trade_amount'\?\)$"),
        ({"trade_amount": "100"}, r"^trade_amount: must be a number, got '100'$"),
        ({"trade_amount": True}, r"^trade_amount: must be a number"),
        ({"trade_amount": -5}, r"^trade_amount: must be >= 0.01, got -5$"),
        ({"trade_amount": float("nan")}, r"^trade_amount: must be finite"),
        ({"trade_amount": None}, r"^trade_amount: must not be null$"),
        ({"max_signals_per_cycle": 2.5}, r"^max_signals_per_cycle: must be a whole number"),
        ({"sizing_mode": "kelly"}, r"^sizing_mode: must be one of fixed, fraction, got 'kelly'$"),
        ({"categories": "politics"}, r"^categories: must be a list of strings"),
        ({"favourite_min_price": 0.9, "favourite_max_price": 0.6},
         r"^favourite_min_price: must be <= favourite_max_price \(0.9 > 0.6\)$"),
        ({"market_min_conviction": 0.8, "market_max_conviction": 0.2},
         r"^market_min_conviction: must be <= market_max_conviction"),
        ({"favourite_max_price": 1.5}, r"^favourite_max_price: must be <= 1, got 1.5$"),
        ({"cycle_cron": "every day"}, r"^cycle_cron: must have 5 fields"),
    ],
)
def test_config_errors_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message) as error:
        get_strategy("momentum").validate_config(overrides)
    assert "\n" not in str(error.value)


def test_strategy_specific_config_errors():
    with pytest.raises(ConfigError, match="^min_profit_margin: must be <= max_profit_margin"):
        validate("arbitrage", {"min_profit_margin": 0.3, "max_profit_margin": 0.1})
    with pytest.raises(ConfigError, match="^momentum_weight: at least one component weight"):
        validate("hybrid", {"momentum_weight": 0, "mean_reversion_weight": 0, "arbitrage_weight": 0})
    with pytest.raises(ConfigError, match="^mean_reversion_favourite_min_price: must be <="):
        validate("hybrid", {"mean_reversion_favourite_min_price": 0.99})
    with pytest.raises(ConfigError, match="^favourite_min_price: unknown config key for strategy arbitrage"):
        validate("arbitrage", {"favourite_min_price": 0.5})
    with pytest.raises(ConfigError, match="must be an object"):
        validate("momentum", ["trade_amount", 5])
    # Strategies change some common defaults: arbitrage keeps every basket leg in the universe.
    assert validate("arbitrage", None)["market_min_liquidity"] == 0.0
    assert validate("momentum", None)["market_min_liquidity"] == 1000.0


# --- registry -------------------------------------------------------------------------------------


def test_registry_knows_the_builtins():
    assert {"momentum", "mean_reversion", "arbitrage", "hybrid"} <= set(available_strategies())
    assert get_strategy("arbitrage").allows_multiple_positions_per_market
    assert not get_strategy("momentum").allows_multiple_positions_per_market
    known = r"\(known: arbitrage, hybrid, mean_reversion, momentum"
    with pytest.raises(ConfigError, match=rf"^strategy_type: unknown strategy 'martingale' {known}"):
        get_strategy("martingale")


PLUGIN_SOURCE = '''
from prescient_pipeline.domain.strategies.base import ConfigKey, Strategy, make_signals


class AlwaysYes(Strategy):
    name = "always_yes_{suffix}"
    description = "Buys YES of every market under a price cap."
    own_keys = (ConfigKey("price_cap", 0.5, "Highest YES price to buy", minimum=0, maximum=1),)

    def signals(self, markets, config, ctx):
        picked = markets[markets["yes_price"] < config["price_cap"]]
        return make_signals(picked, "YES", picked["yes_price"].to_numpy(), 0.5, "always yes")
'''


def test_a_third_party_strategy_is_found_through_its_entry_point(tmp_path, monkeypatch, caplog):
    suffix = tmp_path.name.replace("-", "_")[-12:]
    module = f"plugin_{suffix}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(PLUGIN_SOURCE).replace("{suffix}", suffix))
    dist_info = tmp_path / f"prescient_plugin_{suffix}-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: prescient-plugin-{suffix}\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        "[prescient_pipeline.strategies]\n"
        f"always_yes = {module}:AlwaysYes\n"
        f"missing = {module}_not_there:STRATEGY\n"
        f"not_a_strategy = json:loads\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    with caplog.at_level(logging.WARNING, logger="prescient_pipeline.domain.strategies.registry"):
        strategies = available_strategies()
    name = f"always_yes_{suffix}"
    assert name in strategies and "momentum" in strategies
    assert "skipping strategy plugin 'missing'" in caplog.text
    assert "skipping strategy plugin 'not_a_strategy'" in caplog.text

    plugin = get_strategy(name)
    assert plugin.validate_config({"price_cap": 0.3})["price_cap"] == 0.3
    with pytest.raises(ConfigError, match="^price_cap: must be <= 1"):
        validate(name, {"price_cap": 2})
    result = plugin.run(frame(market("cheap", yes_price=0.2), market("dear", yes_price=0.8)), None, context())
    assert list(result.signals["market_id"]) == ["cheap"]
    assert list(result.signals["token_id"]) == ["cheap-yes"]
    assert list(result.signals["amount"]) == [100.0]


# --- real recorded markets ------------------------------------------------------------------------


def load_gamma_markets(path) -> pd.DataFrame:
    """Raw Gamma /markets JSONL -> market frame. The file's nested events carry no market list, so
    event_market_count is 0 (unknown) and event figures are the nested event's own."""
    rows = []
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line.strip():
            continue
        raw = json.loads(line)
        prices = [float(p) for p in json.loads(raw.get("outcomePrices") or "[]")]
        tokens = json.loads(raw.get("clobTokenIds") or "[]")
        if len(prices) != 2 or len(tokens) != 2:
            continue
        event = (raw.get("events") or [{}])[0]
        rows.append(
            {
                "market_id": str(raw["id"]),
                "event_id": str(event.get("id", raw["id"])),
                "question": raw.get("question") or "",
                "category": raw.get("category"),
                "tags": [],
                "yes_price": prices[0],
                "no_price": prices[1],
                "best_bid": raw.get("bestBid"),
                "best_ask": raw.get("bestAsk"),
                "liquidity": raw.get("liquidityNum"),
                "volume": raw.get("volumeNum"),
                "volume_24hr": raw.get("volume24hr"),
                "end_date": raw.get("endDate"),
                "active": raw.get("active"),
                "closed": raw.get("closed"),
                "accepting_orders": raw.get("acceptingOrders"),
                "neg_risk": bool(raw.get("negRisk")),
                "yes_token_id": tokens[0],
                "no_token_id": tokens[1],
                "event_liquidity": event.get("liquidity"),
                "event_volume": event.get("volume"),
                "event_volume_24hr": event.get("volume24hr"),
                "event_end_date": event.get("endDate"),
                "event_market_count": 0,
            }
        )
    return as_market_frame(rows)


@pytest.fixture(scope="module")
def real_markets(polymarket_data):
    path = polymarket_data / "the-boshi__polymarket-db" / "markets_2025-11-10.jsonl"
    if not path.is_file():
        pytest.skip(f"{path.name} is not present")
    return load_gamma_markets(path)


REAL_AS_OF = datetime(2025, 11, 10, 9, tzinfo=timezone.utc)


@pytest.mark.parametrize("name", ["momentum", "mean_reversion", "hybrid"])
def test_default_configs_signal_on_real_markets(real_markets, name):
    assert len(real_markets) == 505
    held = frozenset(real_markets["market_id"].iloc[:50])
    ctx = StrategyContext(as_of=REAL_AS_OF, cash=10_000.0, equity=10_000.0, held_market_ids=held)
    result = get_strategy(name).run(real_markets, None, ctx)
    signals = result.signals
    assert len(signals) > 0
    assert len(signals) <= 10 if name != "hybrid" else signals["group_id"].fillna(signals["market_id"]).nunique() <= 10
    assert not signals["market_id"].isin(held).any()
    assert ((signals["price_seen"] > 0) & (signals["price_seen"] < 1)).all()
    assert (signals["amount"] > 0).all() and signals["amount"].sum() <= 10_000.0
    by_id = real_markets.set_index("market_id")
    for row in signals.itertuples():
        source = by_id.loc[row.market_id]
        token = source["yes_token_id"] if row.side == "YES" else source["no_token_id"]
        assert row.token_id == token
        if row.group_id is None:
            assert row.price_seen == (source["yes_price"] if row.side == "YES" else source["no_price"])
    steps = dict(result.funnel)
    assert steps["universe"] == 505 and steps["not_held"] < steps["universe"]
    assert result.funnel[-1][0] == "selected"


def test_real_markets_band_rules(real_markets):
    ctx = StrategyContext(as_of=REAL_AS_OF, cash=1e9, equity=1e9)
    unlimited = {"max_signals_per_cycle": None}
    momentum = get_strategy("momentum").run(real_markets, unlimited, ctx).signals
    reversion = get_strategy("mean_reversion").run(real_markets, unlimited, ctx).signals
    assert momentum["price_seen"].between(0.55, 0.85).all()
    assert reversion["price_seen"].between(0.05, 0.30 + 1e-9).all()
    # Both bands cover 0.70-0.85: there they disagree, one buys the favourite, the other the underdog.
    both = momentum.merge(reversion, on="market_id", suffixes=("_m", "_r"))
    assert len(both) > 0 and (both["side_m"] != both["side_r"]).all()


def test_real_markets_without_event_counts_form_no_negrisk_baskets(real_markets):
    # 141 of these markets are negRisk, but the file holds only some markets of each event: with
    # the count unknown, a basket could be missing a leg, so none is bought.
    assert Counter(real_markets["neg_risk"])[True] == 141
    ctx = StrategyContext(as_of=REAL_AS_OF, cash=10_000.0, equity=10_000.0)
    signals = get_strategy("arbitrage").run(real_markets, None, ctx).signals
    assert signals["group_id"].str.startswith("arb-market-").all()  # same-market YES+NO pairs only
    assert all(sorted(sides) == ["NO", "YES"] for sides in signals.groupby("group_id")["side"].apply(list))
    # Were the partial events taken as complete, their YES asks would look like free money.
    pretend = real_markets.copy()
    pretend["event_market_count"] = pretend.groupby("event_id")["market_id"].transform("size")
    fooled = get_strategy("arbitrage").run(pretend, {"max_profit_margin": None}, ctx).signals
    assert fooled["group_id"].str.startswith("arb-event-").any()
