"""The Polymarket HTTP client against a real local server replaying recorded API data."""

from __future__ import annotations

import json
import random
import socket
import threading
import time
from datetime import datetime, timezone

import pytest

from prescient_pipeline.polymarket.client import (
    Book,
    PolymarketClient,
    PolymarketError,
    RateLimiter,
)
from prescient_pipeline_tests.replay_server import ReplayServer, events_from_recorded_markets

ACTIVE_MARKETS = "the-boshi__polymarket-db/markets_2025-11-10.jsonl"
RESOLVED_MARKETS = "the-boshi__polymarket-db/markets_2025-10-09.jsonl"
BOOK = "nautechsystems__nautilus_trader/clob_book_response.json"
PRICES_1D = "borat14011-sudo__wom-polymarket-strategy/active_prices_1d.json"
UNLIMITED = {"gamma": 100_000, "clob": 100_000}


def quick_client(server: ReplayServer, **options) -> PolymarketClient:
    """A client with tiny backoffs and no practical rate limit, so tests stay fast."""
    settings = dict(
        timeout=(1, 2), retries=2, backoff_factor=0.01, backoff_max=0.05, requests_per_10s=UNLIMITED
    )
    settings.update(options)
    return PolymarketClient(server.url, server.url, **settings)


def read_markets(path) -> list[dict]:
    lines = path.read_text(encoding="utf-8").split("\n")
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def recorded_events(polymarket_data) -> list[dict]:
    return events_from_recorded_markets(polymarket_data / ACTIVE_MARKETS)


@pytest.fixture
def server(recorded_events):
    with ReplayServer(events=recorded_events) as replay:
        yield replay


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- the recorded data as /events ------------------------------------------------------------


def test_recorded_markets_become_events_with_their_markets(recorded_events, polymarket_data):
    markets = read_markets(polymarket_data / ACTIVE_MARKETS)
    assert len(recorded_events) == len({m["events"][0]["id"] for m in markets}) == 227
    assert sum(len(e["markets"]) for e in recorded_events) == len(markets) == 505
    first = recorded_events[0]
    assert first["id"] == markets[0]["events"][0]["id"] and "endDate" in first
    assert all("events" not in m for e in recorded_events for m in e["markets"])


# --- paging ------------------------------------------------------------------------------------


def test_events_page_by_100_dedupe_a_repeat_and_stop_on_an_empty_page(server, recorded_events):
    by_id = sorted(recorded_events, key=lambda e: int(e["id"]))
    server.insert_duplicate(by_id[99]["id"], 100)  # last row of page one, again first of page two
    progress = []

    fetched = quick_client(server).fetch_active_events(lambda page, n: progress.append((page, n)))

    assert [e["id"] for e in fetched.events] == [e["id"] for e in by_id]
    assert fetched.duplicates == 1
    assert fetched.pages == 4
    assert progress == [(1, 100), (2, 199), (3, 227), (4, 227)]
    sent = server.requests_to("/events")
    assert [r.param("offset") for r in sent] == ["0", "100", "200", "228"]
    for request in sent:
        assert {k: v[0] for k, v in request.query.items() if k != "offset"} == {
            "active": "true",
            "closed": "false",
            "archived": "false",
            "order": "id",
            "ascending": "true",
            "limit": "100",
        }
    assert sum(len(e["markets"]) for e in fetched.events) == 505


def test_a_short_page_is_not_the_end(recorded_events):
    # A server that caps `limit` lower than asked must not make the client stop or skip rows.
    with ReplayServer(events=recorded_events, limit_cap=40) as replay:
        fetched = quick_client(replay).fetch_active_events()
    assert len(fetched.events) == 227
    assert [r.param("offset") for r in replay.requests][:3] == ["0", "40", "80"]


@pytest.mark.parametrize("offset_cap, exclusive", [(100, False), (150, False), (100, True)])
def test_past_the_offset_cap_end_date_windows_return_every_event_once(
    recorded_events, offset_cap, exclusive
):
    # An event without an end date is reached by the unsliced listing only; a low id gets it there.
    undated = {**recorded_events[0], "id": "1", "endDate": None, "markets": []}
    events = [undated, *recorded_events]
    with ReplayServer(
        events=events, offset_cap=offset_cap, exclusive_end_date_bounds=exclusive
    ) as replay:
        fetched = quick_client(replay, offset_cap=offset_cap).fetch_active_events()

    ids = [e["id"] for e in fetched.events]
    assert len(ids) == len(set(ids)) == 228
    assert set(ids) == {"1"} | {e["id"] for e in recorded_events}
    sent = replay.requests_to("/events")
    assert all(int(r.param("offset")) <= offset_cap for r in sent)  # never a 422
    windows = [r for r in sent if r.param("end_date_min") or r.param("end_date_max")]
    assert windows and len(windows) < len(sent)
    assert fetched.duplicates == 0


@pytest.mark.parametrize("exclusive", [False, True])
def test_events_on_a_window_bound_are_kept_whichever_way_the_server_reads_bounds(
    exclusive, caplog
):
    # 90 events on each of three instants, ids interleaved: the first cut falls exactly on the
    # middle instant, whose later ids the unsliced listing never reached.
    flags = {"active": True, "closed": False, "archived": False}
    instants = ["2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"]
    events = [{**flags, "id": str(i), "endDate": instants[i % 3]} for i in range(1, 271)]
    with ReplayServer(events=events, offset_cap=100, exclusive_end_date_bounds=exclusive) as replay:
        fetched = quick_client(replay, offset_cap=100).fetch_active_events()
    assert sorted(int(e["id"]) for e in fetched.events) == list(range(1, 271))
    assert "may be missing" not in caplog.text


def test_more_events_on_one_end_date_than_the_cap_stops_splitting_with_a_warning(caplog):
    flags = {"active": True, "closed": False, "archived": False}
    same_day = [{**flags, "id": str(i), "endDate": "2026-01-01T00:00:00Z"} for i in range(1, 251)]
    with ReplayServer(events=same_day, offset_cap=100) as replay:
        fetched = quick_client(replay, offset_cap=100).fetch_active_events()
    # Only what one listing can reach (cap + a page) of that single instant comes back.
    assert sorted(int(e["id"]) for e in fetched.events) == list(range(1, 201))
    assert "more than 100 active events end between" in caplog.text


# --- retries and errors ----------------------------------------------------------------------


def test_429_with_retry_after_then_503_are_retried(server):
    server.fail_next([429], retry_after=1)
    server.fail_next([503])
    started = time.monotonic()

    fetched = quick_client(server, backoff_max=5).fetch_active_events()

    assert time.monotonic() - started >= 0.95  # Retry-After: 1 was honoured
    assert len(fetched.events) == 227
    assert [r.param("offset") for r in server.requests_to("/events")][:4] == ["0", "0", "0", "100"]


def test_a_long_retry_after_is_capped_at_backoff_max(server):
    from urllib3 import HTTPResponse

    client = quick_client(server, backoff_max=0.2)
    retry = client._session.get_adapter(server.url).max_retries
    # The wait urllib3 would sleep on "Retry-After: 600" is the cap, not ten minutes.
    assert retry.get_retry_after(HTTPResponse(status=503, headers={"Retry-After": "600"})) == 0.2
    server.fail_next([503], retry_after=600)
    assert len(client.fetch_active_events().events) == 227


def test_an_outage_fails_after_the_retries_with_one_clear_line(server):
    server.fail_always(500)

    with pytest.raises(PolymarketError) as failure:
        quick_client(server, retries=3).fetch_active_events()

    message = str(failure.value)
    assert "\n" not in message
    assert "GET /events?active=true" in message
    assert "HTTP 500 after 3 retries" in message
    assert "scripted outage" in message
    assert failure.value.status == 500
    assert len(server.requests) == 4


@pytest.mark.parametrize("status", [400, 404, 422])
def test_other_client_errors_fail_fast_with_one_request(server, status):
    server.fail_next([status], body={"error": "bad id"})
    with pytest.raises(PolymarketError, match=f"HTTP {status}: .*bad id"):
        quick_client(server).fetch_markets(["123"])
    assert len(server.requests) == 1


def test_offset_beyond_the_servers_cap_is_a_clear_422(recorded_events):
    # A client allowed deeper than the server accepts hits Gamma's 422 and says so.
    with ReplayServer(events=recorded_events * 2, offset_cap=100) as replay:
        for i, event in enumerate(replay.events):
            replay.events[i] = {**event, "id": str(i + 1)}
        expected = r"offset=200 failed with HTTP 422: .*offset must be <= 100"
        with pytest.raises(PolymarketError, match=expected):
            quick_client(replay, offset_cap=10_000).fetch_active_events()
    assert len(replay.requests) == 3


@pytest.mark.parametrize(
    "body, expected",
    [
        ("<html>Just a moment...</html>", r"non-JSON body \(HTTP 200, text/html.*Just a moment"),
        ({"error": "x"}, "returned dict instead of a JSON array"),
    ],
)
def test_a_body_that_is_not_the_expected_json_is_an_error(server, body, expected):
    server.fail_next([200], body=body)
    with pytest.raises(PolymarketError, match=expected):
        quick_client(server).fetch_active_events()


def test_a_read_timeout_is_retried(server):
    server.stall_next(1, seconds=1.0, path="/midpoints")
    server.midpoints = {"111": 0.42}
    client = quick_client(server, timeout=(1, 0.3))
    assert client.fetch_midpoints(["111"]) == {"111": 0.42}
    assert len(server.requests_to("/midpoints")) == 2


def test_an_unreachable_host_is_an_error_after_retries():
    url = dead_url()
    client = PolymarketClient(url, url, retries=1, backoff_factor=0.01, requests_per_10s=UNLIMITED)
    expected = r"POST /midpoints failed: gave up after 1 retries, last NewConnectionError"
    with pytest.raises(PolymarketError, match=expected):
        client.fetch_midpoints(["1"])


def test_ping_reports_each_api(server):
    result = PolymarketClient(server.url, dead_url()).ping(timeout=1)
    assert result["gamma"] is True and result["clob"] is False
    assert set(result["errors"]) == {"clob"}
    assert "Connection refused" in result["errors"]["clob"]
    assert len(server.requests) == 1  # one probe, no retries


# --- markets by id ---------------------------------------------------------------------------


def test_markets_by_id_in_batches_without_a_closed_filter(polymarket_data):
    markets = read_markets(polymarket_data / ACTIVE_MARKETS)[:250]
    with ReplayServer(markets=markets) as replay:
        fetched = quick_client(replay).fetch_markets([m["id"] for m in markets])

    assert [m["id"] for m in fetched] == [m["id"] for m in markets]
    sent = replay.requests_to("/markets")
    assert [len(r.query["id"]) for r in sent] == [100, 100, 50]
    assert all("closed" not in r.query for r in sent)
    assert [r.param("limit") for r in sent] == ["100", "100", "50"]


def test_closed_markets_are_found_by_id_too(polymarket_data):
    open_markets = read_markets(polymarket_data / ACTIVE_MARKETS)[:5]
    resolved = read_markets(polymarket_data / RESOLVED_MARKETS)[:2]
    ids = [m["id"] for m in open_markets + resolved] + ["999999999"]
    with ReplayServer(markets=open_markets + resolved) as replay:
        fetched = quick_client(replay).fetch_markets(ids)

    assert sorted(m["id"] for m in fetched) == sorted(m["id"] for m in open_markets + resolved)
    assert [m["closed"] for m in fetched if m["id"] in {r["id"] for r in resolved}] == [True, True]
    first, second = replay.requests_to("/markets")
    assert "closed" not in first.query
    assert second.param("closed") == "true"
    assert second.query["id"] == [m["id"] for m in resolved] + ["999999999"]


# --- CLOB ------------------------------------------------------------------------------------


def test_books_take_the_best_levels_whatever_their_order(polymarket_data):
    recorded = json.loads((polymarket_data / BOOK).read_text())
    shuffled = {
        **recorded,
        "bids": random.Random(1).sample(recorded["bids"], 3),
        "asks": list(reversed(recorded["asks"])),
    }
    one_sided = {**recorded, "asks": []}
    books = {"t1": recorded, "t2": shuffled, "t3": one_sided}
    books.update({f"x{i}": recorded for i in range(4)})
    with ReplayServer(books=books) as replay:
        tokens = ["t1", "t2", "t3", "x0", "x1", "x2", "x3", "missing"]
        fetched = quick_client(replay).fetch_books(tokens, chunk_size=3)

    # The recorded book sends bids ascending and asks descending; depth is kept best first.
    bids = [(0.50, 150.0), (0.49, 200.0), (0.48, 100.0)]
    asks = [(0.51, 120.0), (0.52, 180.0), (0.53, 90.0)]
    top = Book(best_bid=0.50, best_ask=0.51, bid_size=150.0, ask_size=120.0, bids=bids, asks=asks)
    assert fetched["t1"] == fetched["t2"] == top
    assert fetched["t3"] == Book(best_bid=0.50, best_ask=None, bid_size=150.0, ask_size=None, bids=bids)
    assert "missing" not in fetched and len(fetched) == 7
    sent = replay.requests_to("/books", "POST")
    assert [len(r.body) for r in sent] == [3, 3, 2]
    assert sent[0].body == [{"token_id": "t1"}, {"token_id": "t2"}, {"token_id": "t3"}]


def test_books_keep_the_twenty_best_levels_a_side_and_the_market_rules():
    # 30 levels a side in the CLOB's order (best last); a level without a usable size cannot be
    # walked and is left out of the depth, as is a zero-size level.
    bids = [{"price": f"{0.20 + k / 100:.2f}", "size": f"{10 + k}"} for k in range(30)]  # 0.20 .. 0.49
    asks = [{"price": f"{0.80 - k / 100:.2f}", "size": f"{100 + k}"} for k in range(30)]  # 0.80 .. 0.51
    bids += [{"price": "0.495", "size": "0"}, {"price": "0.494"}]
    book = {"bids": bids, "asks": asks, "tick_size": "0.001", "min_order_size": "15",
            "last_trade_price": "0.505", "neg_risk": False}
    with ReplayServer(books={"t": book}) as replay:
        fetched = quick_client(replay).fetch_books(["t"])["t"]
    assert len(fetched.bids) == len(fetched.asks) == 20
    # Best first: bids from 0.49 down (size 10 + 29 = 39 at 0.49), asks from 0.51 up (100 + 29).
    assert fetched.bids[0] == (0.49, 39.0) and fetched.bids[-1] == (0.30, 20.0)
    assert fetched.asks[0] == (0.51, 129.0) and fetched.asks[-1] == (0.70, 110.0)
    assert [p for p, _ in fetched.bids] == sorted((p for p, _ in fetched.bids), reverse=True)
    assert [p for p, _ in fetched.asks] == sorted(p for p, _ in fetched.asks)
    assert (fetched.tick_size, fetched.min_order_size, fetched.last_trade_price) == (0.001, 15.0, 0.505)


def test_midpoints_are_fetched_in_chunks():
    tokens = [str(10**70 + i) for i in range(1_200)]  # real token ids are 70+ digit decimals
    with ReplayServer(midpoints={t: f"0.{i % 100:02d}5" for i, t in enumerate(tokens)}) as replay:
        mids = quick_client(replay).fetch_midpoints(tokens)
    assert len(mids) == 1_200
    assert mids[tokens[3]] == pytest.approx(0.035)
    assert [len(r.body) for r in replay.requests_to("/midpoints")] == [500, 500, 200]


def test_price_history_parses_the_recorded_series(polymarket_data):
    history = json.loads((polymarket_data / PRICES_1D).read_text())["history"]
    token = "111128191581505463501777127559667396812474366956707382672202929745167742497287"
    with ReplayServer(price_history={token: history}) as replay:
        client = quick_client(replay)
        points = client.fetch_price_history(token, interval="1d")
        window = client.fetch_price_history(
            token, start_ts=1770394000, end_ts=1770480000, fidelity=60
        )

    assert len(points) == 1_440
    assert points[0] == (1770394157, 0.23)
    assert all(isinstance(t, int) and isinstance(p, float) for t, p in points)
    assert [t for t, _ in points] == sorted(t for t, _ in points)
    assert window == points
    first, second = replay.requests_to("/prices-history")
    assert first.query == {"market": [token], "interval": ["1d"]}
    assert second.query == {
        "market": [token],
        "startTs": ["1770394000"],
        "endTs": ["1770480000"],
        "fidelity": ["60"],
    }
    with pytest.raises(ValueError):
        client.fetch_price_history(token, interval="1d", start_ts=1)


# --- clock and rate --------------------------------------------------------------------------


def test_the_date_header_becomes_observed_at(server):
    server.now = datetime(2026, 3, 1, 12, 30, 5, tzinfo=timezone.utc)
    client = quick_client(server)
    assert client.observed_at is None

    fetched = client.fetch_active_events()

    assert fetched.observed_at == datetime(2026, 3, 1, 12, 30, 5, tzinfo=timezone.utc)
    assert fetched.observed_at.tzinfo is not None
    assert client.observed_at == fetched.observed_at


def test_rate_limiter_holds_calls_to_the_window():
    limiter = RateLimiter(5, window=1.0)
    started = time.monotonic()
    for _ in range(10):
        limiter.acquire()
    # The sixth call had to wait for the first to leave the window (a lower bound: the limiter
    # must hold calls back; how much longer a loaded machine takes is not its business).
    assert time.monotonic() - started >= 0.95


def test_rate_limiter_is_shared_safely_between_threads():
    limiter = RateLimiter(4, window=0.5)
    stamps: list[float] = []
    lock = threading.Lock()

    def worker():
        for _ in range(3):
            limiter.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stamps.sort()
    assert len(stamps) == 12
    # No 0.5 s window ever saw more than 4 calls.
    assert all(stamps[i + 4] - stamps[i] >= 0.49 for i in range(len(stamps) - 4))


def test_clob_market_info_of_a_known_and_an_unknown_market():
    from prescient_pipeline.polymarket.simulator import SimulatorServer, Universe

    universe = Universe(seed=3, events=20, start=datetime(2026, 3, 2, tzinfo=timezone.utc))
    condition = universe.gamma_markets(limit=1)[0]["conditionId"]
    with SimulatorServer(universe) as server, PolymarketClient(server.url, server.url, retries=0) as client:
        info = client.fetch_market_info(condition)
        assert info == universe.clob_market_info(condition) and set(info) == {"condition_id", "mos", "mts", "fd"}
        assert client.fetch_market_info("0x00") is None
