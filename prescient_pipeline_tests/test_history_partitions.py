"""market_snapshots partitioned by day: existing history migrates, writers create what they need."""

from datetime import date, datetime, timedelta, timezone
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from prescient_pipeline.db import embedded, migrate
from prescient_pipeline.db.engine import get_engine
from prescient_pipeline.db.history_partitions import ensure_partitions, existing_days, partition_name
from prescient_pipeline.db.urls import with_database

DAY = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def scratch_engine(database_url):
    name = f"prescient_migrate_{uuid.uuid4().hex[:8]}"
    embedded.ensure_database(database_url, name)
    engine = get_engine(with_database(database_url, name))
    yield engine
    engine.dispose()
    embedded.drop_database(database_url, name)


def test_existing_history_moves_into_its_days_partitions(scratch_engine):
    migrate.upgrade(scratch_engine, "0004")
    rows = [("a", DAY, "gamma"), ("b", DAY, "gamma"), ("a", DAY + timedelta(minutes=5), "clob"),
            ("a", DAY + timedelta(days=1), "gamma")]
    with scratch_engine.begin() as conn:
        for market, ts, source in rows:
            conn.execute(text("INSERT INTO market_snapshots (market_id, ts, yes_price, source) "
                              "VALUES (:m, :ts, 0.5, :s)"), {"m": market, "ts": ts, "s": source})
        before = conn.execute(text("SELECT snapshot_id, market_id, ts, source FROM market_snapshots "
                                   "ORDER BY snapshot_id")).all()

    migrate.upgrade(scratch_engine)

    with scratch_engine.begin() as conn:
        after = conn.execute(text("SELECT snapshot_id, market_id, ts, source FROM market_snapshots "
                                  "ORDER BY snapshot_id")).all()
        assert after == before
        assert existing_days(conn) == {date(2026, 3, 2), date(2026, 3, 3)}
        placed = conn.execute(text("SELECT tableoid::regclass::text, count(*) FROM market_snapshots "
                                   "GROUP BY 1 ORDER BY 1")).all()
        assert placed == [(partition_name(date(2026, 3, 2)), 3), (partition_name(date(2026, 3, 3)), 1)]
        # Two full refreshes (two Gamma timestamps): 2 markets, then 1.
        assert conn.execute(text("SELECT ts, markets FROM market_refreshes ORDER BY ts")).all() == [
            (DAY, 2), (DAY + timedelta(days=1), 1)]
        # New rows keep numbering after the migrated ones.
        new_id = conn.execute(text("INSERT INTO market_snapshots (market_id, ts) VALUES ('c', :ts) "
                                   "RETURNING snapshot_id"), {"ts": DAY}).scalar()
        assert new_id > max(r.snapshot_id for r in before)


def test_writers_create_their_days_and_two_ahead_and_nothing_lands_outside(engine):
    far = datetime(2031, 5, 17, 23, 59, tzinfo=timezone.utc)
    with engine.begin() as conn, pytest.raises(DBAPIError, match="no partition"):
        conn.execute(text("INSERT INTO market_snapshots (market_id, ts) VALUES ('m', :ts)"), {"ts": far})
    created = ensure_partitions(engine, far)
    assert created == [date(2031, 5, 17), date(2031, 5, 18), date(2031, 5, 19)]
    assert ensure_partitions(engine, far) == []  # once
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO market_snapshots (market_id, ts) VALUES ('m', :ts)"), {"ts": far})
        assert conn.execute(text("SELECT tableoid::regclass::text FROM market_snapshots WHERE ts = :ts"),
                            {"ts": far}).scalar() == "market_snapshots_p20310517"
