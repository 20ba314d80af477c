"""polymarket_events / polymarket_markets against the simulator, over real HTTP."""

import dagster as dg
from sqlalchemy import text

from prescient_pipeline.services.market_store import universe_as_of

from .helpers import run_job, simulator


def counts(engine):
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar()
                for t in ("events", "markets", "market_snapshots")}


def test_refresh_fills_tables_then_updates_in_place(engine, monkeypatch):
    with simulator(monkeypatch) as sim, dg.instance_for_test() as instance:
        result = run_job("refresh_markets_job", instance)
        assert result.success
        first = counts(engine)
        open_events = sim.universe.open_event_count
        assert first["events"] == open_events
        assert first["markets"] > open_events and first["market_snapshots"] == first["markets"]

        mat = instance.get_latest_materialization_event(dg.AssetKey("polymarket_markets")).asset_materialization
        assert mat.metadata["markets"].value == first["markets"]
        assert "top_markets_by_volume_24hr" in mat.metadata
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        assert checks == {"prices_in_unit_interval": True, "yes_no_sum_near_one": True,
                          "unique_market_ids": True, "market_count_not_collapsed": True}

        with engine.connect() as conn:
            before = dict(conn.execute(text("SELECT market_id, yes_price FROM markets")).all())
        sim.universe.advance(120)
        assert run_job("refresh_markets_job", instance).success
        second = counts(engine)
        with engine.connect() as conn:
            after = dict(conn.execute(text("SELECT market_id, yes_price FROM markets")).all())
            latest_batch = conn.execute(text(
                "SELECT count(*) FROM market_snapshots WHERE ts = (SELECT max(ts) FROM market_snapshots)"
            )).scalar()
            per_market = conn.execute(text(
                "SELECT count(*) FROM (SELECT market_id FROM market_snapshots GROUP BY market_id HAVING count(*) = 2) s"
            )).scalar()
    assert set(before) <= set(after), "existing rows are kept and updated in place"
    assert sum(before[m] != after[m] for m in before) > len(before) // 2, "prices moved"
    assert second["market_snapshots"] - first["market_snapshots"] == latest_batch
    assert per_market >= 0.9 * len(before), "one more snapshot per market"


def test_universe_as_of_a_past_time_reads_that_times_snapshots(engine, monkeypatch):
    with simulator(monkeypatch) as sim, dg.instance_for_test() as instance:
        run_job("refresh_markets_job", instance)
        t1 = sim.universe.now
        sim.universe.advance(24 * 60)
        run_job("refresh_markets_job", instance)
    past, now = universe_as_of(engine, t1), universe_as_of(engine, sim.universe.now)
    with engine.connect() as conn:
        first_refresh = dict(conn.execute(text(
            "SELECT market_id, yes_price FROM market_snapshots WHERE ts = (SELECT min(ts) FROM market_snapshots)"
        )).all())
    assert set(past.market_id) == set(first_refresh)
    assert all(abs(float(first_refresh[m]) - p) < 1e-9 for m, p in zip(past.market_id, past.yes_price))
    assert (past.observed_at <= t1).all() and (now.observed_at > t1).all()


def test_two_refreshes_at_the_same_server_time_stay_two_refreshes(engine, monkeypatch):
    # The simulator's clock stands still between the runs, as the Date header's second does
    # when two refreshes come close together: the second must not merge into the first.
    with simulator(monkeypatch) as sim, dg.instance_for_test() as instance:
        first = run_job("refresh_markets_job", instance)
        second = run_job("refresh_markets_job", instance)
        markets = counts(engine)["markets"]
        with engine.connect() as conn:
            stamps = conn.execute(text(
                "SELECT ts, count(*) FROM market_snapshots WHERE source = 'gamma' GROUP BY ts ORDER BY ts"
            )).all()
    assert first.success and second.success
    assert [n for _, n in stamps] == [markets, markets]
    assert stamps[0][0] == sim.universe.now < stamps[1][0]
    checks = {e.check_name: e for e in second.get_asset_check_evaluations()}
    assert checks["unique_market_ids"].passed
    assert checks["market_count_not_collapsed"].metadata["markets"].value == markets
    assert checks["market_count_not_collapsed"].metadata["previous"].value == markets
