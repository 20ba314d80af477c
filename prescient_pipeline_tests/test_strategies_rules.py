"""Each strategy's rules on small hand-built universes: bands, sides, baskets, weights, edge prices."""

from __future__ import annotations

import pytest

from prescient_pipeline.domain.strategies import get_strategy
from prescient_pipeline_tests.test_strategies import context, frame, market

NAN = float("nan")


def run(name, rows, ctx=None, **overrides):
    return get_strategy(name).run(frame(*rows), overrides, ctx or context()).signals


def by_market(signals) -> dict:
    return {row.market_id: row for row in signals.itertuples()}


# --- momentum -------------------------------------------------------------------------------------


def test_momentum_buys_the_favourite_inside_the_band_edges_included():
    signals = run(
        "momentum",
        [
            market("low_edge", yes_price=0.55),
            market("high_edge", yes_price=0.85),
            market("below", yes_price=0.549),
            market("above", yes_price=0.851),
            market("no_favoured", yes_price=0.30),  # NO at 0.70
            market("coin_flip", yes_price=0.50),
        ],
    )
    got = by_market(signals)
    assert set(got) == {"low_edge", "high_edge", "no_favoured"}
    no = got["no_favoured"]
    assert (no.side, no.token_id, no.price_seen) == ("NO", "no_favoured-no", pytest.approx(0.70))
    assert got["high_edge"].reason == "favourite YES at 0.850 in band 0.55-0.85"
    assert (signals["amount"] == 100.0).all() and signals["group_id"].isna().all()


def test_momentum_confidence_grows_with_price_and_liquidity():
    got = by_market(
        run(
            "momentum",
            [
                market("strong", yes_price=0.80, liquidity=1_000_000.0),
                market("weak", yes_price=0.60, liquidity=1_000_000.0),
                market("thin", yes_price=0.80, liquidity=2_000.0),
            ],
        )
    )
    assert got["strong"].confidence > got["weak"].confidence
    assert got["strong"].confidence > got["thin"].confidence
    # 70% band position ((0.80 - 0.55) / 0.30) + 30% liquidity (full at $1M).
    assert got["strong"].confidence == pytest.approx(0.7 * 0.25 / 0.30 + 0.3, abs=1e-4)
    assert 0 <= got["weak"].confidence <= 1


def test_momentum_with_no_favourite_or_unbuyable_prices_skips():
    wide = {"favourite_min_price": 0.5, "favourite_max_price": 1.0, "max_spread": None}
    signals = run(
        "momentum",
        [
            market("tie", yes_price=0.5),
            market("certain", yes_price=1.0, best_bid=0.99, best_ask=None),  # NO price 0, YES 1
            market("ask_at_one", yes_price=0.95, best_ask=1.0),
            market("no_book", yes_price=0.70, best_bid=None, best_ask=None),  # falls back to price + slippage
            market("unpriced", yes_price=NAN, no_price=NAN),
        ],
        **wide,
    )
    assert list(signals["market_id"]) == ["no_book"]
    assert signals["price_seen"].iloc[0] == pytest.approx(0.70)


def test_held_markets_are_skipped():
    rows = [market("held", yes_price=0.7), market("free", yes_price=0.7)]
    result = get_strategy("momentum").run(frame(*rows), None, context(held_market_ids=frozenset({"held"})))
    assert list(result.signals["market_id"]) == ["free"]
    assert ("not_held", 1) in result.funnel


# --- mean reversion -------------------------------------------------------------------------------


def test_mean_reversion_buys_the_underdog_when_the_favourite_is_in_band():
    signals = run(
        "mean_reversion",
        [
            market("yes_fav", yes_price=0.80),
            market("no_fav", yes_price=0.10),  # NO favoured at 0.90 -> buy YES
            market("low_edge", yes_price=0.70),
            market("high_edge", yes_price=0.95),
            market("too_close", yes_price=0.65),
            market("too_sure", yes_price=0.96),
        ],
    )
    got = by_market(signals)
    assert set(got) == {"yes_fav", "no_fav", "low_edge", "high_edge"}
    assert (got["yes_fav"].side, got["yes_fav"].token_id) == ("NO", "yes_fav-no")
    assert got["yes_fav"].price_seen == pytest.approx(0.20)
    assert (got["no_fav"].side, got["no_fav"].price_seen) == ("YES", pytest.approx(0.10))
    assert got["yes_fav"].reason == "underdog NO at 0.200; favourite at 0.800 in band 0.70-0.95"
    assert got["high_edge"].confidence > got["low_edge"].confidence  # more lopsided, stronger signal


def test_mean_reversion_never_buys_a_dead_underdog():
    signals = run(
        "mean_reversion",
        [market("dead", yes_price=1.0, best_bid=None, best_ask=None),
         market("tie", yes_price=0.5)],
        favourite_min_price=0.5, favourite_max_price=1.0, max_spread=None,
    )
    assert signals.empty


# --- arbitrage ------------------------------------------------------------------------------------


def neg_risk_event(event_id, asks, count=None, **fields):
    """A negRisk event whose markets have YES asks `asks` (books 1 cent wide)."""
    count = len(asks) if count is None else count
    return [
        market(f"{event_id}-{i}", event_id=event_id, neg_risk=True, event_market_count=count,
               yes_price=round(ask - 0.005, 6), best_bid=round(ask - 0.01, 6), best_ask=ask, **fields)
        for i, ask in enumerate(asks)
    ]


def test_neg_risk_basket_buys_every_leg_with_equal_shares():
    signals = run("arbitrage", neg_risk_event("E", [0.30, 0.30, 0.35]), trade_amount=95.0)
    assert len(signals) == 3
    assert set(signals["group_id"]) == {"arb-event-E"}
    assert set(signals["side"]) == {"YES"} and list(signals["token_id"]) == ["E-0-yes", "E-1-yes", "E-2-yes"]
    assert list(signals["price_seen"]) == pytest.approx([0.30, 0.30, 0.35])
    assert signals["amount"].sum() == pytest.approx(95.0)
    shares = signals["amount"] / signals["price_seen"]
    assert shares.tolist() == pytest.approx([100.0] * 3)  # $95 buys 100 complete sets paying $100
    assert signals["reason"].iloc[0] == "negRisk basket of 3 YES legs: asks sum 0.950 < 0.990"
    assert signals["confidence"].nunique() == 1


def test_incomplete_or_thin_margin_or_held_baskets_are_not_bought():
    assert run("arbitrage", neg_risk_event("E", [0.30, 0.30, 0.35], count=4)).empty  # a leg is missing
    assert run("arbitrage", neg_risk_event("E", [0.33, 0.33, 0.335])).empty  # 0.995 > 1 - 0.01
    assert len(run("arbitrage", neg_risk_event("E", [0.33, 0.33, 0.335]), min_profit_margin=0.001)) == 3
    held = context(held_market_ids=frozenset({"E-1"}))
    assert run("arbitrage", neg_risk_event("E", [0.30, 0.30, 0.35]), ctx=held).empty
    refusing = neg_risk_event("E", [0.30, 0.30, 0.35])
    refusing[2]["accepting_orders"] = False  # the filters drop a leg: the basket is incomplete
    assert run("arbitrage", refusing).empty
    # A price a leg cannot be bought at spoils the basket.
    zero_leg = neg_risk_event("E", [0.30, 0.30, 0.35])
    zero_leg[2].update(yes_price=0.0, best_ask=None, best_bid=None)
    assert run("arbitrage", zero_leg, slippage_bps=0).empty


def test_an_edge_too_wide_to_be_real_is_skipped_unless_allowed():
    missing_leg_look = neg_risk_event("E", [0.30, 0.30])  # sums to 0.60
    assert run("arbitrage", missing_leg_look).empty
    assert len(run("arbitrage", missing_leg_look, max_profit_margin=None)) == 2


def test_binary_pair_buys_yes_and_no_when_their_asks_sum_below_one():
    no_book = market("M", yes_price=0.45, no_price=0.50, best_bid=None, best_ask=None)
    crossed = market("X", yes_price=0.50, best_bid=0.55, best_ask=0.47)  # NO ask = 1 - 0.55 = 0.45
    fair = market("F", yes_price=0.50, best_bid=0.49, best_ask=0.51)
    signals = run("arbitrage", [no_book, crossed, fair], slippage_bps=0)
    groups = signals.groupby("group_id")
    assert set(groups.groups) == {"arb-market-M", "arb-market-X"}
    pair = signals[signals["group_id"] == "arb-market-X"]
    assert list(pair["side"]) == ["YES", "NO"] and list(pair["token_id"]) == ["X-yes", "X-no"]
    assert list(pair["price_seen"]) == pytest.approx([0.47, 0.45])
    shares = pair["amount"] / pair["price_seen"]
    assert shares.iloc[0] == pytest.approx(shares.iloc[1])
    assert pair["amount"].sum() == pytest.approx(100.0)
    # The wider edge (0.08 vs 0.05) ranks first.
    assert signals["group_id"].iloc[0] == "arb-market-X"
    # Slippage on the fallback price eats the no-book edge: 0.45 + 0.50 + 2 * 0.03 = 1.01.
    assert "arb-market-M" not in set(run("arbitrage", [no_book], slippage_bps=300)["group_id"])


def test_fees_count_against_the_edge():
    rows = neg_risk_event("E", [0.32, 0.32, 0.34])  # 0.98 before fees
    assert len(run("arbitrage", rows)) == 3
    # fee per share 0.05 * p * (1 - p) adds about 0.033: the set costs more than 0.99.
    assert run("arbitrage", rows, fee_rate=0.05).empty


def test_each_markets_own_fee_schedule_counts_against_the_edge():
    rows = neg_risk_event("E", [0.32, 0.32, 0.34])  # 0.98 before fees
    for row in rows:
        row.update(fees_enabled=True, fee_rate=0.05, fee_exponent=1.0)
    # 0.05 * 0.32 * 0.68 = 0.01088 twice + 0.05 * 0.34 * 0.66 = 0.01122: 1.01298 > 0.99
    assert run("arbitrage", rows).empty
    # Exponent 2 at 0.25: 0.25 * (0.2176 ** 2) = 0.01183744 twice + 0.25 * 0.2244 ** 2 = 0.01258884:
    # 1.01626372 > 0.99
    for row in rows:
        row.update(fee_rate=0.25, fee_exponent=2.0)
    assert run("arbitrage", rows).empty
    for row in rows:
        row.update(fees_enabled=False)  # a fee-free market charges nothing whatever rate it lists
    assert len(run("arbitrage", rows)) == 3
    assert len(run("arbitrage", rows, fee_rate=0.0)) == 3  # the portfolio's override wins
    assert run("arbitrage", rows, fee_rate=0.05).empty


def test_augmented_neg_risk_events_are_never_a_complete_basket():
    # Listed YES asks sum to 0.95: an edge only if the list were every outcome. In an augmented
    # event the placeholders and "Other" make it no full set.
    flagged = neg_risk_event("A", [0.30, 0.30, 0.35], neg_risk_augmented=True)
    assert run("arbitrage", flagged).empty
    named = neg_risk_event("B", [0.30, 0.30, 0.35])
    for row, title in zip(named, ["Alice", "Bob", "Other"]):
        row["group_item_title"] = title
    assert run("arbitrage", named).empty
    placeholder = neg_risk_event("C", [0.30, 0.30, 0.35])
    placeholder[2]["question"] = "Will Person C win the election?"
    assert run("arbitrage", placeholder).empty
    # The same prices with named outcomes only are a basket.
    plain = neg_risk_event("D", [0.30, 0.30, 0.35])
    for row, title in zip(plain, ["Alice", "Bob", "Carol"]):
        row["group_item_title"] = title
    assert len(run("arbitrage", plain)) == 3
    # A placeholder market is not traded as a binary pair either.
    other = market("O", yes_price=0.50, best_bid=0.55, best_ask=0.47, group_item_title="Other")
    assert run("arbitrage", [other], slippage_bps=0).empty


def test_max_signals_keeps_whole_baskets():
    rows = neg_risk_event("A", [0.30, 0.30, 0.35]) + neg_risk_event("B", [0.30, 0.30, 0.30])
    signals = run("arbitrage", rows, max_signals_per_cycle=1)
    assert list(signals["group_id"]) == ["arb-event-B"] * 3  # the 10-cent edge beats the 5-cent one
    assert len(run("arbitrage", rows, max_signals_per_cycle=2)) == 6


# --- hybrid ---------------------------------------------------------------------------------------


def test_hybrid_scales_each_component_by_its_weight():
    rows = [market("trend", yes_price=0.60), market("lopsided", yes_price=0.92)]
    only_momentum = run("hybrid", rows, momentum_weight=1.0, mean_reversion_weight=0, arbitrage_weight=0)
    assert list(only_momentum["market_id"]) == ["trend"] and list(only_momentum["amount"]) == [100.0]
    signals = run("hybrid", rows)  # default weights 0.5 / 0.25 / 0.25
    got = by_market(signals)
    assert (got["trend"].side, got["trend"].amount) == ("YES", 50.0)
    assert (got["lopsided"].side, got["lopsided"].amount) == ("NO", 25.0)
    assert got["trend"].reason.startswith("momentum x0.5: favourite YES")
    assert got["lopsided"].reason.startswith("mean_reversion x0.25: underdog NO")


def test_hybrid_conflicts_go_to_the_heavier_weighted_signal():
    rows = [market("both", yes_price=0.80)]  # momentum buys YES, mean reversion buys NO
    favour_momentum = run("hybrid", rows, momentum_weight=0.8, mean_reversion_weight=0.2)
    assert list(favour_momentum["side"]) == ["YES"] and list(favour_momentum["amount"]) == [80.0]
    favour_reversion = run("hybrid", rows, momentum_weight=0.2, mean_reversion_weight=0.8)
    assert list(favour_reversion["side"]) == ["NO"] and list(favour_reversion["amount"]) == [80.0]


def test_hybrid_baskets_win_their_markets_and_component_keys_are_prefixed():
    rows = neg_risk_event("E", [0.24, 0.70]) + [market("solo", yes_price=0.60)]
    signals = run("hybrid", rows, max_spread=None)
    basket = signals[signals["group_id"] == "arb-event-E"]
    assert list(basket["market_id"]) == ["E-0", "E-1"]
    assert basket["amount"].sum() == pytest.approx(25.0)  # arbitrage weight 0.25 of the $100 stake
    assert signals[signals["market_id"] == "E-1"]["group_id"].notna().all()  # no directional buy on a leg
    assert by_market(signals)["solo"].amount == 50.0
    narrower = run("hybrid", rows, max_spread=None, momentum_favourite_min_price=0.65)
    assert "solo" not in set(narrower["market_id"])
    assert get_strategy("hybrid").allows_multiple_positions_per_market
