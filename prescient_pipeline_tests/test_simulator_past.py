"""The simulator's past (`--history-days`): markets that opened, traded and resolved before its
start, served as Gamma's closed listings and the CLOB's price history, and the same as what a
simulator serving those days live answered. Real HTTP, real PostgreSQL for the import."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest
import requests
from sqlalchemy import text

from prescient_pipeline.polymarket.client import PolymarketClient
from prescient_pipeline.polymarket.parser import parse_markets
from prescient_pipeline.polymarket.simulator import SimulatorServer, Universe
from prescient_pipeline.polymarket.simulator import state as world
from prescient_pipeline.services.market_history import import_history

SEED, EVENTS, HISTORY_DAYS = 7, 40, 14
START = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)  # the simulator's clock when built
EPOCH = START - timedelta(days=HISTORY_DAYS)  # 2026-11-06 12:00: its world's first instant
DAY_FROM, DAY_TO = date(2026, 11, 10), date(2026, 11, 19)  # the past ten days
LIVE_FROM = datetime(2026, 11, 12, 12, 0, tzinfo=timezone.utc)  # a live simulator of the same world
LIVE_HOURS = 5
UNLIMITED = {"gamma": 100_000, "clob": 100_000}


def _client(url: str) -> PolymarketClient:
    return PolymarketClient(url, url, timeout=(2, 10), retries=0, requests_per_10s=UNLIMITED)


def _closed_time(text_value: str) -> datetime:
    return datetime.strptime(text_value, "%Y-%m-%d %H:%M:%S+00").replace(tzinfo=timezone.utc)


def _parse(text_value: str) -> datetime:
    return datetime.fromisoformat(text_value.replace("Z", "+00:00"))


def _all_markets(universe: Universe, **filters) -> list[dict]:
    markets, offset = [], 0
    while page := universe.gamma_markets(limit=100, offset=offset, **filters):
        markets += page
        offset += len(page)
    return markets


def _tokens(market: dict) -> tuple[str, str]:
    yes, no = market["positionIds"] if market.get("version") == "v2" else json.loads(market["clobTokenIds"])
    return str(yes), str(no)


@pytest.fixture(scope="module")
def past() -> Universe:
    return Universe(seed=SEED, events=EVENTS, start=START, history_days=HISTORY_DAYS)


# --- the world ---------------------------------------------------------------------------------------


def test_a_world_with_a_past_is_the_world_begun_that_much_earlier(past):
    """Same seed, same epoch: one built 4 days after its epoch and run 10 days live answers as the
    one built 14 days after it; the clock starts at `start`, the world at the epoch."""
    assert (past.now, past.epoch) == (START, EPOCH)
    younger = Universe(seed=SEED, events=EVENTS, start=START - timedelta(days=10), history_days=4)
    assert younger.epoch == EPOCH
    younger.advance(10 * 24 * 60)
    assert younger.now == past.now
    assert _all_markets(younger) == _all_markets(past)
    tokens = [t for m in _all_markets(past)[:30] for t in _tokens(m)]
    assert younger.price_histories(tokens, None, None, "max", 60) == past.price_histories(tokens, None, None, "max", 60)
    # Built at 12:23, a past begins at 12:00 two days before: its hourly points fall on UTC hours.
    odd = Universe(seed=SEED, events=EVENTS, start=START + timedelta(minutes=23), history_days=2)
    assert (odd.epoch, odd.now) == (START - timedelta(days=2), START + timedelta(minutes=23))
    trading = next(m for m in _all_markets(odd, closed=False) if m["active"])
    points = odd.price_history(_tokens(trading)[0], None, None, "max", 60)
    assert len(points) > 2 * 24
    assert [p["t"] % 3600 for p in points[:-1]] == [0] * (len(points) - 1) and points[-1]["t"] == int(odd.now.timestamp())


def test_the_past_holds_markets_that_opened_traded_and_resolved(past):
    closed = _all_markets(past, closed=True)
    window_start = datetime.combine(DAY_FROM, datetime.min.time(), timezone.utc)
    in_window = [m for m in closed if window_start <= _closed_time(m["closedTime"]) < START]
    assert len(in_window) >= 50
    for market in closed:
        assert market["umaResolutionStatus"] == "resolved" and market["closed"] is True
        assert json.loads(market["outcomePrices"]) in (["1", "0"], ["0", "1"], ["0.5", "0.5"])
        assert EPOCH < _closed_time(market["closedTime"]) <= START
    finals = [tuple(json.loads(m["outcomePrices"])) for m in closed]
    assert finals.count(("1", "0")) > 10 and finals.count(("0", "1")) > 10
    assert 1 <= finals.count(("0.5", "0.5")) <= len(finals) * 0.05, "rarely 50/50"
    # Some resolved early: closed well before their end date (not only the 2-hour UMA window after it).
    early = [m for m in closed if _closed_time(m["closedTime"]) < _parse(m["endDate"])]
    assert len(early) >= 3
    # Some opened during the past (spawned after the epoch), and some of those already resolved.
    opened = [m for m in _all_markets(past) if _parse(m["startDate"]) > EPOCH]
    assert len(opened) > 100
    assert any(m["closed"] for m in opened)


def test_history_days_zero_keeps_the_world_of_every_seed():
    """A world without a past is the same world, whatever history a sibling was built with."""
    plain = Universe(seed=SEED, events=EVENTS, start=START)
    explicit = Universe(seed=SEED, events=EVENTS, start=START, history_days=0)
    assert plain.epoch == plain.start == START
    assert _all_markets(plain) == _all_markets(explicit)
    assert _all_markets(plain, closed=True) == []


# --- the CLOB's history ----------------------------------------------------------------------------------


def test_prices_history_never_runs_past_a_close_and_ends_at_the_final_price(past):
    closed = _all_markets(past, closed=True)
    tokens = {t: m for m in closed for t in _tokens(m)}
    histories = {}
    for chunk in [list(tokens)[k : k + 20] for k in range(0, len(tokens), 20)]:
        histories.update(past.price_histories(chunk, None, None, "max", 60))
    with_points = 0
    for token, market in tokens.items():
        points = histories[token]
        closed_at = int(_closed_time(market["closedTime"]).timestamp())
        assert points, f"{token} has a history"
        with_points += 1
        assert max(p["t"] for p in points) == points[-1]["t"] == closed_at
        final = [float(p) for p in json.loads(market["outcomePrices"])]
        assert points[-1]["p"] == final[_tokens(market).index(token)]
    assert with_points == len(tokens) > 300


def test_a_coarser_fidelity_keeps_the_points_its_grid_reads(past):
    market = next(m for m in _all_markets(past, closed=False) if _parse(m["startDate"]) < EPOCH)
    token = _tokens(market)[0]
    low, high = int(EPOCH.timestamp()), int(START.timestamp())
    hourly = past.price_history(token, low, high, None, 60)
    assert [p["t"] for p in hourly[:-1]] == list(range(low, high, 3600)), "hourly, then the current mid at `now`"
    twelve = past.price_history(token, low, high, None, 720)
    # EPOCH is 12:00, a multiple of 12 hours: every 12th hourly point, each the one a 12-hour grid reads.
    assert twelve == hourly[::12]
    assert past.price_history(token, low, high, None, 5) == hourly, "finer than hourly: the hourly points"


# --- over HTTP: what was served live is what the past serves -----------------------------------------


def _live_mids(url: str, tokens: list[str]) -> dict[datetime, dict[str, float]]:
    """The mids a live simulator served, hour by hour, through the client."""
    served = {}
    with _client(url) as client:
        for hour in range(LIVE_HOURS + 1):
            if hour:
                requests.post(f"{url}/__sim__/advance", params={"minutes": 60}, timeout=10).raise_for_status()
            served[LIVE_FROM + timedelta(hours=hour)] = client.fetch_midpoints(tokens)
    return served


def test_history_import_of_the_past_matches_what_was_served_live(engine, past):
    # A live simulator of the same world (same seed and epoch), from 2026-11-12 12:00, five hours.
    live = Universe(seed=SEED, events=EVENTS, start=LIVE_FROM, history_days=6)
    assert live.epoch == EPOCH
    trading = [m for m in _all_markets(live, closed=False) if m["active"]]
    ids_of = {t: (m["id"], side) for m in trading for side, t in zip(("yes", "no"), _tokens(m))}
    with SimulatorServer(live) as server:
        served = _live_mids(server.url, list(ids_of))
    assert len(served[LIVE_FROM]) == len(ids_of) > 150

    with SimulatorServer(past) as server, _client(server.url) as client:
        result = import_history(engine, client, DAY_FROM, DAY_TO, 60, None, now=past.now)
        gamma_closed = {m["market_id"]: m for m in parse_markets(_all_markets(past, closed=True)).markets}
        batch = requests.post(f"{server.url}/batch-prices-history", json={"markets": ["1", "2"] * 11}, timeout=10)
    assert batch.status_code == 400
    totals = result.totals()
    assert totals["days_imported"] == 10 and totals["markets"] > 200 and totals["resolutions"] >= 50

    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT market_id, ts, yes_price, no_price FROM market_snapshots WHERE source = 'history' "
            "AND ts BETWEEN :a AND :b"), {"a": LIVE_FROM, "b": LIVE_FROM + timedelta(hours=LIVE_HOURS)}).all()
        resolutions = conn.execute(text(
            "SELECT r.market_id, r.closed_time, r.winner, r.outcome_prices, r.uma_resolution_status, m.end_date "
            "FROM market_resolutions r JOIN markets m USING (market_id)")).all()
        after_close = conn.execute(text(
            "SELECT count(*) FROM market_snapshots s JOIN market_resolutions r USING (market_id) "
            "WHERE s.source = 'history' AND (s.ts > r.closed_time AND NOT s.closed OR s.ts >= r.closed_time + "
            "interval '1 hour')")).scalar()

    # Every hourly grid row of those five hours is the mid the live simulator served at that hour.
    imported = {(r.market_id, r.ts): (float(r.yes_price), float(r.no_price)) for r in rows}
    compared = 0
    for moment, mids in served.items():
        for token, mid in mids.items():
            market_id, side = ids_of[token]
            if (market_id, moment) in imported:
                assert imported[(market_id, moment)][side == "no"] == pytest.approx(mid, abs=1e-9), (market_id, moment)
                compared += 1
    assert compared == sum(len(m) for m in served.values()), "every market traded live has its history rows"

    # Resolutions inside the window, as Gamma states them now; some early, a 50/50 in this seed.
    window = (datetime(2026, 11, 10, tzinfo=timezone.utc), datetime(2026, 11, 20, tzinfo=timezone.utc))
    inside = [r for r in resolutions if window[0] <= r.closed_time < window[1]]
    assert len(inside) >= 50
    assert {r.winner for r in inside} == {"YES", "NO", "SPLIT"}
    assert any(r.closed_time < r.end_date - timedelta(hours=3) for r in inside), "resolved early"
    for r in inside:
        assert r.uma_resolution_status == "resolved"
        assert r.closed_time == gamma_closed[r.market_id]["closed_time"]
    assert after_close == 0, "no history row after a market's close but the one saying it closed"


# --- Gamma's closed listings ----------------------------------------------------------------------------


def test_markets_listing_bounds_by_end_date_start_date_and_volume(past):
    everything = _all_markets(past)
    low, latest_start = datetime(2026, 11, 15, tzinfo=timezone.utc), datetime(2026, 11, 10, tzinfo=timezone.utc)
    filters = {"closed": True, "end_date_min": "2026-11-15T00:00:00Z", "start_date_max": "2026-11-10T00:00:00Z",
               "volume_num_min": 50_000}
    chosen = _all_markets(past, **filters)
    expected = [m for m in everything if m["closed"] and _parse(m["endDate"]) >= low
                and _parse(m["startDate"]) <= latest_start and m["volumeNum"] >= 50_000]
    assert [m["id"] for m in chosen] == [m["id"] for m in expected] and len(chosen) >= 5
    ids = [int(m["id"]) for m in chosen]
    assert ids == sorted(ids)
    assert [m["id"] for m in past.gamma_markets(order="id", ascending=False, limit=3)] == [m["id"] for m in everything[::-1][:3]]
    ends = [_parse(m["endDate"]) for m in past.gamma_markets(order="end_date", limit=100)]
    assert ends == sorted(ends)
    assert past.gamma_markets(archived=True) == []
    with SimulatorServer(past) as server:
        answer = requests.get(f"{server.url}/markets", params={**filters, "closed": "true", "limit": 100}, timeout=10)
        assert [m["id"] for m in answer.json()] == [m["id"] for m in expected][:100]
        for params in ({"volume_num_min": "lots"}, {"order": "title"}, {"end_date_min": "soon"}):
            assert requests.get(f"{server.url}/markets", params=params, timeout=10).status_code == 422


def test_batch_prices_history_answers_as_the_single_form_and_refuses_bad_bodies(past):
    market = next(m for m in _all_markets(past, closed=True))
    yes, no = _tokens(market)
    window = {"start_ts": int(EPOCH.timestamp()), "end_ts": int(START.timestamp()), "fidelity": 60}
    with SimulatorServer(past) as server:
        batch = requests.post(f"{server.url}/batch-prices-history", json={"markets": [yes, no, "5"], **window},
                              timeout=10)
        single = requests.get(f"{server.url}/prices-history", timeout=10, params={
            "market": no, "startTs": window["start_ts"], "endTs": window["end_ts"], "fidelity": 60})
        assert batch.status_code == 200 and single.status_code == 200
        assert batch.json()["history"][no] == single.json()["history"] and batch.json()["history"]["5"] == []
        assert [p["p"] for p in batch.json()["history"][no]] == pytest.approx(
            [1 - p["p"] for p in batch.json()["history"][yes]])
        for body in ({"markets": []}, {"markets": [yes] * 21}, {"markets": [yes], "start_ts": "x"}, [yes],
                     {"markets": [yes], "fidelity": 1.5}):
            assert requests.post(f"{server.url}/batch-prices-history", json=body, timeout=10).status_code == 400


# --- the offline world keeps its past ----------------------------------------------------------------------


def test_the_offline_world_state_keeps_history_days(tmp_path, past):
    world.save(tmp_path, world.WorldState.new(SEED, EVENTS, START, history_days=HISTORY_DAYS))
    stored = world.load(tmp_path)
    assert stored.history_days == HISTORY_DAYS
    rebuilt = stored.universe(until=START)
    assert rebuilt.epoch == EPOCH and _all_markets(rebuilt, closed=True) == _all_markets(past, closed=True)
    # A state written before history_days existed is a world without a past.
    data = json.loads(world.state_path(tmp_path).read_text())
    del data["history_days"]
    world.state_path(tmp_path).write_text(json.dumps(data))
    assert world.load(tmp_path).history_days == 0


def test_history_days_out_of_range_is_a_one_line_error(capsys):
    from prescient_pipeline.cli import main

    assert main(["simulator", "serve", "--history-days", "-1"]) == 2
    assert capsys.readouterr().err.strip() == "error: --history-days must be between 0 and 366, not -1"
    with pytest.raises(ValueError):
        Universe(seed=1, events=5, history_days=367)


@pytest.mark.slow
def test_the_demo_and_dev_offline_keep_the_past(engine, tmp_path, monkeypatch):
    import dagster as dg

    from prescient_pipeline.cli.dev_commands import offline_world
    from prescient_pipeline.config import settings
    from prescient_pipeline.defs.demo import run_demo
    from prescient_pipeline.errors import InputError

    monkeypatch.setenv("PRESCIENT_HOME", str(tmp_path))
    with dg.instance_for_test() as instance:
        result = run_demo(instance, engine, days=1, seed=SEED, events=EVENTS, reset=False,
                          exports_dir=tmp_path / "out", progress=lambda _: None, history_days=3)
    stored = world.load(settings().home)
    assert (stored.start, stored.history_days) == (result.start, 3)
    # `prescient dev --offline` rebuilds the very world, past included, and refuses another past.
    state, universe = offline_world(settings().home, engine)
    assert state.history_days == 3 and universe.epoch == result.start - timedelta(days=3)
    assert any(_closed_time(m["closedTime"]) < result.start for m in _all_markets(universe, closed=True))
    with pytest.raises(InputError, match=r"40 events \(3 days of history\), not --history-days 5"):
        offline_world(settings().home, engine, history_days=5)
