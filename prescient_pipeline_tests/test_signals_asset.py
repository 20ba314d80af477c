"""portfolio_signals for a past day reads that day's snapshots, never later prices."""

from datetime import datetime, timedelta, timezone

import dagster as dg
from sqlalchemy import text

from prescient_pipeline.defs import runner
from prescient_pipeline.services import portfolios as svc
from prescient_pipeline.services.signals import as_of_for, cycle_time_of_day

from .helpers import simulator


def test_past_day_partition_uses_that_days_snapshots(engine, monkeypatch):
    day = (datetime.now(timezone.utc) - timedelta(days=5)).date()
    cycle = datetime.combine(day, cycle_time_of_day())
    with simulator(monkeypatch, start=cycle - timedelta(hours=1)) as sim, dg.instance_for_test() as instance:
        pid = svc.create_portfolio(engine, svc.NewPortfolio.parse(
            name="replay", strategy="momentum", balance="10000"))["portfolio_id"]
        runner.refresh(instance)                  # observed an hour before the cycle time
        sim.universe.advance(3 * 24 * 60)
        runner.refresh(instance)                  # three days later: prices have moved
        runner.signals(instance, day, pid)
    assert as_of_for(day) == cycle
    with engine.connect() as conn:
        rows = conn.execute(text(
            """
            SELECT s.market_id, s.side, s.price_seen, s.as_of,
                   (SELECT CASE WHEN s.side = 'YES' THEN yes_price ELSE no_price END FROM market_snapshots
                     WHERE market_id = s.market_id AND ts <= s.as_of ORDER BY ts DESC LIMIT 1) AS then_price,
                   (SELECT CASE WHEN s.side = 'YES' THEN yes_price ELSE no_price END FROM markets m
                     WHERE m.market_id = s.market_id) AS current_price
            FROM trading_signals s WHERE s.cycle_date = :day
            """
        ), {"day": day}).all()
    assert rows, "momentum signals on the replayed day"
    assert all(r.as_of == cycle for r in rows)
    assert all(r.price_seen == r.then_price for r in rows), "priced from the snapshot at or before the cycle time"
    assert any(r.price_seen != r.current_price for r in rows), "current prices differ, and were not used"


def test_a_days_portfolios_share_one_universe_read_in_one_run(engine, monkeypatch):
    """Three portfolios' partitions of a day in one run: the universe is read once, each partition
    gets its own materialization and metadata, and the signals equal those of separate runs."""
    from prescient_pipeline.services import signals as signals_service

    reads = []
    real_read = signals_service.universe_as_of
    monkeypatch.setattr(signals_service, "universe_as_of", lambda *a, **k: reads.append(a[1]) or real_read(*a, **k))
    with simulator(monkeypatch, events=60) as sim, dg.instance_for_test() as instance:
        day = sim.universe.now.date()
        ids = [svc.create_portfolio(engine, svc.NewPortfolio.parse(
            name=f"shared {kind}", strategy=kind, balance="10000"))["portfolio_id"]
            for kind in ("momentum", "mean_reversion", "hybrid")]
        runner.refresh(instance)
        run_id = runner.signals(instance, day, ids)
        assert len(reads) == 1, "one universe read for the whole day"
        together = _signals(engine)

        for pid in ids:  # now each alone, as separate runs would
            runner.signals(instance, day, pid)
        assert len(reads) == 1 + len(ids)
        assert _signals(engine) == together

        events = instance.fetch_materializations(dg.AssetKey("portfolio_signals"), limit=100).records
        in_run = {r.partition_key: r.asset_materialization.metadata for r in events if r.run_id == run_id}
    assert set(in_run) == {f"{day}|{pid}" for pid in ids}
    for pid in ids:
        metadata = in_run[f"{day}|{pid}"]
        assert metadata["portfolio_id"].value == pid
        assert metadata["signals"].value == sum(1 for s in together if s[0] == pid)
    assert sum(m["signals"].value for m in in_run.values()) > 0


def _signals(engine) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT portfolio_id, market_id, side, amount, price_seen FROM trading_signals "
            "WHERE NOT executed ORDER BY portfolio_id, market_id, side"))]


def test_the_daily_cycles_run_skips_a_portfolio_on_its_own_cadence_inside_its_range(engine, monkeypatch):
    from prescient_pipeline.defs.strategy import CYCLE_TAG, day_range_tags

    with simulator(monkeypatch, events=60) as sim, dg.instance_for_test() as instance:
        day = sim.universe.now.date()
        first, cadence, last = (svc.create_portfolio(engine, svc.NewPortfolio.parse(
            name=name, strategy="momentum", balance="10000", config=config))["portfolio_id"]
            for name, config in (("first", None), ("cadence", {"cycle_cron": "0 */4 * * *"}), ("last", None)))
        runner.refresh(instance)
        for pid in (first, cadence, last):
            runner.register_portfolio(instance, pid)
        runner._run("portfolio_signals_job", instance, tags={CYCLE_TAG: str(day), **day_range_tags(day, [first, last])})
        records = instance.fetch_materializations(dg.AssetKey("portfolio_signals"), limit=100).records
    metadata = {r.partition_key: r.asset_materialization.metadata for r in records}
    assert "own cycle_cron" in metadata[f"{day}|{cadence}"]["skipped"].value
    assert metadata[f"{day}|{first}"]["signals"].value > 0 and metadata[f"{day}|{last}"]["signals"].value > 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM trading_signals WHERE portfolio_id = :p"),
                            {"p": cadence}).scalar() == 0
