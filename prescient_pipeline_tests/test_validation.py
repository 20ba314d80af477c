"""Validation at the edge: a bad price, size or flag from Gamma or the CLOB is never a stored row or a
fill, and a server clock far from ours never dates an observation.

Each finding is played end to end against a local server in the wire format: garbage book prices
("7.5", "-0.4", "NaN") once were stored and sold at $1.00; Gamma's `closed: "yes"` once became
closed = NULL; one answer dated a day ahead once froze every later mark.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests

from prescient_pipeline.polymarket import validation
from prescient_pipeline.polymarket.client import MAX_CLOCK_SKEW, Book, PolymarketClient
from prescient_pipeline.polymarket.parser import parse_events, parse_markets
from prescient_pipeline.polymarket.simulator.server import SimulatorServer
from prescient_pipeline.polymarket.simulator.universe import Universe
from prescient_pipeline.services import portfolios as svc
from prescient_pipeline.services.execution import execute_portfolio
from prescient_pipeline.services.market_refresh import refresh_markets
from prescient_pipeline.services.prices import update_prices
from prescient_pipeline.services.reports import unbalanced_portfolios

from .replay_server import ReplayServer
from .test_execution import T0, add_signals, portfolio, rows, store, wire_market
from .test_parser import wire_event
from .test_parser import wire_market as parser_wire_market
from .test_prices_service import LATER, T1, book, opened, position

UNLIMITED = {"gamma": 100_000, "clob": 100_000}


def quick_client(server) -> PolymarketClient:
    return PolymarketClient(server.url, server.url, timeout=(1, 2), retries=0, requests_per_10s=UNLIMITED)


# --- the checks themselves -----------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [
    ("0", 0.0), ("1", 1.0), (0, 0.0), (1, 1.0), ("0.455", 0.455), (0.5, 0.5), (" 0.25 ", 0.25),
    (None, None), ("", None), ("  ", None),
])
def test_a_price_is_a_finite_number_in_the_unit_interval(value, expected):
    assert validation.price(value) == expected


@pytest.mark.parametrize("value", [
    "7.5", "-0.4", "1.0000001", -0.0001, 7.5, "NaN", "nan", "inf", "-Infinity", float("nan"), float("inf"),
    "0,5", "half", True, False, [0.5], {"price": 0.5}, "1e400",
])
def test_anything_else_is_not_a_price_and_is_never_clipped(value):
    with pytest.raises(validation.InvalidValue) as raised:
        validation.price(value, "bestBid")
    assert raised.value.reason == "invalid_price"
    assert "bestBid" in str(raised.value)


@pytest.mark.parametrize("value, expected", [("0", 0.0), ("150.25", 150.25), (12071015, 12071015.0), ("", None)])
def test_a_size_is_a_finite_number_not_below_zero(value, expected):
    assert validation.size(value) == expected


@pytest.mark.parametrize("value", ["-1", -0.5, "NaN", "inf", "lots", True, [], {}])
def test_negative_or_unreadable_sizes_are_invalid(value):
    with pytest.raises(validation.InvalidValue) as raised:
        validation.size(value)
    assert raised.value.reason == "invalid_size"


@pytest.mark.parametrize("value, expected", [
    (True, True), (False, False), ("true", True), ("false", False), ("TRUE", True), (" False ", False), (None, None),
])
def test_a_flag_is_true_or_false(value, expected):
    assert validation.flag(value) is expected


@pytest.mark.parametrize("value", ["yes", "no", "1", "0", 1, 0, "", "t", "null", [True], 0.0])
def test_no_other_form_is_a_flag(value):
    with pytest.raises(validation.InvalidValue) as raised:
        validation.flag(value, "closed")
    assert raised.value.reason == "invalid_flag"


# --- Gamma: the parser ---------------------------------------------------------------------------


def test_closed_yes_makes_the_market_unusable_instead_of_closed_null():
    result = parse_markets([parser_wire_market(closed="yes"), parser_wire_market(id="2", closed="false")])

    assert [m["market_id"] for m in result.markets] == ["2"]
    assert result.markets[0]["closed"] is False
    assert result.rejected == Counter({"invalid_flag": 1})


@pytest.mark.parametrize("field, value, reason", [
    ("bestBid", "7.5", "invalid_price"), ("bestAsk", "-0.4", "invalid_price"), ("bestBid", "NaN", "invalid_price"),
    ("spread", 2, "invalid_price"), ("lastTradePrice", "inf", "invalid_price"),
    ("outcomePrices", '["1.5", "-0.5"]', "invalid_price"), ("outcomePrices", '["NaN", "0.5"]', "invalid_price"),
    ("liquidityNum", -3, "invalid_size"), ("volume", "NaN", "invalid_size"), ("volume24hr", "lots", "invalid_size"),
    ("active", "yes", "invalid_flag"), ("acceptingOrders", 1, "invalid_flag"), ("negRisk", "0", "invalid_flag"),
    ("archived", "", "invalid_flag"),
])
def test_every_bad_price_size_or_flag_keeps_its_market_out_with_a_counted_reason(field, value, reason):
    result = parse_markets([parser_wire_market(**{field: value}), parser_wire_market(id="2")])

    assert [m["market_id"] for m in result.markets] == ["2"]
    assert result.rejected == Counter({reason: 1})


def test_an_event_with_a_bad_flag_takes_its_markets_with_it():
    bad = wire_event([parser_wire_market(id="1"), parser_wire_market(id="2")], id="10", closed="yes")
    good = wire_event([parser_wire_market(id="3")], id="11")
    sized = wire_event([parser_wire_market(id="4")], id="12", volume="-5")

    result = parse_events([bad, good, sized])

    assert [e["event_id"] for e in result.events] == ["11"]
    assert [m["market_id"] for m in result.markets] == ["3"]
    assert result.rejected == Counter({"event_invalid_flag": 1, "event_invalid_size": 1, "invalid_event": 3})


def test_a_market_whose_parent_event_is_bad_is_unusable_on_markets_too():
    parent = {"id": "10", "title": "E", "closed": "yes"}
    result = parse_markets([parser_wire_market(id="1", events=[parent]), parser_wire_market(id="2", events=[parent]),
                            parser_wire_market(id="3", events=[{"id": "11", "closed": False}])])

    assert [m["market_id"] for m in result.markets] == ["3"]
    assert [e["event_id"] for e in result.events] == ["11"]
    assert result.rejected == Counter({"invalid_event": 2})


# --- Gamma: a refresh ----------------------------------------------------------------------------


def gamma_event(*markets: dict, **fields) -> dict:
    """An /events object holding these /markets objects (without their back reference)."""
    event = {"id": "90001", "title": "Event 90001", "active": True, "closed": False, "archived": False,
             "markets": [{k: v for k, v in m.items() if k != "events"} for m in markets]}
    return {**event, **fields}


def test_a_refresh_never_stores_an_unreadable_closed_flag(engine):
    clean = gamma_event(wire_market("7001", "0.5", "0.5", bid="0.49", ask="0.5"),
                        wire_market("7002", "0.3", "0.7", bid="0.29", ask="0.31"))
    with ReplayServer(events=[clean]) as server, quick_client(server) as client:
        first = refresh_markets(engine, client)
        # Gamma starts sending closed: "yes" for 7001.
        server.events = [gamma_event(wire_market("7001", "0.5", "0.5", bid="0.49", ask="0.5", closed="yes"),
                                     wire_market("7002", "0.3", "0.7", bid="0.28", ask="0.30"))]
        second = refresh_markets(engine, client)

    assert first.rejected == Counter() and first.markets == 2
    assert second.rejected == Counter({"invalid_flag": 1}) and second.markets == 1
    stored = {r.market_id: r for r in rows(engine, "SELECT market_id, closed, best_bid FROM markets")}
    assert stored["7001"].closed is False, "the last readable state stays; never NULL"
    assert (stored["7002"].closed, stored["7002"].best_bid) == (False, Decimal("0.28"))
    assert rows(engine, "SELECT count(*) FROM markets WHERE closed IS NULL") == [(0,)]
    assert rows(engine, "SELECT count(*) FROM market_snapshots WHERE closed IS NULL") == [(0,)]
    # 7001 has one observation (the first refresh); 7002 has two.
    assert dict(rows(engine, "SELECT market_id, count(*) FROM market_snapshots GROUP BY market_id")) == {
        "7001": 1, "7002": 2}


# --- CLOB: books ---------------------------------------------------------------------------------


def level(price, size="100") -> dict:
    return {"price": price, "size": size}


GOOD_BOOK = {"bids": [level("0.01"), level("0.49")], "asks": [level("0.99"), level("0.51")]}


@pytest.mark.parametrize("side, bad, reason", [
    ("bids", level("7.5"), "book_invalid_price"),
    ("asks", level("-0.4"), "book_invalid_price"),
    ("bids", level("NaN"), "book_invalid_price"),
    ("asks", level("inf"), "book_invalid_price"),
    ("bids", level("1.2"), "book_invalid_price"),  # not capped at 1: rejected
    ("bids", level("0.5", "-10"), "book_invalid_size"),
    ("asks", level("0.5", "NaN"), "book_invalid_size"),
    ("bids", {"price": "0.5"}, "book_invalid_level"),
    ("asks", ["0.5", "10"], "book_invalid_level"),
    ("bids", {"price": {"value": 0.5}, "size": "1"}, "book_invalid_price"),
])
def test_a_book_with_one_bad_level_is_left_out_whole_and_counted(side, bad, reason, caplog):
    bad_book = {**GOOD_BOOK, side: [*GOOD_BOOK[side], bad]}
    with ReplayServer(books={"good": GOOD_BOOK, "bad": bad_book}) as server, quick_client(server) as client:
        with caplog.at_level(logging.WARNING, logger="prescient_pipeline.polymarket.client"):
            books = client.fetch_books(["good", "bad"])

    # The good book, whole: its top and its depth, best first.
    assert books == {"good": Book(best_bid=0.49, best_ask=0.51, bid_size=100.0, ask_size=100.0,
                                  bids=[(0.49, 100.0), (0.01, 100.0)], asks=[(0.51, 100.0), (0.99, 100.0)])}
    assert client.rejected == Counter({reason: 1})
    assert "left out 1 CLOB books" in caplog.text and "bad" in caplog.text


def test_a_side_that_is_not_a_list_makes_the_book_unusable_but_a_missing_side_is_empty():
    books = {"string": {**GOOD_BOOK, "bids": "0.49"}, "one_sided": {"bids": GOOD_BOOK["bids"]}}
    with ReplayServer(books=books) as server, quick_client(server) as client:
        fetched = client.fetch_books(["string", "one_sided"])
    assert fetched == {"one_sided": Book(best_bid=0.49, best_ask=None, bid_size=100.0, ask_size=None,
                                         bids=[(0.49, 100.0), (0.01, 100.0)])}
    assert client.rejected == Counter({"book_invalid_level": 1})


def test_bad_midpoints_and_history_points_are_left_out_and_counted():
    history = [{"t": 1, "p": 0.4}, {"t": 2, "p": "7.5"}, {"t": 3, "p": "NaN"}, {"t": 4, "p": "0.45"}]
    with ReplayServer(midpoints={"a": "0.5", "b": "7.5", "c": "NaN"}, price_history={"a": history}) as server, \
            quick_client(server) as client:
        mids = client.fetch_midpoints(["a", "b", "c"])
        points = client.fetch_price_history("a", interval="1d")
    assert mids == {"a": 0.5}
    assert points == [(1, 0.4), (4, 0.45)]
    assert client.rejected == Counter({"midpoint_invalid_price": 2, "history_point_invalid_price": 2})


# --- CLOB: a price update never stores or trades on a bad book -----------------------------------

GARBAGE_LEVELS = [("bids", "7.5"), ("asks", "-0.4"), ("bids", "NaN"), ("asks", "NaN"), ("bids", "1.2")]


def update_with(engine, books: dict, markets=(), now: datetime = T1):
    with ReplayServer(markets=markets, books=books, now=now) as server, quick_client(server) as client:
        return update_prices(engine, client), client


@pytest.mark.parametrize("side, price", GARBAGE_LEVELS)
def test_garbage_book_prices_are_never_stored_marked_or_sold_on(engine, side, price):
    # Take profit at +20%: a bid read as 7.5 (once capped to 1.00) would sell 100 shares bought at 0.50.
    (pid,) = opened(engine, {"7101": LATER}, {"tp": ({"take_profit_percentage": 0.2, "stop_loss_percentage": 0.2},
                                                     [("7101", "YES", 50)])}).values()
    before = position(engine, "7101", pid)
    token, garbage = book("0.58", "0.62", "710101")
    garbage[side].append({"price": price, "size": "150"})

    # The book is unusable, so Gamma is asked, and it does not know the market: unpriced.
    report, client = update_with(engine, {token: garbage})

    assert rows(engine, "SELECT action FROM trades") == [("buy",)], "no exit on a bad observation"
    assert (report.books, report.unpriced, report.exits) == (0, ["7101"], Counter())
    assert client.rejected == Counter({"book_invalid_price": 1})
    kept = position(engine, "7101", pid)
    assert (kept.status, kept.current_price, kept.market_value, kept.last_marked_at) == (
        "open", before.current_price, before.market_value, T0), "kept at its last real mark"
    assert rows(engine, "SELECT yes_price, no_price, best_bid, best_ask FROM markets") == [
        (Decimal("0.5"), Decimal("0.5"), Decimal("0.49"), Decimal("0.5"))]
    assert rows(engine, "SELECT ts FROM market_snapshots") == [(T0,)], "no snapshot of the bad book"
    assert unbalanced_portfolios(engine) == []


def test_a_bad_book_falls_back_to_gammas_real_prices(engine):
    (pid,) = opened(engine, {"7101": LATER}, {"tp": ({"take_profit_percentage": 0.2}, [("7101", "YES", 50)])}).values()
    token, garbage = book("0.58", "0.62", "710101")
    garbage["bids"].append({"price": "7.5", "size": "150"})
    gamma = [wire_market("7101", "0.55", "0.45", bid="0.54", ask="0.56", endDate=LATER)]

    report, _ = update_with(engine, {token: garbage}, gamma)

    # Gamma's answer is real: marked at its YES price 0.55 (100 shares: 55), bid 0.54 is +8%: held.
    assert (report.books, report.gamma_markets, report.unpriced, report.exits) == (0, 1, [], Counter())
    p = position(engine, "7101", pid)
    assert (p.status, p.current_price, p.market_value, p.last_marked_at) == ("open", Decimal("0.55"), Decimal(55), T1)
    assert rows(engine, "SELECT action FROM trades") == [("buy",)]
    assert unbalanced_portfolios(engine) == []


# --- the Date header -----------------------------------------------------------------------------


@pytest.mark.parametrize("skew", [timedelta(days=1), timedelta(minutes=-30), MAX_CLOCK_SKEW + timedelta(seconds=30)])
def test_a_date_too_far_from_our_clock_is_replaced_by_it_with_a_warning(skew, caplog):
    with ReplayServer(midpoints={"a": "0.5"}, skew=skew) as server, quick_client(server) as client:
        with caplog.at_level(logging.WARNING, logger="prescient_pipeline.polymarket.client"):
            before = datetime.now(timezone.utc).replace(microsecond=0)  # observations have whole seconds
            client.fetch_midpoints(["a"])
            client.fetch_midpoints(["a"])
            after = datetime.now(timezone.utc)

    assert before <= client.observed_at <= after
    assert client.skewed_responses == 2
    assert abs(client.clock_skew - skew) < timedelta(seconds=5)
    warnings = [r for r in caplog.records if "local clock" in r.getMessage()]
    assert len(warnings) == 1, "one warning per client, however many answers"


def test_a_date_within_the_bound_is_the_servers():
    with ReplayServer(midpoints={"a": "0.5"}, skew=timedelta(minutes=3)) as server, quick_client(server) as client:
        before = datetime.now(timezone.utc)
        client.fetch_midpoints(["a"])
    # The Date has whole seconds: at least 3 minutes minus one second ahead of our clock.
    assert client.observed_at >= before + timedelta(minutes=3) - timedelta(seconds=1)
    assert client.skewed_responses == 0 and client.clock_skew is None


def test_the_simulators_date_is_trusted_however_far_it_is():
    start = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    with SimulatorServer(Universe(seed=3, events=5, start=start)) as sim, quick_client(sim) as client:
        client.fetch_active_events()
        sim.universe.advance(90)
        client.fetch_midpoints(["1"])
    assert client.observed_at == start + timedelta(minutes=90)
    assert client.skewed_responses == 0


def test_a_server_date_ahead_of_our_clock_does_not_freeze_later_prices(engine):
    """One answer dated a day ahead used to stamp the portfolio a day ahead, so every later,
    correct observation counted as older and was ignored ("superseded") until that day."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    store_at = now - timedelta(hours=1)
    store(engine, [wire_market("7001", "0.5", "0.5", bid="0.49", ask="0.5", endDate=LATER)], at=store_at)
    pid = portfolio(engine, name="marks")
    add_signals(engine, pid, [("7001", "YES", 50)], as_of=store_at)
    assert execute_portfolio(engine, pid).executed == 1

    with ReplayServer(books=dict([book("0.58", "0.62", "700101")]), skew=timedelta(days=1)) as ahead, \
            quick_client(ahead) as client:
        first = update_prices(engine, client)
    with ReplayServer(books=dict([book("0.68", "0.72", "700101")])) as right, quick_client(right) as client:
        second = update_prices(engine, client)

    assert second.superseded == [] and second.marked == 1
    p = position(engine, "7001", pid)
    # Mid (0.68 + 0.72) / 2 = 0.70; 100 shares: 70, unrealized 70 - 50 = 20.
    assert (p.current_price, p.market_value, p.unrealized_pnl) == (Decimal("0.7"), Decimal(70), Decimal(20))
    assert first.observed_at < now + timedelta(minutes=1), "dated by our clock, not a day ahead"
    assert p.last_marked_at == second.observed_at
    latest = rows(engine, "SELECT max(ts) FROM market_snapshots")[0][0]
    assert latest < now + timedelta(minutes=1), "no observation stored in the future"
    assert svc.get_portfolio(engine, pid)["last_price_update"] == second.observed_at
    assert unbalanced_portfolios(engine) == []


def test_every_answer_of_the_simulator_announces_itself():
    with SimulatorServer(Universe(seed=3, events=5)) as sim:
        for method, path, body in [("GET", "/events?limit=1", None), ("POST", "/books", []),
                                   ("GET", "/no-such-endpoint", None)]:
            answer = requests.request(method, sim.url + path, json=body, timeout=5)
            assert answer.headers.get("X-Prescient-Simulator") == "1", path
    assert json.loads(answer.text)["error"]
