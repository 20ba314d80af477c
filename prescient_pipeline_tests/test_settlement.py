import json
from collections import Counter
from decimal import Decimal as D

import pytest

from prescient_pipeline.domain import settlement as s
from prescient_pipeline.domain.accounting import open_position
from prescient_pipeline.domain.fills import buy
from prescient_pipeline.domain.settlement import (
    MarketResolution,
    NotSettled,
    Settlement,
    payout_per_share,
    settle_position,
    settlement_for,
)


def closed(*prices, status="resolved"):
    return MarketResolution(closed=True, outcome_prices=list(prices), uma_resolution_status=status)


def yes_position():
    # $100 of YES at 0.40 without fee: 250 shares, cost basis 100.
    return open_position("m1", "YES", buy(100, D("0.40"), 0))


def test_a_winning_position_pays_one_dollar_a_share():
    settled = settlement_for(closed("1", "0"))
    assert settled == Settlement(s.YES_WON, D(1), D(0)) and settled.winner == "YES"
    # 250 shares * $1 = 250; realized = 250 - 100 = 150
    assert settle_position(yes_position(), settled) == (D("250"), D("150"))


def test_a_losing_position_pays_nothing():
    settled = settlement_for(closed("0", "1"))
    assert settled.winner == "NO"
    # 250 * $0 = 0; realized = 0 - 100 = -100
    assert settle_position(yes_position(), settled) == (D("0"), D("-100"))


def test_a_fifty_fifty_resolution_refunds_half_a_dollar_a_share():
    settled = settlement_for(closed("0.5", "0.5"))
    assert settled.kind == s.FIFTY_FIFTY and settled.winner is None
    # 250 * 0.50 = 125; realized = 125 - 100 = +25
    assert settle_position(yes_position(), settled) == (D("125"), D("25"))


def test_no_side_payouts_and_settlement_carries_no_fee():
    no = open_position("m1", "NO", buy(D("101.2"), D("0.40"), D("0.02")))
    # a share costs 0.40 + 0.02 * 0.4 * 0.6 = 0.4048: 250 shares for 101.2;
    # 250 * $1 = 250 (no fee on settlement); realized = 250 - 101.2 = 148.8
    assert settle_position(no, settlement_for(closed("0", "1"))) == (D("250"), D("148.8"))
    assert payout_per_share(settlement_for(closed("1", "0")), "NO") == 0
    with pytest.raises(ValueError):
        payout_per_share(settlement_for(closed("1", "0")), "MAYBE")


def test_settling_twice_gives_the_same_numbers():
    settled = settlement_for(closed("1", "0"))
    assert settle_position(yes_position(), settled) == settle_position(yes_position(), settled)


@pytest.mark.parametrize("prices", [["1.0", "0.0"], [1, 0], [1.0, 0.0], ["1.000", "0"], '["1", "0"]'])
def test_prices_compare_exactly_as_numbers(prices):
    assert settlement_for(MarketResolution(True, prices)).winner == "YES"


@pytest.mark.parametrize(
    "market, flag",
    [
        # The pre-settlement trap: open, priced at 0.9995, even with UMA saying resolved.
        (MarketResolution(False, ["0.9995", "0.0005"]), s.OPEN),
        (MarketResolution(False, ["1", "0"]), s.OPEN),
        (MarketResolution(None, ["1", "0"]), s.OPEN),
        (MarketResolution(False, ["0.9995", "0.0005"], "resolved"), s.RESOLVED_BUT_OPEN),
        (MarketResolution(False, ["0.9995", "0.0005"], "proposed"), s.RESOLUTION_PROPOSED),
        (MarketResolution(True, ["1", "0"], "proposed"), s.RESOLUTION_PROPOSED),
        (MarketResolution(True, ["1", "0"], "disputed"), s.RESOLUTION_DISPUTED),
        (closed("0", "0"), s.NO_WINNER),
        (closed("0.5843311669077693146635", "0.4156688330922306853364"), s.NOT_FINAL_PRICES),
        (closed("0.9995", "0.0005"), s.NOT_FINAL_PRICES),
        (closed("0.999", "0.001"), s.NOT_FINAL_PRICES),
        (MarketResolution(True, None), s.MISSING_PRICES),
        (MarketResolution(True, []), s.MISSING_PRICES),
        (MarketResolution(True, ""), s.MISSING_PRICES),
        (closed("1", "0", "0"), s.NOT_BINARY),
        (closed("1"), s.NOT_BINARY),
        (closed("yes", "no"), s.MALFORMED_PRICES),
        (closed("NaN", "1"), s.MALFORMED_PRICES),
    ],
)
def test_anything_else_is_not_settled_with_a_flag(market, flag):
    result = settlement_for(market)
    assert isinstance(result, NotSettled)
    assert result.flag == flag


def test_mappings_work_as_markets():
    row = {"closed": True, "outcome_prices": ["0", "1"], "uma_resolution_status": "resolved"}
    assert settlement_for(row).winner == "NO"
    assert settlement_for({"closed": False}).flag == s.OPEN


# --- recorded Gamma markets -----------------------------------------------------------------


def from_gamma(market: dict) -> MarketResolution:
    """Gamma's shape: outcomePrices is JSON text inside a string, sometimes absent."""
    raw = market.get("outcomePrices")
    return MarketResolution(
        closed=market.get("closed"),
        outcome_prices=json.loads(raw) if raw else None,
        uma_resolution_status=market.get("umaResolutionStatus"),
        market_id=market["id"],
    )


def nautilus(polymarket_data, name) -> MarketResolution:
    path = polymarket_data / "nautechsystems__nautilus_trader" / f"gamma_market_{name}.json"
    if not path.exists():
        pytest.skip(f"{path.name} is not present")
    return from_gamma(json.loads(path.read_text()))


def boshi(polymarket_data, day) -> list[dict]:
    path = polymarket_data / "the-boshi__polymarket-db" / f"markets_{day}.jsonl"
    if not path.exists():
        pytest.skip(f"{path.name} is not present")
    # Split on newlines only: one description contains U+2028.
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def by_id(markets, market_id) -> MarketResolution:
    return from_gamma(next(m for m in markets if m["id"] == market_id))


def test_recorded_closed_binary_markets_settle(polymarket_data):
    # closed, ["1","0"], still acceptingOrders with a stale 0.69/0.71 book: closed decides.
    assert settlement_for(nautilus(polymarket_data, "closed_binary_accepting_true")).winner == "YES"
    # closed, ["0","1"], status resolved (its plural statuses still say proposed).
    assert settlement_for(nautilus(polymarket_data, "closed_binary_accepting_false")).winner == "NO"


def test_recorded_legacy_markets_do_not_settle(polymarket_data):
    assert settlement_for(nautilus(polymarket_data, "closed_zero_zero_legacy")).flag == s.NO_WINNER
    assert settlement_for(nautilus(polymarket_data, "closed_nonbinary_legacy")).flag == s.NOT_FINAL_PRICES


def test_recorded_fifty_fifty_resolution(polymarket_data):
    yankees = by_id(boshi(polymarket_data, "2025-10-09"), "628441")
    assert settlement_for(yankees).kind == s.FIFTY_FIFTY


def test_every_recorded_resolved_market_settles(polymarket_data):
    # SOURCES.md: 764 resolved markets, ["0","1"] x457, ["1","0"] x306 and one 50-50.
    kinds = Counter(settlement_for(from_gamma(m)).kind for m in boshi(polymarket_data, "2025-10-09"))
    assert kinds == Counter({s.NO_WON: 457, s.YES_WON: 306, s.FIFTY_FIFTY: 1})


def test_recorded_open_markets_near_certainty_do_not_settle(polymarket_data):
    # Open with UMA "resolved" at 0.0005/0.9995.
    assert settlement_for(by_id(boshi(polymarket_data, "2025-11-07"), "669900")).flag == s.RESOLVED_BUT_OPEN
    # Open with a UMA proposal at 0.9995/0.0005.
    assert settlement_for(by_id(boshi(polymarket_data, "2025-11-10"), "674179")).flag == s.RESOLUTION_PROPOSED
    flags = Counter(
        settlement_for(from_gamma(m)).flag
        for day in ("2025-11-06", "2025-11-07", "2025-11-10")
        for m in boshi(polymarket_data, day)
    )
    # 1,192 active markets, none settled: 14 proposed, 1 resolved-but-open, the rest open.
    assert flags == Counter({s.OPEN: 1192 - 15, s.RESOLUTION_PROPOSED: 14, s.RESOLVED_BUT_OPEN: 1})


def test_recorded_disputed_and_priceless_markets_do_not_settle(polymarket_data):
    folder = polymarket_data / "Alex-Alaniz__PolymarketPipeline-Primape"
    if not folder.exists():
        pytest.skip("Alex-Alaniz recordings are not present")
    active = json.loads((folder / "data_active_markets.json").read_text())["markets"]
    assert settlement_for(by_id(active, "507914")).flag == s.RESOLUTION_DISPUTED
    response = json.loads((folder / "gamma_markets_response.json").read_text())
    # No outcomePrices at all (and open).
    priceless = by_id(response, "502517")
    assert priceless.outcome_prices is None
    assert isinstance(settlement_for(priceless), NotSettled)
    # Were it closed, the missing prices would still stop it.
    assert settlement_for(MarketResolution(True, priceless.outcome_prices)).flag == s.MISSING_PRICES
