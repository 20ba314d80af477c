"""The market data assets against recorded real markets, served over HTTP by the replay server.

The 227 active events of the-boshi's 2025-11-10 dump, paged by 100 with one event listed twice,
behind a 429 and a 503; then an outage; then a listing that collapses to a handful of events.
"""

import dagster as dg
import pytest
from sqlalchemy import text

from prescient_pipeline.polymarket.parser import parse_events
from prescient_pipeline_tests.replay_server import ReplayServer, events_from_recorded_markets

from .helpers import run_job

ACTIVE_MARKETS = "the-boshi__polymarket-db/markets_2025-11-10.jsonl"
MARKETS = dg.AssetKey("polymarket_markets")
EVENTS = dg.AssetKey("polymarket_events")


@pytest.fixture(scope="module")
def recorded_events(polymarket_data) -> list[dict]:
    """The recorded events, with two markets of the largest event made unusable the way Gamma
    lists placeholders (no token ids yet, no prices yet), since every recorded market is usable."""
    events = events_from_recorded_markets(polymarket_data / ACTIVE_MARKETS)
    largest = max(range(len(events)), key=lambda i: len(events[i]["markets"]))
    markets = [dict(m) for m in events[largest]["markets"]]
    markets[0].pop("clobTokenIds")
    markets[1]["outcomePrices"] = ""
    events[largest] = {**events[largest], "markets": markets}
    return events


@pytest.fixture
def server(recorded_events, monkeypatch):
    with ReplayServer(events=recorded_events) as replay:
        monkeypatch.setenv("PRESCIENT_GAMMA_URL", replay.url)
        monkeypatch.setenv("PRESCIENT_CLOB_URL", replay.url)
        # The production retry policy, with tiny waits so an outage fails in well under a second.
        monkeypatch.setenv("PRESCIENT_HTTP_RETRIES", "3")
        monkeypatch.setenv("PRESCIENT_HTTP_BACKOFF", "0.01")
        yield replay


def dump(engine, table: str, key: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY {key}"))]


def served_listing(events: list[dict], duplicate_id: str, position: int) -> list[dict]:
    """What the server lists across its pages: ordered by id, one event twice."""
    listing = sorted(events, key=lambda e: int(e["id"]))
    twin = next(e for e in listing if e["id"] == duplicate_id)
    listing.insert(position, twin)
    return listing


def latest_metadata(instance, key: dg.AssetKey) -> dict:
    event = instance.get_latest_materialization_event(key)
    return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def refresh_once_with_retries_and_a_duplicate(engine, server, recorded_events, instance):
    by_id = sorted(recorded_events, key=lambda e: int(e["id"]))
    duplicate_id = by_id[99]["id"]
    server.insert_duplicate(duplicate_id, 100)  # ends page one and starts page two
    server.fail_next([429, 503])
    result = run_job("refresh_markets_job", instance)
    return result, served_listing(recorded_events, duplicate_id, 100)


def test_recorded_markets_refresh_through_retries_and_a_repeated_event(engine, server, recorded_events):
    with dg.instance_for_test() as instance:
        result, listing = refresh_once_with_retries_and_a_duplicate(engine, server, recorded_events, instance)
        assert result.success
        events_meta = latest_metadata(instance, EVENTS)
        markets_meta = latest_metadata(instance, MARKETS)

    expected = parse_events(listing)  # the parser's own verdict on exactly what was served
    assert len(expected.events) == 227 and expected.duplicates >= 1

    # Each event and each usable market exactly once; one snapshot per usable market.
    event_rows = dump(engine, "events", "event_id")
    market_rows = dump(engine, "markets", "market_id")
    assert [r[0] for r in event_rows] == sorted(e["event_id"] for e in expected.events)
    assert sorted(r[0] for r in market_rows) == sorted(m["market_id"] for m in expected.markets)
    assert len({r[0] for r in market_rows}) == len(market_rows) == len(expected.markets)
    with engine.connect() as conn:
        snaps = conn.execute(text("SELECT count(*), count(DISTINCT market_id), count(DISTINCT ts) "
                                  "FROM market_snapshots")).one()
        stored_events = {r.event_id: tuple(r) for r in conn.execute(text(
            "SELECT event_id, title, description, tags, neg_risk, end_date, market_count FROM events"))}
        stored_markets = {r.market_id: tuple(r) for r in conn.execute(text(
            "SELECT market_id, event_id, question, outcomes, clob_token_ids, yes_token_id, end_date, "
            "yes_price::float8, volume_24hr::float8 FROM markets"))}
    assert tuple(snaps) == (len(expected.markets), len(expected.markets), 1)
    # Real text (quotes, newlines, unicode in descriptions; 77-digit token ids) comes back as parsed.
    assert stored_events == {e["event_id"]: (e["event_id"], e["title"], e["description"], e["tags"], e["neg_risk"],
                                             e["end_date"], e["market_count"]) for e in expected.events}
    assert {k: v[:7] for k, v in stored_markets.items()} == {
        m["market_id"]: (m["market_id"], m["event_id"], m["question"], m["outcomes"], m["clob_token_ids"],
                         m["yes_token_id"], m["end_date"]) for m in expected.markets}
    for m in expected.markets:  # NUMERIC(12, 8) prices and NUMERIC(20, 6) volumes round the floats
        yes_price, volume_24hr = stored_markets[m["market_id"]][7:]
        assert yes_price == pytest.approx(m["yes_price"], abs=1e-8)
        if m["volume_24hr"] is None:
            assert volume_24hr is None, "missing stays unknown, not 0"
        else:
            assert volume_24hr == pytest.approx(m["volume_24hr"], abs=1e-6)
    assert any("\n" in (e["description"] or "") for e in expected.events)

    # The 429 and the 503 were retried on the first page; then paging went on to an empty page.
    offsets = [r.param("offset") for r in server.requests_to("/events")]
    assert offsets == ["0", "0", "0", "100", "200", "228"]

    assert events_meta["events"] == 227
    assert events_meta["pages"] == 4
    assert events_meta["duplicates_dropped"] == expected.duplicates
    assert markets_meta["markets"] == markets_meta["snapshots"] == len(expected.markets)
    assert expected.rejected == {"missing_token_ids": 1, "missing_prices": 1}
    assert markets_meta["rejected_total"] == sum(expected.rejected.values())
    reported = {k.removeprefix("rejected_"): v for k, v in markets_meta.items()
                if k.startswith("rejected_") and k != "rejected_total"}
    assert reported == dict(expected.rejected)

    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks["unique_market_ids"] and checks["market_count_not_collapsed"]


def test_an_outage_fails_the_run_with_one_line_and_leaves_the_tables_as_they_were(
    engine, server, recorded_events
):
    with dg.instance_for_test() as instance:
        first, _ = refresh_once_with_retries_and_a_duplicate(engine, server, recorded_events, instance)
        assert first.success
        before = {t: dump(engine, t, k) for t, k in
                  [("events", "event_id"), ("markets", "market_id"), ("market_snapshots", "snapshot_id")]}
        materializations = instance.fetch_materializations(MARKETS, limit=10).records

        server.clear_requests()
        server.fail_always(500)
        result = run_job("refresh_markets_job", instance)

        assert not result.success
        failures = result.get_step_failure_events()
        assert [f.step_key for f in failures] == ["polymarket_market_data"]
        error = failures[0].step_failure_data.error
        cause = error.cause or error
        assert cause.cls_name == "PolymarketError"
        message = cause.message.strip()
        assert "\n" not in message
        assert "Polymarket gamma GET /events?active=true" in message
        assert "HTTP 500 after 3 retries" in message and "scripted outage" in message
        assert len(server.requests) == 4, "the first page, tried four times, and nothing after"
        assert len(instance.fetch_materializations(MARKETS, limit=10).records) == len(materializations)

    after = {t: dump(engine, t, k) for t, k in
             [("events", "event_id"), ("markets", "market_id"), ("market_snapshots", "snapshot_id")]}
    assert after == before
    assert len(before["market_snapshots"]) == len(before["markets"]) > 0


def test_a_collapsed_listing_fails_the_blocking_count_check(engine, server, recorded_events):
    with dg.instance_for_test() as instance:
        assert run_job("refresh_markets_job", instance).success
        before = dump(engine, "markets", "market_id")
        full = len(before)

        server.events = sorted(recorded_events, key=lambda e: int(e["id"]))[:5]
        result = run_job("refresh_markets_job", instance)

    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    collapse = evaluations["market_count_not_collapsed"]
    assert not collapse.passed
    assert collapse.severity == dg.AssetCheckSeverity.ERROR
    assert collapse.metadata["previous"].value == full
    assert collapse.metadata["markets"].value < full / 2
    # Blocking with ERROR severity: the step, and with it the run, fails, before anything of
    # the refresh is written.
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "market_count_not_collapsed" in failure.message and "nothing written" in failure.message
    assert dump(engine, "markets", "market_id") == before
    # The other checks are about price sanity and still pass on the small listing.
    assert all(e.passed for name, e in evaluations.items() if name != "market_count_not_collapsed")
