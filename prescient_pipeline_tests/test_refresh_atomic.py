"""A market refresh is all or nothing: its blocking check runs before the commit, so a refresh
that collapses writes nothing and the previous refresh stays the universe and the baseline."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import pytest

from prescient_pipeline.polymarket.client import PolymarketClient
from prescient_pipeline.services.market_checks import RefreshRejected
from prescient_pipeline.services.market_refresh import refresh_markets
from prescient_pipeline.services.market_store import universe_as_of

from .helpers import run_job
from .replay_server import ReplayServer
from .test_execution import T0, rows, wire_market

MARKETS = [str(8000 + i) for i in range(20)]


def events(malformed: int = 0) -> list[dict]:
    """Ten events of two markets each; the first `malformed` markets lose their id (a market
    the parser must reject), as a page of broken records would."""
    listed = []
    for i, market_id in enumerate(MARKETS):
        market = wire_market(market_id, "0.4", "0.6", bid="0.39", ask="0.41", event_id=str(90000 + i // 2))
        if i < malformed:
            del market["id"]
        listed.append(market)
    return [{"id": str(90000 + k), "title": f"Event {k}", "active": True, "closed": False,
             "markets": [m for m in listed[2 * k:2 * k + 2]]} for k in range(10)]


def stored(engine) -> dict:
    return {
        "events": rows(engine, "SELECT * FROM events ORDER BY event_id"),
        "markets": rows(engine, "SELECT * FROM markets ORDER BY market_id"),
        "snapshots": rows(engine, "SELECT * FROM market_snapshots ORDER BY snapshot_id"),
    }


def test_a_collapsed_refresh_writes_nothing_and_the_previous_one_stays_the_baseline(engine, monkeypatch):
    with ReplayServer(events=events(), now=T0) as server, dg.instance_for_test() as instance:
        monkeypatch.setenv("PRESCIENT_GAMMA_URL", server.url)
        monkeypatch.setenv("PRESCIENT_CLOB_URL", server.url)
        assert run_job("refresh_markets_job", instance).success
        before = stored(engine)
        assert len(before["markets"]) == 20 and len(before["snapshots"]) == 20

        # 12 of 20 markets arrive malformed: 8 < 0.5 * 20 is a collapse.
        server.events, server.now = events(malformed=12), T0 + timedelta(hours=1)
        result = run_job("refresh_markets_job", instance)

        assert not result.success
        failure = result.get_step_failure_events()[0].step_failure_data.error.message
        assert "market_count_not_collapsed" in failure and "nothing written" in failure
        assert stored(engine) == before, "events, markets and snapshots untouched"
        # The checks still show in the UI, as computed before the rollback.
        checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
        collapse = checks["market_count_not_collapsed"]
        assert not collapse.passed
        assert (collapse.metadata["markets"].value, collapse.metadata["previous"].value) == (8, 20)
        assert checks["unique_market_ids"].passed
        assert result.get_asset_materialization_events() == []

        # The universe and the next comparison's baseline are still the 20 markets of T0.
        assert sorted(universe_as_of(engine, T0 + timedelta(hours=2)).market_id) == MARKETS
        server.events, server.now = events(malformed=2), T0 + timedelta(hours=2)
        again = run_job("refresh_markets_job", instance)
        assert again.success
        checks = {e.check_name: e for e in again.get_asset_check_evaluations()}
        assert checks["market_count_not_collapsed"].metadata["previous"].value == 20
        assert checks["market_count_not_collapsed"].metadata["markets"].value == 18


def test_the_service_raises_and_rolls_back_on_a_failed_blocking_check(engine):
    with ReplayServer(events=events(), now=T0) as server:
        with PolymarketClient(server.url, server.url, retries=0) as client:
            first = refresh_markets(engine, client)
        assert {c.name: c.passed for c in first.checks} == {
            "prices_in_unit_interval": True, "yes_no_sum_near_one": True, "unique_market_ids": True,
            "market_count_not_collapsed": True}
        before = stored(engine)
        server.events, server.now = events(malformed=15), T0 + timedelta(hours=1)
        with PolymarketClient(server.url, server.url, retries=0) as client:
            with pytest.raises(RefreshRejected) as rejected:
                refresh_markets(engine, client)
    assert "5 markets now, 20 in the previous refresh" in str(rejected.value)
    assert stored(engine) == before
