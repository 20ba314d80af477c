from dataclasses import dataclass
from decimal import Decimal as D

import pytest

from prescient_pipeline.domain.fills import (
    BuyFill,
    buy,
    buy_fill_price,
    sell,
    sell_fill_price,
    taker_fee,
)


def test_buy_without_fee_gets_amount_over_price_shares():
    # $100 / 0.40 = 250 shares; nothing left for a fee.
    assert buy(100, D("0.40"), 0) == BuyFill(shares=D("250"), price=D("0.4"), fee=D("0"), cost=D("100"))


def test_buy_with_fee_solves_for_shares_that_the_amount_covers_with_their_fee():
    fill = buy(D("100"), D("0.40"), D("0.02"))
    # fee per share = 0.02 * 0.4 * 0.6 = 0.0048, so each share costs 0.4048 all in:
    # shares = 100 / 0.4048 = 247.035573122529... -> 247.03557312 (rounded down to 8 dp)
    assert fill.shares == D("247.03557312")
    # fee = 100 - 247.03557312 * 0.4 = 100 - 98.814229248 = 1.185770752 -> 1.185771
    assert fill.fee == D("1.185771")
    assert fill.cost == D("100")  # cash falls by exactly the amount
    assert fill.price == D("0.4")
    # The fee is the taker fee on the shares bought, to the cent.
    assert abs(fill.fee - taker_fee(fill.shares, D("0.4"), D("0.02"))) < D("0.000002")


def test_taker_fee_is_rate_times_p_times_one_minus_p_per_share():
    # 250 * 0.02 * 0.4 * 0.6 = 250 * 0.0048 = 1.2
    assert taker_fee(250, D("0.4"), D("0.02")) == D("1.2")
    # Symmetric in p and 1 - p; zero at a zero rate.
    assert taker_fee(100, D("0.3"), D("0.05")) == taker_fee(100, D("0.7"), D("0.05")) == D("1.05")
    assert taker_fee(100, D("0.3"), 0) == 0


def test_sell_proceeds_are_gross_minus_fee():
    fill = sell(D("250"), D("0.5"), D("0.02"))
    # gross = 250 * 0.5 = 125; fee = 250 * 0.02 * 0.5 * 0.5 = 1.25; proceeds = 123.75
    assert (fill.gross, fill.fee, fill.proceeds) == (D("125"), D("1.25"), D("123.75"))
    assert sell(D("250"), D("0.5")).proceeds == D("125")


def test_fee_free_buys_never_credit_more_than_paid_for():
    for amount in ("1", "7.31", "100", "2500.5"):
        for price in ("0.01", "0.07", "0.3", "0.333", "0.7", "0.99"):
            fill = buy(D(amount), D(price), 0)
            assert fill.fee == 0
            assert fill.shares * fill.price <= D(amount)
            # One more share quantum would overspend.
            assert (fill.shares + D("0.00000001")) * fill.price > D(amount)


@pytest.mark.parametrize("price", ["0", "1", "1.2", "-0.1"])
def test_buy_refuses_prices_outside_zero_one(price):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        buy(100, D(price), 0)


def test_buy_and_sell_refuse_nonsense():
    with pytest.raises(ValueError, match="positive"):
        buy(0, D("0.5"))
    with pytest.raises(ValueError, match="negative"):
        buy(10, D("0.5"), D("-0.01"))
    with pytest.raises(ValueError, match="positive"):
        sell(0, D("0.5"))
    with pytest.raises(ValueError, match="between 0 and 1"):
        sell(10, D("1.01"))


QUOTE = {"yes_price": 0.70, "no_price": 0.30, "best_bid": 0.69, "best_ask": 0.71}


def test_fill_prices_take_the_book():
    assert buy_fill_price("YES", QUOTE) == D("0.71")  # YES ask
    assert buy_fill_price("NO", QUOTE) == D("0.31")  # 1 - YES bid 0.69
    assert sell_fill_price("YES", QUOTE) == D("0.69")  # YES bid
    assert sell_fill_price("NO", QUOTE) == D("0.29")  # 1 - YES ask 0.71


def test_fill_prices_fall_back_to_outcome_price_with_slippage():
    no_book = {"yes_price": D("0.40"), "no_price": D("0.60"), "best_bid": None, "best_ask": None}
    # 0.40 + 50 bps = 0.405; 0.60 - 50 bps = 0.595
    assert buy_fill_price("YES", no_book, slippage_bps=50) == D("0.405")
    assert sell_fill_price("NO", no_book, slippage_bps=50) == D("0.595")


def test_fill_prices_read_objects_and_report_unknown_as_none():
    @dataclass
    class State:
        yes_price: object
        no_price: object
        best_bid: object
        best_ask: object

    assert buy_fill_price("YES", State(0.4, 0.6, None, 0.42)) == D("0.42")
    assert buy_fill_price("YES", State(None, None, None, None)) is None
    assert sell_fill_price("YES", {}) is None
    # Nothing to buy at 1 (nor at 0.9999 + slippage, clipped to 1); a zero bid is no buyer.
    assert buy_fill_price("YES", {"best_ask": 1.0}) is None
    assert buy_fill_price("YES", {"yes_price": 0.9999}, slippage_bps=5) is None
    assert sell_fill_price("YES", {"best_bid": 0.0}) is None
