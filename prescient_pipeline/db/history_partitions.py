"""`market_snapshots` is partitioned by day (PostgreSQL declarative partitioning, on `ts`, UTC).

Writers create the partitions their rows need, and a couple of days ahead, in a short
transaction of their own before they write: creating a partition locks the parent table, which
must not wait for (or hold up) a refresh's long transaction. A row for a day without its
partition is an error, never a silent catch-all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import Engine, text

PARENT = "market_snapshots"
_NAME = re.compile(rf"^{PARENT}_p(\d{{8}})$")
DAYS_AHEAD = 2
# Any constant works; it only has to be the same in every process.
_ADVISORY_LOCK = 72_2026_12


def partition_name(day: date) -> str:
    return f"{PARENT}_p{day:%Y%m%d}"


def is_partition(table_name: str) -> bool:
    """True for a day's partition: Alembic compares the parent, not its partitions."""
    return bool(_NAME.match(table_name or ""))


def compared_by_alembic(name, type_, parent_names) -> bool:
    """Alembic's `include_name`: a day's partition (and its indexes) is data, not schema."""
    if type_ == "table":
        return not is_partition(name)
    return not is_partition((parent_names or {}).get("table_name"))


def existing_days(conn) -> set[date]:
    names = conn.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = :parent"
    ), {"parent": PARENT}).scalars()
    return {datetime.strptime(_NAME.match(n).group(1), "%Y%m%d").date() for n in names if _NAME.match(n)}


def create_partitions(conn, days: Iterable[date]) -> list[date]:
    """Create the missing partitions of `days` on `conn` (in its transaction); returns the new days."""
    wanted = sorted(set(days))
    if not wanted:
        return []
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK})
    created = [d for d in wanted if d not in existing_days(conn)]
    for day in created:
        start = datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc)
        conn.execute(text(
            f"CREATE TABLE {partition_name(day)} PARTITION OF {PARENT} "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{(start + timedelta(days=1)).isoformat()}')"
        ))
    return created


def ensure_partitions(engine: Engine, *moments: datetime, ahead: int = DAYS_AHEAD) -> list[date]:
    """Partitions for the days of `moments` and the `ahead` days after the latest, each created
    once; a no-op (one catalog read) when they exist."""
    days = {m.astimezone(timezone.utc).date() for m in moments if m is not None}
    if days:
        last = max(days)
        days |= {last + timedelta(days=n) for n in range(1, ahead + 1)}
    with engine.connect() as conn:
        if days <= existing_days(conn):
            return []
    with engine.begin() as conn:
        return create_partitions(conn, days)
