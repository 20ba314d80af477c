from decimal import Decimal as D

from prescient_pipeline.domain.risk import Buy, PortfolioState, PositionState, check_buy, check_group


def portfolio(**overrides) -> PortfolioState:
    fields = dict(
        portfolio_id=1,
        status="active",
        cash=D("1000"),
        initial_balance=D("1000"),
        max_position_size=D("200"),
        max_total_exposure=D("500"),
        max_positions=3,
    )
    return PortfolioState(**{**fields, **overrides})


def held(market, cost, side="YES") -> PositionState:
    return PositionState(market, side, D(cost) * 2, D(cost), D("0.5"))


def test_a_buy_within_every_limit_passes():
    assert check_buy(portfolio(), [held("a", 100)], Buy("b", "YES", D("100"))) is None


def test_inactive_portfolios_do_not_trade():
    assert check_buy(portfolio(status="paused"), [], Buy("b", "YES", D("10"))) == "portfolio paused"
    assert check_buy(portfolio(status="archived"), [], Buy("b", "YES", D("10"))) == "portfolio archived"


def test_cash_limit():
    assert check_buy(portfolio(cash=D("50.5")), [], Buy("b", "YES", D("100"))) == (
        "insufficient cash: need 100, have 50.5"
    )
    # Exactly the cash is fine.
    assert check_buy(portfolio(cash=D("100")), [], Buy("b", "YES", D("100"))) is None


def test_position_size_limit():
    assert check_buy(portfolio(), [], Buy("b", "YES", D("200.01"))) == (
        "amount 200.01 exceeds max_position_size 200"
    )
    assert check_buy(portfolio(max_position_size=None), [], Buy("b", "YES", D("400"))) is None


def test_total_exposure_counts_open_cost_basis_plus_the_new_amount():
    positions = [held("a", 200), held("b", 150)]
    # 200 + 150 + 150.01 = 500.01 > 500
    assert check_buy(portfolio(), positions, Buy("c", "YES", D("150.01"))) == (
        "exposure 500.01 would exceed max_total_exposure 500"
    )
    # 200 + 150 + 150 = 500: at the limit is allowed
    assert check_buy(portfolio(), positions, Buy("c", "YES", D("150"))) is None


def test_max_positions_counts_the_new_one():
    positions = [held("a", 10), held("b", 10), held("c", 10)]
    assert check_buy(portfolio(), positions, Buy("d", "YES", D("10"))) == "already at max_positions 3"
    assert check_buy(portfolio(), positions[:2], Buy("d", "YES", D("10"))) is None


def test_one_open_position_per_market_unless_the_strategy_allows_one_per_side():
    positions = [held("a", 10, side="YES")]
    assert check_buy(portfolio(), positions, Buy("a", "NO", D("10"))) == "already holds market a"
    per_side = {"allows_multiple_positions_per_market": True}
    assert check_buy(portfolio(), positions, Buy("a", "NO", D("10")), **per_side) is None
    assert check_buy(portfolio(), positions, Buy("a", "YES", D("10")), **per_side) == (
        "already holds market a side YES"
    )


def test_market_exposure_cap_across_portfolios_is_off_by_default():
    signal = Buy("a", "YES", D("100"))
    assert check_buy(portfolio(), [], signal, all_portfolios_market_exposure=D("1000000")) is None
    reason = check_buy(
        portfolio(), [], signal, market_exposure_cap=D("1000"), all_portfolios_market_exposure=D("950")
    )
    assert reason == "all portfolios' exposure to market a would be 1050, above the cap 1000"


def test_checks_run_in_order_and_report_the_first_rule_broken():
    broke = portfolio(status="paused", cash=D("0"))
    assert check_buy(broke, [], Buy("a", "YES", D("999"))) == "portfolio paused"
    # Cash comes before the position size.
    assert check_buy(portfolio(cash=D("10")), [], Buy("a", "YES", D("999"))).startswith("insufficient cash")
    # Position size before exposure.
    reason = check_buy(portfolio(), [held("x", 450)], Buy("a", "YES", D("300")))
    assert reason.startswith("amount 300 exceeds")
    # Exposure before the position count and the one-per-market rule.
    full = [held("a", 200), held("b", 200), held("c", 100)]
    assert check_buy(portfolio(), full, Buy("a", "YES", D("1"))).startswith("exposure 501")


def test_a_group_is_checked_cumulatively():
    legs = [Buy("a", "YES", D("100")), Buy("b", "YES", D("100")), Buy("c", "YES", D("100"))]
    assert check_group(portfolio(), [], legs) is None
    # Each leg alone fits in 250 of cash; together the third does not (250 - 200 = 50 < 100).
    assert check_group(portfolio(cash=D("250")), [], legs) == (
        "leg 3/3 (c YES): insufficient cash: need 100, have 50"
    )
    # 300 held + 100 + 100 = 500 fits; a third leg would make 600 > 500.
    assert check_group(portfolio(max_positions=10), [held("x", 200), held("y", 100)], legs) == (
        "leg 3/3 (c YES): exposure 600 would exceed max_total_exposure 500"
    )
    # 1 held + 3 legs = 4 > 3 positions
    assert check_group(portfolio(), [held("x", 10)], legs) == "leg 3/3 (c YES): already at max_positions 3"
    assert check_group(portfolio(), [], []) == "empty signal group"


def test_a_binary_arbitrage_group_needs_one_position_per_side():
    legs = [Buy("a", "YES", D("50")), Buy("a", "NO", D("50"))]
    assert check_group(portfolio(), [], legs) == "leg 2/2 (a NO): already holds market a"
    assert check_group(portfolio(), [], legs, allows_multiple_positions_per_market=True) is None


def test_a_group_accumulates_market_exposure_across_its_legs():
    legs = [Buy("a", "YES", D("50")), Buy("a", "NO", D("50"))]
    reason = check_group(
        portfolio(),
        [],
        legs,
        allows_multiple_positions_per_market=True,
        market_exposure_cap=D("1000"),
        all_portfolios_market_exposure={"a": D("920")},
    )
    # 920 + 50 = 970 passes; 970 + 50 = 1020 does not.
    assert reason == "leg 2/2 (a NO): all portfolios' exposure to market a would be 1020, above the cap 1000"


def test_states_build_from_table_rows():
    row = {
        "portfolio_id": 9,
        "name": "x",
        "status": "active",
        "current_balance": D("123.450000"),
        "initial_balance": D("1000.000000"),
        "max_position_size": None,
        "max_total_exposure": D("800"),
        "max_positions": 20,
    }
    state = PortfolioState.from_row(row)
    assert (state.portfolio_id, state.cash, state.max_position_size, state.max_total_exposure) == (
        9,
        D("123.45"),
        None,
        D("800"),
    )
    position = PositionState.from_row(
        {
            "position_id": 3,
            "market_id": "m",
            "side": "NO",
            "shares": D("10.00000000"),
            "avg_price": D("0.30000000"),
            "cost_basis": D("3.000000"),
            "entry_fee": D("0"),
            "current_price": None,
            "opened_at": None,
            "status": "open",
        }
    )
    assert (position.position_id, position.shares, position.cost_basis) == (3, D("10"), D("3"))
