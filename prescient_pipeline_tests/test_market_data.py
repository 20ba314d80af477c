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


def test_a_refresh_never_overwrites_a_later_price_update(engine, monkeypatch):
    from datetime import timedelta

    from prescient_pipeline.services.market_store import write_market_updates

    with simulator(monkeypatch) as sim, dg.instance_for_test() as instance:
        assert run_job("refresh_markets_job", instance).success
        with engine.connect() as conn:
            market_id = conn.execute(text("SELECT min(market_id) FROM markets")).scalar()
        # A price update observed ten minutes on commits before a refresh that fetched at five.
        later = sim.universe.now + timedelta(minutes=10)
        with engine.begin() as conn:
            write_market_updates(conn, [{"market_id": market_id, "yes_price": 0.123, "no_price": 0.877,
                                         "best_bid": 0.12, "best_ask": 0.126}], later, "clob")
        sim.universe.advance(5)
        assert run_job("refresh_markets_job", instance).success
        with engine.connect() as conn:
            kept = conn.execute(text("SELECT yes_price, updated_at FROM markets WHERE market_id = :m"),
                                {"m": market_id}).one()
            others = conn.execute(text("SELECT count(*) FROM markets WHERE updated_at = :t"),
                                  {"t": sim.universe.now}).scalar()
            history = conn.execute(text(
                "SELECT source, ts FROM market_snapshots WHERE market_id = :m ORDER BY ts"), {"m": market_id}).all()
    assert (float(kept.yes_price), kept.updated_at) == (0.123, later)
    assert others == counts(engine)["markets"] - 1
    assert [s for s, _ in history] == ["gamma", "gamma", "clob"], "the refresh still adds its snapshot"


def test_the_universe_takes_books_from_price_updates_and_the_rest_from_gamma(engine, monkeypatch):
    from datetime import timedelta

    from prescient_pipeline.services.market_store import write_market_updates

    with simulator(monkeypatch) as sim, dg.instance_for_test() as instance:
        assert run_job("refresh_markets_job", instance).success
        refreshed_at = sim.universe.now
    before = universe_as_of(engine, refreshed_at).set_index("market_id")
    booked, resolved = before.index[0], before.index[1]
    # A price update five minutes on: a book for one held market, Gamma's word for another.
    later = refreshed_at + timedelta(minutes=5)
    with engine.begin() as conn:
        write_market_updates(conn, [{"market_id": booked, "yes_price": 0.3, "no_price": 0.7,
                                     "best_bid": 0.29, "best_ask": 0.31}], later, "clob")
        write_market_updates(conn, [{"market_id": resolved, "yes_price": 1.0, "no_price": 0.0,
                                     "best_bid": None, "best_ask": None, "liquidity": 0.0, "volume": 1.0,
                                     "volume_24hr": 0.0, "active": True, "closed": True}], later, "gamma_update")

    after = universe_as_of(engine, later).set_index("market_id")
    assert len(after) == len(before)
    b = after.loc[booked]
    assert (b.yes_price, b.best_bid, b.best_ask, b.observed_at) == (0.3, 0.29, 0.31, later)
    # What only Gamma says stays as the refresh said it, not NULL from the book's snapshot.
    for col in ("liquidity", "volume", "volume_24hr", "active", "closed"):
        assert str(b[col]) == str(before.loc[booked, col]), col  # str: NaN equals NaN
    assert b.liquidity > 0 and b.active
    r = after.loc[resolved]
    assert (r.yes_price, r.closed, r.liquidity, r.observed_at) == (1.0, True, 0.0, later)
    # Unchanged markets are as they were.
    assert after.drop([booked, resolved]).yes_price.equals(before.drop([booked, resolved]).yes_price)
