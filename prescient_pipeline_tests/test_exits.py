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


def test_stop_loss_compares_the_mark_with_the_entry_mark():
    later = OPENED + timedelta(hours=1)
    # Bought at the ask 0.40 while the displayed price was 0.38: the entry mark.
    # 0.33 / 0.38 - 1 = -13.2%: hold.
    assert exit_decision(position(), D("0.33"), later, RULES, entry_mark=D("0.38")) is None
    # 0.323 / 0.38 - 1 = -15%: stop.
    decision = exit_decision(position(), D("0.323"), later, RULES, entry_mark=D("0.38"))
    assert (decision.reason, decision.mark, decision.move) == ("stop_loss", D("0.323"), D("-0.15"))

    fill = sell(position().shares, D("0.32"), D("0.02"))
    # sold at the bid 0.32: fee = 250 * 0.02 * 0.32 * 0.68 = 1.088; proceeds = 80 - 1.088 = 78.912
    assert (fill.fee, fill.proceeds) == (D("1.088"), D("78.912"))
    assert close_position(position(), fill.proceeds) == D("-21.088")


def test_a_buy_at_the_ask_in_an_unchanged_market_does_not_stop_out():
    # The seed's rule judged the position at the bid against its cost: a buy at the ask 0.40
    # with the bid at 0.30 was "down" (250 * 0.30 - 100) / 100 = -25% the moment it was made,
    # a stop loss at 15% fired on the next price update from the spread alone. The market has
    # not moved: the displayed price (mid 0.35) is still the entry mark.
    five_minutes = OPENED + timedelta(minutes=5)
    assert exit_decision(position(), D("0.35"), five_minutes, RULES, entry_mark=D("0.35")) is None


def test_take_profit_at_the_threshold():
    later = OPENED + timedelta(hours=1)
    # entry mark 0.40: 0.479 / 0.40 - 1 = +19.75%: hold; 0.48 / 0.40 - 1 = +20%: take profit
    assert exit_decision(position(), D("0.479"), later, RULES, entry_mark=D("0.40")) is None
    decision = exit_decision(position(), D("0.48"), later, RULES, entry_mark=D("0.40"))
    assert (decision.reason, decision.move) == ("take_profit", D("0.2"))


def test_without_an_entry_mark_the_average_fill_price_stands_in():
    # Positions opened before entry marks were kept: avg price 0.40; 0.34 / 0.40 - 1 = -15%.
    assert exit_decision(position(), D("0.34"), OPENED, RULES).reason == "stop_loss"
    assert exit_decision(position(), D("0.341"), OPENED, RULES) is None


def test_max_holding_time():
    bid = D("0.40")  # flat: no price rule applies
    assert exit_decision(position(), bid, OPENED + timedelta(hours=47, minutes=59), RULES) is None
    assert exit_decision(position(), bid, OPENED + timedelta(hours=48), RULES).reason == "max_holding_time"


def test_stop_loss_wins_over_holding_time():
    assert exit_decision(position(), D("0.10"), OPENED + timedelta(days=9), RULES).reason == "stop_loss"


def test_no_mark_no_exit():
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
