from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

import pytest

from prescient_pipeline.domain.accounting import close_position, open_position
from prescient_pipeline.domain.exits import ExitRules, exit_decision
from prescient_pipeline.domain.fills import buy, sell

OPENED = datetime(2025, 11, 1, 12, 0, tzinfo=timezone.utc)
RULES = {"stop_loss_percentage": 0.15, "take_profit_percentage": 0.20, "max_holding_hours": 48}


def position():
    # $100 of YES at 0.40 without fee: 250 shares, cost basis 100.
    return open_position("m1", "YES", buy(100, D("0.40"), 0), opened_at=OPENED)


def test_stop_loss_at_the_threshold_then_sold_at_the_bid_with_fee():
    later = OPENED + timedelta(hours=1)
    # 250 * 0.35 = 87.5 -> -12.5%: hold
    assert exit_decision(position(), D("0.35"), later, RULES) is None
    # 250 * 0.34 = 85 -> (85 - 100) / 100 = -15% <= -15%: stop
    decision = exit_decision(position(), D("0.34"), later, RULES)
    assert (decision.reason, decision.market_value, decision.pnl_pct) == ("stop_loss", D("85"), D("-0.15"))

    fill = sell(position().shares, decision.bid_price, D("0.02"))
    # fee = 250 * 0.02 * 0.34 * 0.66 = 250 * 0.004488 = 1.122; proceeds = 85 - 1.122 = 83.878
    assert (fill.fee, fill.proceeds) == (D("1.122"), D("83.878"))
    assert close_position(position(), fill.proceeds) == D("-16.122")


def test_take_profit_at_the_threshold():
    later = OPENED + timedelta(hours=1)
    # 250 * 0.479 = 119.75 -> +19.75%: hold
    assert exit_decision(position(), D("0.479"), later, RULES) is None
    # 250 * 0.48 = 120 -> +20%: take profit
    decision = exit_decision(position(), D("0.48"), later, RULES)
    assert (decision.reason, decision.pnl_pct) == ("take_profit", D("0.2"))
    fill = sell(position().shares, decision.bid_price, D("0.02"))
    # fee = 250 * 0.02 * 0.48 * 0.52 = 1.248; proceeds = 120 - 1.248 = 118.752; realized 18.752
    assert close_position(position(), fill.proceeds) == D("18.752")


def test_the_entry_fee_counts_against_the_position():
    with_fee = open_position("m1", "YES", buy(100, D("0.40"), D("0.02")), opened_at=OPENED)
    # 247.03557312 * 0.48 = 118.5770750976 -> 118.577075: +18.58%, short of 20%
    assert exit_decision(with_fee, D("0.48"), OPENED, RULES) is None
    # 247.03557312 * 0.486 = 120.0592885363 -> 120.059289: +20.06%
    assert exit_decision(with_fee, D("0.486"), OPENED, RULES).reason == "take_profit"


def test_max_holding_time():
    bid = D("0.40")  # flat: no price rule applies
    assert exit_decision(position(), bid, OPENED + timedelta(hours=47, minutes=59), RULES) is None
    assert exit_decision(position(), bid, OPENED + timedelta(hours=48), RULES).reason == "max_holding_time"


def test_stop_loss_wins_over_holding_time():
    assert exit_decision(position(), D("0.10"), OPENED + timedelta(days=9), RULES).reason == "stop_loss"


def test_no_bid_no_exit():
    assert exit_decision(position(), None, OPENED + timedelta(days=9), RULES) is None


def test_missing_thresholds_disable_their_rules():
    far_later = OPENED + timedelta(days=365)
    assert exit_decision(position(), D("0.01"), far_later, {}) is None
    assert exit_decision(position(), D("0.99"), far_later, {"stop_loss_percentage": None}) is None
    only_time = ExitRules(max_holding_hours=1)
    assert exit_decision(position(), D("0.01"), far_later, only_time).reason == "max_holding_time"
    # Other strategy settings in the config are ignored.
    config = {"trade_amount": 10, "stop_loss_percentage": 0.5}
    assert exit_decision(position(), D("0.2"), OPENED, config).reason == "stop_loss"


@pytest.mark.parametrize(
    "config",
    [
        {"stop_loss_percentage": 0},
        {"stop_loss_percentage": 15},
        {"take_profit_percentage": -0.1},
        {"max_holding_hours": 0},
    ],
)
def test_nonsense_thresholds_are_refused(config):
    with pytest.raises(ValueError):
        ExitRules.from_config(config)
