"""archive_signals_job moves old signals to signal_archives, in one transaction, once."""

from datetime import datetime, timedelta, timezone

import dagster as dg
from sqlalchemy import text

from prescient_pipeline.db.history_partitions import ensure_partitions
from prescient_pipeline.services import portfolios as svc

from .helpers import run_job


def test_old_signals_move_to_the_archive(engine):
    pid = svc.create_portfolio(engine, svc.NewPortfolio.parse(name="a", strategy="momentum", balance="100"))["portfolio_id"]
    now = datetime.now(timezone.utc)
    ensure_partitions(engine, now)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO market_snapshots (market_id, ts) VALUES ('m', :now)"), {"now": now})
        for days, executed in ((60, True), (45, False), (2, False)):
            at = now - timedelta(days=days)
            conn.execute(text(
                "INSERT INTO trading_signals (portfolio_id, strategy_type, cycle_date, as_of, market_id, side, amount, executed) "
                "VALUES (:p, 'momentum', :d, :at, 'm', 'YES', 10, :e)"), {"p": pid, "d": at.date(), "at": at, "e": executed})
    with dg.instance_for_test() as instance:
        assert run_job("archive_signals_job", instance).success
        assert run_job("archive_signals_job", instance).success  # nothing left to move
    with engine.connect() as conn:
        kept = conn.execute(text("SELECT cycle_date FROM trading_signals")).scalars().all()
        archived = conn.execute(text("SELECT cycle_date, executed FROM signal_archives ORDER BY cycle_date")).all()
    assert kept == [(now - timedelta(days=2)).date()]
    assert [a.executed for a in archived] == [True, False] and len(archived) == 2
