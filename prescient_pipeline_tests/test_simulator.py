"""The offline Polymarket simulator: a deterministic world, in the real wire format, over real HTTP."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime, parsedate_to_datetime

import numpy as np
import pytest
import requests

from prescient_pipeline.polymarket.simulator import QueryError, SimulatorServer, Universe

START = datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc)


def _all_events(universe: Universe, **filters) -> list[dict]:
    events, offset = [], 0
    while True:
        page = universe.gamma_events(limit=100, offset=offset, **filters)
        if not page:
            return events
        events += page
        offset += len(page)


def _markets(events: list[dict], *, tradable: bool = True) -> list[dict]:
    """The events' markets; by default without the placeholders of augmented negRisk events
    (unnamed, unpriced and not trading)."""
    return [market for event in events for market in event["markets"] if market["active"] or not tradable]


def _tokens(market: dict) -> tuple[str, str]:
    """Outcome ids by protocol version: V2 in `positionIds` (an array), V1 in `clobTokenIds` (JSON text)."""
    yes, no = market["positionIds"] if market.get("version") == "v2" else json.loads(market["clobTokenIds"])
    return yes, no


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _prices(market: dict) -> list[float]:
    return [float(p) for p in json.loads(market["outcomePrices"])]


@pytest.fixture(scope="module")
def universe() -> Universe:
    """A world at its start, for tests that only read it."""
    return Universe(seed=11, events=300, start=START)


# --- determinism -----------------------------------------------------------------------------------


def _everything(universe: Universe) -> str:
    events = _all_events(universe)
    tokens = [t for market in _markets(events)[:40] for t in _tokens(market)]
    return json.dumps(
        {
            "events": events,
            "markets": universe.gamma_markets(limit=100, offset=50),
            "books": [universe.book(t) for t in tokens],
            "mids": [universe.midpoint(t) for t in tokens],
            "history": [universe.price_history(t, None, None, "1w", 60) for t in tokens[:6]],
        }
    )


def test_same_seed_events_and_start_give_byte_identical_answers():
    first, second = Universe(seed=5, events=120, start=START), Universe(seed=5, events=120, start=START)
    assert _everything(first) == _everything(second)
    for universe in (first, second):
        universe.advance(600)
    assert _everything(first) == _everything(second)
    assert _everything(first) != _everything(Universe(seed=6, events=120, start=START))


def test_advancing_in_pieces_is_the_same_world_as_advancing_at_once():
    pieces, whole = Universe(seed=3, events=80, start=START), Universe(seed=3, events=80, start=START)
    for minutes in (60, 2.5, 2.5, 175, 1):
        pieces.advance(minutes)
    whole.advance(241)
    assert pieces.now == whole.now == START + timedelta(minutes=241)
    assert _everything(pieces) == _everything(whole)


def test_default_start_is_now_floored_to_the_minute():
    before = datetime.now(timezone.utc)
    universe = Universe(seed=1, events=5)
    assert universe.now.tzinfo is not None and universe.now.second == 0 and universe.now.microsecond == 0
    assert before - timedelta(minutes=1) <= universe.now <= datetime.now(timezone.utc)


# --- wire format -----------------------------------------------------------------------------------


def test_markets_use_gamma_wire_format(universe):
    markets = _markets(_all_events(universe))
    assert len(markets) > 300
    for market in markets:
        ids_field = "positionIds" if market.get("version") == "v2" else "clobTokenIds"
        assert isinstance(market[ids_field], list if ids_field == "positionIds" else str)
        assert json.loads(market["clobTokenIds"]) if ids_field == "clobTokenIds" else "clobTokenIds" not in market
        for field in ("outcomes", "outcomePrices"):
            assert isinstance(market[field], str)  # JSON inside a string, as Gamma sends it
            decoded = json.loads(market[field])
            assert isinstance(decoded, list) and len(decoded) == 2 and all(isinstance(v, str) for v in decoded)
        assert abs(sum(_prices(market)) - 1) < 1e-9
        assert all(0 < p < 1 for p in _prices(market))
        for token in _tokens(market):
            assert re.fullmatch(r"[1-9][0-9]{76,77}", token)
        assert re.fullmatch(r"[0-9]+", market["id"])
        assert re.fullmatch(r"0x[0-9a-f]{64}", market["conditionId"])
        assert isinstance(market["volume"], str) and isinstance(market["liquidity"], str)
        assert float(market["volume"]) == market["volumeNum"] and float(market["liquidity"]) == market["liquidityNum"]
        for field in ("bestAsk", "spread", "lastTradePrice", "volumeNum", "liquidityNum", "orderPriceMinTickSize"):
            assert isinstance(market[field], (int, float)) and not isinstance(market[field], bool)
        assert market["orderPriceMinTickSize"] in (0.01, 0.001)
        assert market["orderMinSize"] in (5, 10, 15)
        assert market["endDate"].endswith("Z") and _parse(market["endDate"]) > universe.now
        assert market["closed"] is False and market["active"] is True and market["acceptingOrders"] is True
        assert "events" not in market  # nested markets of /events carry no parent
    missing_24h = sum("volume24hr" not in m for m in markets) / len(markets)
    missing_bid = sum("bestBid" not in m for m in markets) / len(markets)
    assert 0.1 < missing_24h < 0.45  # unknown is absent, not 0
    assert 0 < missing_bid < 0.1


def test_events_use_gamma_wire_format(universe):
    events = _all_events(universe)
    assert len(events) == 300 and len({e["id"] for e in events}) == 300
    neg_risk = [e for e in events if e["negRisk"]]
    assert 0.15 < len(neg_risk) / len(events) < 0.45
    labels = set()
    for event in events:
        for field in ("liquidity", "volume", "volume24hr"):
            assert isinstance(event[field], (int, float))
        assert event["tags"] and all(set(tag) == {"id", "label", "slug"} for tag in event["tags"])
        labels.update(tag["label"] for tag in event["tags"])
        assert event["endDate"] == event["markets"][0]["endDate"]
        if event["negRisk"]:
            assert 3 <= len(event["markets"]) <= 12
            assert event["enableNegRisk"] is True and re.fullmatch(r"0x[0-9a-f]{64}", event["negRiskMarketID"])
            assert all(m["negRisk"] and m["negRiskMarketID"] == event["negRiskMarketID"] for m in event["markets"])
            named = [m["groupItemTitle"] for m in event["markets"] if "groupItemTitle" in m]
            assert len(set(named)) == len(named)
        else:
            assert len(event["markets"]) == 1 and event["enableNegRisk"] is False
            assert "negRiskMarketID" not in event
    assert {"Politics", "Sports", "Crypto", "Economy", "Culture", "Weather"} <= labels


def test_markets_listing_carries_the_parent_event_without_markets_or_tags(universe):
    markets = universe.gamma_markets(limit=100)
    assert len(markets) == 100
    assert [int(m["id"]) for m in markets] == sorted(int(m["id"]) for m in markets)
    for market in markets:
        (parent,) = market["events"]
        assert "markets" not in parent and "tags" not in parent
        assert market["negRisk"] == parent["negRisk"]
    one = universe.gamma_market(markets[7]["id"])
    assert one == markets[7]
    assert universe.gamma_market("999999999") is None and universe.gamma_market("abc") is None


def test_the_world_looks_like_polymarket(universe):
    events = _all_events(universe)
    markets = _markets(events)
    ends = np.array([(_parse(e["endDate"]) - universe.now).total_seconds() / 86400 for e in events])
    assert 0.1 < (ends < 3).mean() < 0.35  # about a fifth end within three days
    assert ends.max() > 60  # and some run for months
    assert 8_000 < np.median([m["liquidityNum"] for m in markets]) < 50_000
    assert 40_000 < np.median([m["volumeNum"] for m in markets]) < 250_000
    binary_yes = np.array([_prices(m)[0] for m in markets if not m["negRisk"]])
    favourite = np.maximum(binary_yes, 1 - binary_yes)
    assert ((favourite >= 0.5) & (favourite <= 0.95)).mean() > 0.5
    assert binary_yes.min() >= 0.01 and binary_yes.max() <= 0.99 and binary_yes.std() > 0.2
    spreads = np.array([m["spread"] for m in markets])  # tradable markets: placeholders have none
    assert np.median(spreads) >= 0.01 and spreads.max() <= 0.05
    # Some negRisk events are priced under 1 (buy-every-leg arbitrage), some well over.
    ask_sums = np.array([sum(m["bestAsk"] for m in _markets([e])) for e in events if e["negRisk"]])
    assert 1 <= (ask_sums < 0.98).sum() <= len(ask_sums) // 4
    assert (ask_sums > 1.05).sum() >= 5
    yes_mid_sums = np.array([sum(_prices(m)[0] for m in _markets([e])) for e in events if e["negRisk"]])
    assert abs(np.median(yes_mid_sums) - 1) < 0.08


# --- CLOB ------------------------------------------------------------------------------------------


def _levels(side: list[dict]) -> list[float]:
    assert all(isinstance(level["price"], str) and isinstance(level["size"], str) for level in side)
    return [float(level["price"]) for level in side]


def test_books_put_the_best_level_last_and_mirror_yes_in_no(universe):
    now_ms = str(int(universe.now.timestamp() * 1000))
    for market in _markets(_all_events(universe))[:150]:
        yes_token, no_token = _tokens(market)
        yes, no = universe.book(yes_token), universe.book(no_token)
        for book, token in ((yes, yes_token), (no, no_token)):
            assert book["asset_id"] == token and book["market"] == market["conditionId"]
            assert book["timestamp"] == now_ms
            assert all(isinstance(book[k], str) for k in ("min_order_size", "tick_size", "last_trade_price", "hash"))
            bids, asks = _levels(book["bids"]), _levels(book["asks"])
            assert bids == sorted(bids) and asks == sorted(asks, reverse=True)  # best is the last element
            assert bids[-1] == max(bids) and asks[-1] == min(asks) and bids[-1] < asks[-1]
        assert float(no["bids"][-1]["price"]) == pytest.approx(1 - float(yes["asks"][-1]["price"]))
        assert float(no["asks"][-1]["price"]) == pytest.approx(1 - float(yes["bids"][-1]["price"]))
        assert market["bestAsk"] == float(yes["asks"][-1]["price"])
        if "bestBid" in market:
            assert market["bestBid"] == float(yes["bids"][-1]["price"])
        mid = (float(yes["bids"][-1]["price"]) + float(yes["asks"][-1]["price"])) / 2
        assert universe.midpoint(yes_token) == pytest.approx(mid)
        assert universe.midpoint(no_token) == pytest.approx(1 - mid)
        assert _prices(market)[0] == pytest.approx(mid)
    assert universe.book("123") is None and universe.midpoint("123") is None


def test_price_history_is_hourly_with_the_current_price_last(universe):
    market = _markets(_all_events(universe))[3]
    yes_token, no_token = _tokens(market)
    day = universe.price_history(yes_token, None, None, "1d", None)
    assert 24 <= len(day) <= 26
    times = [point["t"] for point in day]
    assert times == sorted(times) and all(isinstance(t, int) for t in times)
    assert all(b - a == 3600 for a, b in zip(times, times[1:]))
    assert day[-1]["t"] == int(universe.now.timestamp()) and day[-1]["p"] == pytest.approx(universe.midpoint(yes_token))
    no_day = universe.price_history(no_token, None, None, "1d", None)
    assert [p["p"] for p in no_day] == pytest.approx([1 - p["p"] for p in day])
    week = universe.price_history(yes_token, None, None, "1w", None)
    assert len(week) > 7 * 24 - 2 or _parse(market["createdAt"]) > universe.now - timedelta(days=7)
    sparse = universe.price_history(yes_token, None, None, "1w", 720)
    assert len(sparse) <= 7 * 2 + 2
    start = times[2]
    window = universe.price_history(yes_token, start, start + 3 * 3600, None, None)
    assert [p["t"] for p in window] == times[2:6]
    assert universe.price_history("123", None, None, "1d", None) == []
    with pytest.raises(QueryError) as bad:
        universe.price_history(yes_token, None, None, "2y", None)
    assert bad.value.status == 400


# --- paging and filters ----------------------------------------------------------------------------


def test_events_paging_caps_the_limit_and_ends_with_an_empty_page(universe):
    assert len(universe.gamma_events(limit=500)) == 100
    pages = [universe.gamma_events(limit=100, offset=k) for k in (0, 100, 200, 300)]
    assert [len(p) for p in pages] == [100, 100, 100, 0]
    ids = [int(e["id"]) for page in pages for e in page]
    assert ids == sorted(ids) and len(set(ids)) == 300
    assert [int(e["id"]) for e in universe.gamma_events(limit=30, offset=17)] == ids[17:47]
    assert [int(e["id"]) for e in universe.gamma_events(ascending=False, limit=5)] == ids[::-1][:5]
    assert universe.gamma_events(limit=100, offset=10_000) == []
    with pytest.raises(QueryError) as too_far:
        universe.gamma_events(offset=10_001)
    assert too_far.value.status == 422
    with pytest.raises(QueryError) as bad_order:
        universe.gamma_events(order="title")
    assert (bad_order.value.status, bad_order.value.message) == (422, "order fields are not valid")


@pytest.mark.parametrize(
    ("order", "key"),
    [
        ("volume24hr", lambda e: e["volume24hr"]),
        ("volume", lambda e: e["volume"]),
        ("liquidity", lambda e: e["liquidity"]),
        ("end_date", lambda e: _parse(e["endDate"])),
    ],
)
def test_events_sort_by_the_requested_order(universe, order, key):
    down = universe.gamma_events(order=order, ascending=False, limit=50)
    up = universe.gamma_events(order=order, ascending=True, limit=50)
    assert [key(e) for e in down] == sorted((key(e) for e in down), reverse=True)
    assert [key(e) for e in up] == sorted(key(e) for e in up)
    assert key(down[0]) >= key(up[-1])


def test_events_filter_by_state_end_date_and_id(universe):
    assert universe.gamma_events(active=False) == [] and universe.gamma_events(archived=True) == []
    assert universe.gamma_events(closed=True) == []
    everything = _all_events(universe)
    cut = _parse(sorted(e["endDate"] for e in everything)[150])
    early = _all_events(universe, end_date_max=cut.isoformat())
    late = _all_events(universe, end_date_min=cut.strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert all(_parse(e["endDate"]) <= cut for e in early) and all(_parse(e["endDate"]) >= cut for e in late)
    assert len(early) + len(late) >= 300  # both bounds are inclusive
    chosen = [everything[5]["id"], everything[70]["id"], "1"]
    assert [e["id"] for e in universe.gamma_events(ids=chosen)] == chosen[:2]


def test_markets_filter_by_ids_condition_ids_and_tokens(universe):
    some = universe.gamma_markets(limit=100, offset=200)[:5]
    ids = [m["id"] for m in some]
    assert [m["id"] for m in universe.gamma_markets(ids=ids + ["42"])] == ids
    assert [m["id"] for m in universe.gamma_markets(condition_ids=[some[1]["conditionId"]])] == [ids[1]]
    no_token = _tokens(some[2])[1]
    assert [m["id"] for m in universe.gamma_markets(clob_token_ids=[no_token])] == [ids[2]]
    assert universe.gamma_markets(ids=ids, closed=True) == []
    assert len(universe.gamma_markets(limit=1000)) == 100


# --- the clock -------------------------------------------------------------------------------------


def test_advance_moves_the_clock_prices_and_history():
    universe = Universe(seed=21, events=100, start=START)
    before = {m["id"]: m["outcomePrices"] for m in _markets(_all_events(universe))}
    token = _tokens(_markets(_all_events(universe))[0])[0]
    points = len(universe.price_history(token, None, None, "max", None))
    universe.advance(1440)
    assert universe.now == START + timedelta(days=1)
    after = {m["id"]: m["outcomePrices"] for m in _markets(_all_events(universe, closed=False))}
    still_open = [i for i in after if i in before and json.loads(after[i])[0] not in ("0.9995", "0.0005")]
    moved = sum(before[i] != after[i] for i in still_open)
    assert moved > 0.6 * len(still_open)
    assert len(universe.price_history(token, None, None, "max", None)) >= points + 23
    with pytest.raises(ValueError):
        universe.advance(-1)


def _earliest_event(universe: Universe, neg_risk: bool) -> dict:
    return next(e for e in universe.gamma_events(order="end_date", limit=100) if e["negRisk"] == neg_risk)


@pytest.mark.parametrize("neg_risk", [False, True])
def test_markets_resolve_through_proposed_then_closed(neg_risk):
    universe = Universe(seed=9, events=150, start=START)
    event = _earliest_event(universe, neg_risk)
    end = _parse(event["endDate"])
    universe.advance((end - universe.now).total_seconds() / 60 + 5)

    # Proposed: pinned near 0/1 but still open and trading (the pre-settlement trap).
    (proposed,) = universe.gamma_events(ids=[event["id"]])
    assert proposed["closed"] is False
    assert event["id"] in {e["id"] for e in _all_events(universe, closed=False)}
    for market in _markets([proposed]):
        assert market["umaResolutionStatus"] == "proposed"
        assert market["closed"] is False and market["acceptingOrders"] is True
        assert json.loads(market["outcomePrices"]) in (["0.9995", "0.0005"], ["0.0005", "0.9995"], ["0.5", "0.5"])
        assert universe.book(_tokens(market)[0]) is not None

    universe.advance(120)
    (closed,) = universe.gamma_events(ids=[event["id"]])
    assert closed["closed"] is True and "closedTime" in closed
    assert event["id"] not in {e["id"] for e in _all_events(universe, closed=False)}
    assert event["id"] in {e["id"] for e in _all_events(universe, closed=True)}
    for market in closed["markets"]:
        assert market["closed"] is True and market["acceptingOrders"] is False
        assert market["umaResolutionStatus"] == "resolved"
        assert market["outcomePrices"] in ('["1", "0"]', '["0", "1"]', '["0.5", "0.5"]')
        yes_token = _tokens(market)[0]
        assert universe.book(yes_token) is None and universe.midpoint(yes_token) is None
        # Settlement looks closed markets up by id.
        assert [m["id"] for m in universe.gamma_markets(ids=[market["id"]])] == [market["id"]]
        assert universe.gamma_markets(ids=[market["id"]], closed=False) == []
        assert universe.gamma_market(market["id"])["closed"] is True
        history = universe.price_history(yes_token, None, None, "1d", None)
        assert history[-1]["p"] == _prices(market)[0]


def test_resolution_picks_one_winner_per_neg_risk_event_and_new_events_keep_the_size():
    universe = Universe(seed=4, events=150, start=START)
    universe.advance(5 * 1440)
    closed = _all_events(universe, closed=True)
    neg_risk = [e for e in closed if e["negRisk"]]
    binary = [e for e in closed if not e["negRisk"]]
    assert len(neg_risk) >= 3 and len(binary) >= 10
    for event in neg_risk:
        prices = [m["outcomePrices"] for m in event["markets"]]
        assert prices.count('["1", "0"]') == 1 and prices.count('["0", "1"]') == len(prices) - 1
    outcomes = [e["markets"][0]["outcomePrices"] for e in binary]
    assert set(outcomes) <= {'["1", "0"]', '["0", "1"]', '["0.5", "0.5"]'}
    assert '["1", "0"]' in outcomes and '["0", "1"]' in outcomes
    # New events appear every hour, so the open universe keeps about its size.
    assert 140 <= len(_all_events(universe, closed=False)) <= 150
    newest = universe.gamma_events(ascending=False, limit=1)[0]
    assert _parse(newest["createdAt"]) > START


# --- over HTTP -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server():
    with SimulatorServer(Universe(seed=13, events=150, start=START)) as running:
        yield running


def _get(server, path: str, **params) -> requests.Response:
    return requests.get(server.url + path, params=params, timeout=10)


def _sim_date(server) -> str:
    return format_datetime(server.universe.now, usegmt=True)


def test_http_gamma_endpoints(server):
    response = _get(server, "/events", active="true", closed="false", archived="false", order="id", ascending="true", limit=1000)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/json")
    assert response.headers["Date"] == _sim_date(server)
    assert parsedate_to_datetime(response.headers["Date"]) == server.universe.now
    events = response.json()
    assert len(events) == 100 and isinstance(events[0]["markets"][0]["outcomePrices"], str)
    assert _get(server, "/events", offset=200).json() == []
    market_ids = [m["id"] for e in events[:3] for m in e["markets"]]
    repeated = requests.get(server.url + "/markets", params=[("id", i) for i in market_ids], timeout=10).json()
    assert [m["id"] for m in repeated] == market_ids
    tokens = [_tokens(m)[0] for m in repeated[:2]]
    by_token = _get(server, "/markets", clob_token_ids=",".join(tokens)).json()
    assert [m["id"] for m in by_token] == market_ids[:2]
    one = _get(server, f"/markets/{market_ids[0]}").json()
    assert one["id"] == market_ids[0] and one["events"][0]["id"] == events[0]["id"]
    assert _get(server, f"/events/{events[1]['id']}").json()["id"] == events[1]["id"]


def test_http_clob_endpoints(server):
    market = _get(server, "/markets", limit=1).json()[0]
    yes, no = _tokens(market)
    book = _get(server, "/book", token_id=yes).json()
    assert book["asset_id"] == yes and float(book["asks"][-1]["price"]) == market["bestAsk"]
    books = requests.post(server.url + "/books", json=[{"token_id": yes}, {"token_id": no}, {"token_id": "5"}], timeout=10)
    assert books.status_code == 200 and [b["asset_id"] for b in books.json()] == [yes, no]
    mid = _get(server, "/midpoint", token_id=yes).json()
    assert set(mid) == {"mid"} and isinstance(mid["mid"], str)
    assert mid["mid"] == json.loads(market["outcomePrices"])[0]
    mids = requests.post(server.url + "/midpoints", json=[{"token_id": yes}, {"token_id": no}], timeout=10).json()
    assert mids == {yes: mid["mid"], no: json.loads(market["outcomePrices"])[1]}
    history = _get(server, "/prices-history", market=yes, interval="1d", fidelity=60).json()["history"]
    assert len(history) >= 24 and set(history[0]) == {"t", "p"}
    assert isinstance(history[0]["t"], int) and isinstance(history[0]["p"], float)
    now = int(server.universe.now.timestamp())
    window = _get(server, "/prices-history", market=yes, startTs=now - 6 * 3600, endTs=now).json()["history"]
    assert 6 <= len(window) <= 7


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/events?order=title", 422),
        ("GET", "/events?offset=10001", 422),
        ("GET", "/events?limit=ten", 422),
        ("GET", "/events?closed=maybe", 422),
        ("GET", "/events?end_date_min=yesterday", 422),
        ("GET", "/markets?id=abc", 422),
        ("GET", "/markets/424242424", 404),
        ("GET", "/events/424242424", 404),
        ("GET", "/book", 400),
        ("GET", "/book?token_id=42", 404),
        ("GET", "/midpoint?token_id=42", 404),
        ("GET", "/prices-history?market=42&interval=5y", 400),
        ("GET", "/prices-history?market=42&interval=1d&startTs=1", 400),
        ("GET", "/prices-history?market=42&startTs=soon", 400),
        ("GET", "/prices-history", 400),
        ("POST", "/books", 400),
        ("POST", "/midpoints", 400),
        ("POST", "/__sim__/advance?minutes=-5", 400),
        ("POST", "/__sim__/advance?minutes=lots", 400),
        ("GET", "/no/such/path", 404),
        ("DELETE", "/events", 405),
    ],
)
def test_http_bad_requests_get_json_errors(server, method, path, status):
    body = "{not json" if method == "POST" else None
    response = requests.request(method, server.url + path, data=body, timeout=10)
    assert response.status_code == status
    assert isinstance(response.json()["error"], str)
    assert response.headers["Date"] == _sim_date(server)


def test_http_advance_moves_the_date_header():
    with SimulatorServer(Universe(seed=2, events=40, start=START)) as server:
        token = _tokens(_get(server, "/markets", limit=1).json()[0])[0]
        assert _get(server, "/__sim__/time").json() == {"now": "2026-01-05T12:00:00Z"}
        moved = requests.post(server.url + "/__sim__/advance", params={"minutes": 90}, timeout=10)
        assert moved.json() == {"now": "2026-01-05T13:30:00Z"}
        assert moved.headers["Date"] == "Mon, 05 Jan 2026 13:30:00 GMT"
        book = _get(server, "/book", token_id=token)
        assert book.headers["Date"] == "Mon, 05 Jan 2026 13:30:00 GMT"
        assert book.json()["timestamp"] == str(int((START + timedelta(minutes=90)).timestamp() * 1000))
        by_body = requests.post(server.url + "/__sim__/advance", json={"minutes": 30}, timeout=10)
        assert by_body.json() == {"now": "2026-01-05T14:00:00Z"}
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/__sim__/time", timeout=2)


def test_the_real_client_runs_against_the_simulator(server):
    client_module = pytest.importorskip("prescient_pipeline.polymarket.client")
    with client_module.PolymarketClient(server.url, server.url) as client:
        fetched = client.fetch_active_events()
        assert len(fetched.events) == 150 and fetched.observed_at == server.universe.now
        tokens = [_tokens(m)[0] for m in _markets(fetched.events[:20])]
        assert set(client.fetch_books(tokens)) == set(tokens)
        assert set(client.fetch_midpoints(tokens)) == set(tokens)


@pytest.mark.slow
def test_five_thousand_events_generate_advance_and_page_quickly():
    universe = Universe(seed=7, events=5_000, start=START)
    assert universe.market_count > 12_000
    universe.advance(1440)
    assert 4_900 <= universe.open_event_count <= 5_000
    first = universe.gamma_events(closed=False, limit=100)
    last = universe.gamma_events(closed=False, limit=100, offset=4_900)
    assert len(first) == 100 and 1 <= len(last) <= 100
    assert universe.gamma_events(closed=False, limit=100, offset=5_000) == []


# --- venue rules, fees, protocol versions, augmented negRisk -----------------------------------------


def test_a_mix_of_v1_and_v2_markets_whose_ids_reach_their_books(universe):
    markets = _markets(_all_events(universe))
    versions = [m.get("version") for m in markets]
    assert {"v1", "v2", None} == set(versions)  # V1 sometimes sends no version at all
    assert 0.2 < versions.count("v2") / len(markets) < 0.4
    for market in markets:
        if market.get("version") == "v2":
            assert isinstance(market["positionIds"], list) and "clobTokenIds" not in market
        else:
            assert "positionIds" not in market
        yes, no = _tokens(market)
        assert universe.book(yes)["asset_id"] == yes and universe.book(no)["asset_id"] == no
    # Gamma's token filter finds V2 markets by their position ids too.
    v2 = next(m for m in markets if m.get("version") == "v2")
    assert [m["id"] for m in universe.gamma_markets(clob_token_ids=[v2["positionIds"][1]])] == [v2["id"]]


def test_books_have_several_levels_some_thin_and_sizes_respect_the_minimum(universe):
    depths, level_counts = [], []
    for market in _markets(_all_events(universe))[:300]:
        book = universe.book(_tokens(market)[0])
        assert book["min_order_size"] == str(market["orderMinSize"])
        assert float(book["tick_size"]) == market["orderPriceMinTickSize"]
        sizes = [float(level["size"]) for level in book["bids"] + book["asks"]]
        assert min(sizes) >= market["orderMinSize"]
        level_counts.append(max(len(book["bids"]), len(book["asks"])))
        depths.append(sum(float(level["size"]) for level in book["asks"]))
    assert min(level_counts) >= 1 and max(level_counts) == 8 and len(set(level_counts)) >= 5
    # Thin books: a $100 buy at the asks could not fill; most books hold thousands of shares.
    assert 0.05 < np.mean(np.array(depths) < 100) < 0.3
    assert np.median(depths) > 1_000


def test_the_tick_drops_to_a_thousandth_near_zero_and_one(universe):
    markets = _markets(_all_events(universe))
    extreme = [m for m in markets if not 0.04 <= _prices(m)[0] <= 0.96]
    middle = [m for m in markets if 0.1 <= _prices(m)[0] <= 0.9]
    assert extreme and all(m["orderPriceMinTickSize"] == 0.001 for m in extreme)
    assert {m["orderPriceMinTickSize"] for m in middle} == {0.01, 0.001}
    for market in extreme[:20] + middle[:20]:
        book = universe.book(_tokens(market)[0])
        tick = float(book["tick_size"])
        for level in book["bids"] + book["asks"]:
            assert round(float(level["price"]) / tick, 6) == round(float(level["price"]) / tick)


def _category(event: dict) -> str:
    return event["tags"][0]["slug"]


def test_fee_schedules_on_crypto_and_sports_and_none_elsewhere(universe):
    seen = set()
    for event in _all_events(universe):
        for market in event["markets"]:
            category, schedule = _category(event), market.get("feeSchedule")
            if category in ("crypto", "sports"):
                assert market["feesEnabled"] is True
                if schedule is None:  # enabled without parameters, as some real markets are
                    seen.add((category, None))
                    continue
                assert schedule["takerOnly"] is True
                seen.add((category, schedule["rate"], schedule["exponent"]))
            else:
                assert market["feesEnabled"] is False and schedule is None and market["feeType"] is None
    assert seen == {("crypto", 0.07, 1), ("crypto", 0.25, 2), ("sports", 0.03, 1), ("crypto", None), ("sports", None)}


def test_clob_market_info_gives_rules_and_fee_details(universe):
    rates = {"crypto_fees_v2": (0.07, 1), "crypto_fees": (0.25, 2), "sports_fees_v2": (0.03, 1)}
    by_kind = set()
    for market in _markets(_all_events(universe)):
        info = universe.clob_market_info(market["conditionId"])
        assert (info["mos"], info["mts"]) == (market["orderMinSize"], market["orderPriceMinTickSize"])
        schedule = market.get("feeSchedule")
        if schedule is not None:
            assert info["fd"] == {"r": schedule["rate"], "e": schedule["exponent"], "to": True}
        elif market["feesEnabled"]:  # Gamma gave no schedule: the CLOB states it, by fee type
            assert (info["fd"]["r"], info["fd"]["e"]) == rates[market["feeType"]]
        else:
            assert info["fd"]["r"] == 0
        by_kind.add((market["feesEnabled"], schedule is None))
    assert by_kind == {(True, True), (True, False), (False, True)}
    assert universe.clob_market_info("0x00") is None


def test_augmented_neg_risk_events_list_placeholders_and_an_other(universe):
    events = _all_events(universe)
    augmented = [e for e in events if e["negRiskAugmented"]]
    assert 5 <= len(augmented) < len([e for e in events if e["negRisk"]])
    for event in augmented:
        assert event["enableNegRisk"] is True and _category(event) in ("politics", "sports", "pop-culture", "tech", "geopolitics")
        *named, other = event["markets"]
        placeholders = [m for m in named if not m["active"]]
        assert 1 <= len(placeholders) <= 2 and named[-len(placeholders):] == placeholders
        assert other["negRiskOther"] is True and other["groupItemTitle"] == "Other"
        assert "another" in other["question"] and other["active"] and "outcomePrices" in other
        for letter, placeholder in zip("AB", placeholders):
            assert f"Person {letter}" in placeholder["question"] and placeholder["negRiskOther"] is False
            assert "outcomePrices" not in placeholder and "groupItemTitle" not in placeholder
            assert placeholder["acceptingOrders"] is False and universe.book(_tokens(placeholder)[0]) is None
        assert all(m["negRiskOther"] is False for m in named)
    plain = [e for e in events if e["negRisk"] and not e["negRiskAugmented"]]
    assert all(m["active"] and not m["negRiskOther"] for e in plain for m in e["markets"])



def test_a_placeholder_never_wins_other_does_in_its_place():
    universe = Universe(seed=11, events=300, start=START)
    universe.advance(20 * 1440)
    closed = [e for e in _all_events(universe, closed=True) if e["negRiskAugmented"]]
    assert closed
    for event in closed:
        winners = [m for m in event["markets"] if m["outcomePrices"] == '["1", "0"]']
        assert len(winners) == 1 and "Person " not in winners[0]["question"]


def test_clob_market_info_over_http(server):
    market = _get(server, "/markets", limit=1).json()[0]
    info = _get(server, f"/clob-markets/{market['conditionId']}").json()
    assert info["condition_id"] == market["conditionId"] and info["mos"] == market["orderMinSize"]
    missing = _get(server, "/clob-markets/0x00")
    assert missing.status_code == 404 and "not found" in missing.json()["error"]
