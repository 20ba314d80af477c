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
