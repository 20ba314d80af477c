"""The execution model in the domain, golden numbers by hand: book walks, partial fills,
minimum order size, ticks, and Polymarket's taker fee under its schedules."""

from decimal import Decimal as D

import pytest

from prescient_pipeline.domain.execution import (
    DepthWalk,
    ExecutionSettings,
    FillRejected,
    HistoryPrice,
    NoFee,
    OutcomeBook,
    PolymarketTakerFee,
    TopOfBook,
    market_fee_model,
)
from prescient_pipeline.domain.fills import buy, sell

# A YES book: asks 0.50 x 100, 0.52 x 100, 0.55 x 200; bids 0.48 x 100, 0.47 x 50.
DEEP = {"best_bid": "0.48", "best_ask": "0.50", "yes_price": "0.49", "no_price": "0.51",
        "asks": [["0.50", "100"], ["0.52", "100"], ["0.55", "200"]], "bids": [["0.48", "100"], ["0.47", "50"]]}


def settings(**config) -> ExecutionSettings:
    return ExecutionSettings.from_config(config)


def test_a_buy_walks_three_ask_levels():
    fill = settings(max_slippage_bps=500).buy("YES", DEEP, 150, price_seen="0.50")
    # Limit 0.50 + 5% = 0.55, no fee. 100 @ 0.50 = 50 and 100 @ 0.52 = 52 leave 48:
    # 48 / 0.55 = 87.2727272727... -> 87.27272727 shares at the third level.
    assert fill.evidence == "depth"
    assert fill.levels == ((D("0.5"), D(100)), (D("0.52"), D(100)), (D("0.55"), D("87.27272727")))
    # notional 50 + 52 + 87.27272727 * 0.55 (= 47.9999999985) = 149.9999999985 -> 150.000000
    assert (fill.shares, fill.notional, fill.fee, fill.cost) == (D("287.27272727"), D(150), D(0), D(150))
    # average 150 / 287.27272727 = 0.52215189...; mid (0.48 + 0.50) / 2 = 0.49;
    # slippage 150 - 287.27272727 * 0.49 (= 140.7636363623 -> 140.763636) = 9.236364
    assert (fill.price, fill.mid, fill.slippage) == (D("0.52215190"), D("0.49"), D("9.236364"))
    assert not fill.partial and fill.requested == D(150)


def test_a_thin_book_fills_partially_and_cancels_the_rest():
    thin = {"best_bid": "0.38", "best_ask": "0.40",
            "asks": [["0.40", "50"], ["0.41", "30"], ["0.60", "1000"]], "bids": [["0.38", "10"]]}
    fill = settings(max_slippage_bps=200).buy("YES", thin, 100, price_seen="0.40")
    # Limit 0.40 + 2% = 0.42: 50 @ 0.40 = 20 and 30 @ 0.41 = 12.30; 0.60 is beyond the limit.
    # 80 shares for 32.30 of the 100 asked; the other 67.70 is cancelled.
    assert fill.levels == ((D("0.4"), D(50)), (D("0.41"), D(30)))
    assert (fill.shares, fill.cost, fill.requested, fill.partial) == (D(80), D("32.3"), D(100), True)
    # average 32.30 / 80 = 0.40375
    assert fill.price == D("0.40375")


def test_a_sale_walks_the_bids():
    book = {"best_bid": "0.45", "best_ask": "0.47",
            "bids": [["0.45", "40"], ["0.44", "60"], ["0.40", "500"]], "asks": [["0.47", "10"]]}
    fill = settings().sell("YES", book, 120)
    # 40 @ 0.45 = 18, 60 @ 0.44 = 26.40, 20 @ 0.40 = 8: 52.40 for 120 shares.
    assert fill.levels == ((D("0.45"), D(40)), (D("0.44"), D(60)), (D("0.4"), D(20)))
    assert (fill.gross, fill.proceeds, fill.price) == (D("52.4"), D("52.4"), D("0.43666667"))
    # mid 0.46: 120 * 0.46 = 55.20, given up 55.20 - 52.40 = 2.80
    assert fill.slippage == D("2.8")


def test_no_mirrors_the_yes_book():
    book = OutcomeBook.from_state("NO", DEEP)
    # NO asks = 1 - YES bids, NO bids = 1 - YES asks, sizes kept.
    assert book.asks == ((D("0.52"), D(100)), (D("0.53"), D(50)))
    assert book.bids[0] == (D("0.5"), D(100)) and book.best_ask == D("0.52") and book.mid == D("0.51")
    fill = settings(max_slippage_bps=100).buy("NO", DEEP, 80, price_seen="0.52")
    # 100 @ 0.52 = 52, then the 50 the 0.53 level holds (26.50): the book ends, 78.50 of 80 spent.
    assert fill.levels == ((D("0.52"), D(100)), (D("0.53"), D(50)))
    assert (fill.shares, fill.cost, fill.partial) == (D(150), D("78.5"), True)


def test_a_buy_below_the_minimum_order_size_is_rejected():
    market = dict(DEEP, min_order_size="5")
    # $2 at 0.50 buys 4 shares, under the market's minimum of 5.
    with pytest.raises(FillRejected, match=r"below minimum order size: 4 shares < 5"):
        settings().buy("YES", market, 2, price_seen="0.50")
    assert settings().buy("YES", market, "2.5", price_seen="0.50").shares == D(5)


def test_a_best_ask_above_the_limit_fills_nothing():
    with pytest.raises(FillRejected, match="best ask 0.5 above limit 0.45"):
        settings(max_slippage_bps=100).buy("YES", DEEP, 10, price_seen="0.44")


def test_depth_that_disagrees_with_the_top_is_not_used():
    stale = dict(DEEP, best_ask="0.51")  # levels from an older book: the top of book stands
    fill = settings().buy("YES", stale, 51, price_seen="0.51")
    assert (fill.evidence, fill.levels) == ("top_of_book", ((D("0.51"), D(100)),))


def test_history_fills_round_to_the_tick_against_the_trader():
    point = {"yes_price": "0.3951", "no_price": "0.6049", "tick_size": "0.01"}
    s = settings(slippage_bps=50)  # half-spread 0.005
    # buy 0.3951 + 0.005 = 0.4001 -> up to 0.41; sell 0.3951 - 0.005 = 0.3901 -> down to 0.39
    assert s.buy("YES", point, "4.1").levels == ((D("0.41"), D(10)),)
    assert s.sell("YES", point, 10).levels == ((D("0.39"), D(10)),)
    assert s.buy("YES", dict(point, tick_size="0.001"), "4.01").levels == ((D("0.401"), D(10)),)
    assert s.buy("YES", point, "4.1").evidence == "history"
    # Without a price seen the limit starts from the model's own price: a 3-cent half-spread
    # (0.40 + 0.03 = 0.43) is not refused by the 2-cent maximum slippage.
    assert settings(slippage_bps=300).buy("YES", {"yes_price": "0.40"}, "4.3").levels == ((D("0.43"), D(10)),)
    # A backtest replaying price points uses the history model even where a book is stored.
    assert ExecutionSettings.from_config({}, history_only=True).fill_model(
        OutcomeBook.from_state("YES", DEEP), "buy").evidence == "history"


def test_polymarket_fee_exponent_one():
    fee = PolymarketTakerFee("0.05", 1)
    # 25 shares @ 0.13: 25 * 0.05 * 0.13 * 0.87 = 0.141375 -> 0.1414 (4 dp, half up)
    assert fee.order_fee([(D("0.13"), D(25))]) == D("0.1414")
    # Through a fill: per share 0.50 + 0.05 * 0.25 = 0.5125, so 10.25 buys 20 shares,
    # notional 10, fee 20 * 0.0125 = 0.25.
    market = {"best_bid": "0.49", "best_ask": "0.50", "fees_enabled": True, "fee_rate": "0.05", "fee_exponent": "1"}
    fill = settings().buy("YES", market, "10.25", price_seen="0.50")
    assert (fill.shares, fill.notional, fill.fee, fill.cost) == (D(20), D(10), D("0.25"), D("10.25"))


def test_polymarket_fee_exponent_two():
    fee = PolymarketTakerFee("0.25", 2)
    # p = 0.5: 0.25 * (0.25) ** 2 = 0.015625 per share (1.5625%, the schedule's peak); 100 -> 1.5625
    assert fee.order_fee([(D("0.5"), D(100))]) == D("1.5625")
    # p = 0.3: 0.25 * 0.21 ** 2 = 0.011025 per share; 10 shares = 0.11025 -> 0.1103
    assert fee.order_fee([(D("0.3"), D(10))]) == D("0.1103")
    # Summed over the levels taken, rounded once: 0.015625 * 4 + 0.011025 * 2 = 0.08455 -> 0.0846
    assert fee.order_fee([(D("0.5"), D(4)), (D("0.3"), D(2))]) == D("0.0846")
    market = {"best_bid": "0.29", "best_ask": "0.30", "fees_enabled": True, "fee_rate": "0.25", "fee_exponent": "2"}
    assert isinstance(market_fee_model(market), PolymarketTakerFee)
    assert market_fee_model(market).exponent == 2


def test_fee_free_and_unknown_schedules():
    # A fee-free market charges 0 whatever rate it lists; unknown counts as fee-free.
    assert isinstance(market_fee_model({"fees_enabled": False, "fee_rate": "0.05"}), NoFee)
    assert isinstance(market_fee_model({}), NoFee)
    fill = settings().buy("YES", dict(DEEP, fees_enabled=False, fee_rate="0.05"), 50, price_seen="0.50")
    assert (fill.fee, fill.shares) == (D(0), D(100))
    # Enabled with no parameters: the conservative 0.05, exponent 1, flagged on the fill.
    fill = settings().buy("YES", {"best_bid": "0.49", "best_ask": "0.50", "fees_enabled": True}, "10.25")
    assert (fill.fee, fill.fee_flag) == (D("0.25"), "fee_parameters_unknown")


def test_a_portfolio_fee_override_wins_over_the_market():
    market = {"best_bid": "0.49", "best_ask": "0.50", "fees_enabled": True, "fee_rate": "0.05"}
    assert settings(fee_rate=0).buy("YES", market, 10).fee == 0
    # override 0.04, exponent 1: per share 0.5 + 0.01 = 0.51; 10.20 buys 20 shares, fee 0.20
    assert settings(fee_rate=0.04).buy("YES", market, "10.2").fee == D("0.2")


def test_fee_rounding_never_takes_a_buy_past_its_amount():
    # 100 at 0.50 with fee 0.04: 100 / 0.51 = 196.07843137 shares would cost 98.039216 + 1.9608
    # (rounded fee) = 100.000016; shares are given back until notional + fee <= 100.
    fill = buy(100, "0.5", "0.04")
    assert fill.cost <= D(100) and fill.cost > D("99.9999")
    for amount in ("1", "7.31", "100", "2500.5"):
        for price in ("0.01", "0.07", "0.3", "0.333", "0.7", "0.99"):
            for rate in ("0", "0.02", "0.072"):
                f = buy(D(amount), D(price), rate)
                assert f.cost <= D(amount)
                assert f.fee == PolymarketTakerFee(rate).order_fee(f.levels) if rate != "0" else f.fee == 0


def test_displayed_price_is_the_mid_or_the_last_trade_on_a_wide_spread():
    assert OutcomeBook.from_state("YES", {"best_bid": "0.46", "best_ask": "0.50", "last_trade_price": "0.7"}
                                  ).displayed_price == D("0.48")
    wide = {"best_bid": "0.30", "best_ask": "0.50", "last_trade_price": "0.45"}  # spread 0.20 > 0.10
    assert OutcomeBook.from_state("YES", wide).displayed_price == D("0.45")
    assert OutcomeBook.from_state("NO", wide).displayed_price == D("0.55")
    assert OutcomeBook.from_state("YES", {"yes_price": "0.61"}).displayed_price == D("0.61")


def test_sell_proceeds_are_gross_minus_fee():
    fill = sell(D("250"), D("0.5"), D("0.02"))
    # gross = 250 * 0.5 = 125; fee = 250 * 0.02 * 0.5 * 0.5 = 1.25; proceeds = 123.75
    assert (fill.gross, fill.fee, fill.proceeds) == (D("125"), D("1.25"), D("123.75"))


def test_nonsense_is_refused():
    with pytest.raises(ValueError):
        buy(0, "0.5")
    with pytest.raises(ValueError):
        buy(10, "1")
    with pytest.raises(ValueError):
        sell(0, "0.5")
    with pytest.raises(ValueError):
        PolymarketTakerFee("-0.1")
    with pytest.raises(FillRejected, match="no price to buy YES"):
        settings().buy("YES", {}, 10)
    with pytest.raises(FillRejected, match="no bid to sell YES"):
        settings().sell("YES", {"best_ask": "0.5"}, 10)
    assert isinstance(settings().fill_model(OutcomeBook.from_state("YES", {"best_ask": "0.5"}), "buy"), TopOfBook)
    assert isinstance(settings().fill_model(OutcomeBook.from_state("YES", DEEP), "sell"), DepthWalk)
    assert isinstance(settings().fill_model(OutcomeBook.from_state("YES", {"yes_price": 0.5}), "buy"), HistoryPrice)


def test_settings_read_stored_configs_as_documented():
    from prescient_pipeline.domain.strategies import get_strategy

    # A stored config from before the model: fee_rate 0.04 keeps its meaning (exponent 1).
    stored = ExecutionSettings.from_config(get_strategy("momentum").validate_config(
        {"fee_rate": 0.04, "slippage_bps": 50, "stop_loss_percentage": 0.2}))
    assert (stored.fee_override.rate, stored.fee_override.exponent) == (D("0.04"), 1)
    assert (stored.half_spread, stored.max_slippage, stored.exits.stop_loss_percentage) == (
        D("0.005"), D("0.02"), 0.2)
    # Defaults: each market's own schedule, a 2-cent limit, no exits.
    default = ExecutionSettings.from_config(get_strategy("momentum").validate_config({}))
    assert (default.fee_override, default.max_slippage, default.has_exits) == (None, D("0.02"), False)
    # No limit: every listed level may be taken; 100 + 100 + 200 shares for 50 + 52 + 110 = 212 of 1000.
    unlimited = ExecutionSettings.from_config({"max_slippage_bps": None})
    assert unlimited.buy("YES", DEEP, 1000, price_seen="0.50").shares == D(400)
