"""The Prescient OS recomputation rules, without a database."""

from datetime import datetime
from decimal import Decimal

import pytest

from prescient_pipeline.domain.prescient_os import ImportProblem, OldPortfolio, OldPosition, make_lot, map_config, plan_portfolio

AT = datetime(2026, 1, 10, 10, 0)


def position(**kw):
    base = dict(ref=1, trade_id="t", market_id="m", question=None, action="buy_yes", amount=Decimal("100"),
                entry_price=Decimal("0.25"), entry_at=AT, status="open")
    return OldPosition(**{**base, **kw})


def test_closed_without_exit_price_uses_the_price_its_realized_pnl_implies():
    notes = []
    # Their realized (exit - 0.25) * 100 = 15 -> exit 0.40. Here: 400 shares * 0.40 = 160, realized 60.
    lot = make_lot(position(status="closed", realized_pnl=Decimal("15"), exit_at=AT), notes)
    assert (lot.shares, lot.mark, lot.proceeds, lot.realized, lot.close_action) == (
        Decimal("400"), Decimal("0.4"), Decimal("160"), Decimal("60"), "sell")
    assert "realized P&L" in notes[0]


def test_a_loss_settled_at_zero_is_a_settlement():
    lot = make_lot(position(status="closed", exit_price=Decimal("0"), exit_at=AT), [])
    assert (lot.close_action, lot.proceeds, lot.realized) == ("settle", Decimal("0"), Decimal("-100"))


@pytest.mark.parametrize("bad", [dict(action="sell"), dict(amount=Decimal("0")), dict(entry_price=Decimal("0"))])
def test_rows_that_are_not_a_buy_stop_the_import(bad):
    with pytest.raises(ImportProblem):
        make_lot(position(**bad), [])


def test_config_keys_renamed_dropped_or_refused():
    config, limits, notes = map_config("momentum", {"min_liquidity": 5, "risk_per_trade": 0.02,
                                                    "trade_amount": -1, "max_position_size": 50})
    assert config == {"market_min_liquidity": 5} and limits == {"max_position_size": 50}
    assert len(notes) == 3  # renamed, no counterpart, invalid value
    with pytest.raises(ImportProblem):  # valid alone, not together
        map_config("momentum", {"market_min_conviction": 0.6, "market_max_conviction": 0.5})


def test_spending_more_than_the_balance_stops_the_import():
    old = OldPortfolio(ref=1, name="p", description=None, strategy_type="momentum", strategy_config={},
                       initial_balance=Decimal("50"), current_balance=Decimal("0"), total_profit_loss=Decimal("0"),
                       status="active")
    with pytest.raises(ImportProblem, match="50"):
        plan_portfolio(old, [position()], [])


def test_limits_from_config_are_checked():
    old = OldPortfolio(ref=1, name="p", description=None, strategy_type="momentum",
                       strategy_config={"max_positions": 7.5, "max_position_size": "250"},
                       initial_balance=Decimal("500"), current_balance=Decimal("500"), total_profit_loss=Decimal("0"),
                       status="active")
    plan = plan_portfolio(old, [], [])
    assert plan.limits == {"max_positions": None, "max_position_size": Decimal("250"), "max_total_exposure": None}
    assert any("7.5" in n for n in plan.notes)
