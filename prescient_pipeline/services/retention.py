"""Retention of the market history: old days are thinned to what replays read.

A day older than the retention window keeps, for markets no portfolio ever held, only the
refresh a past partition of that day reads (the latest at or before the day's cycle time), and
its `market_refreshes` row; its other hourly refreshes go. Markets any portfolio holds or held
keep every observation, and so do backtest inputs (source `history`). Recent days are untouched.
One transaction per day, so a stopped prune loses nothing and a re-run finishes the job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import Engine, text

from ..db.history_partitions import existing_days, partition_name

DEFAULT_KEEP_DAYS = 90

# What a day keeps of the refreshes: the one its cycle time reads.
_KEPT_REFRESH = "SELECT max(ts) FROM market_refreshes WHERE ts <= :cycle_time"

_PRUNABLE = """
FROM {partition} s
WHERE s.source <> 'history'
  AND NOT (s.ts = ANY(:kept))
  AND NOT EXISTS (SELECT 1 FROM portfolio_positions p WHERE p.market_id = s.market_id)
"""
_PRUNABLE_REFRESHES = "FROM market_refreshes WHERE ts >= :start AND ts < :end AND NOT (ts = ANY(:kept))"


@dataclass
class PruneReport:
    keep_days: int
    cutoff: date  # days before this one were thinned
    dry_run: bool
    days: int = 0
    snapshots_removed: int = 0
    refreshes_removed: int = 0
    per_day: list[dict] = field(default_factory=list)


def prune_history(engine: Engine, keep_days: int = DEFAULT_KEEP_DAYS, *, cycle_time=None,
                  now: datetime | None = None, dry_run: bool = False) -> PruneReport:
    """Thin every day older than `keep_days` (see the module docstring); `dry_run` only counts."""
    from .signals import cycle_time_of_day

    if keep_days < 1:
        raise ValueError("keep_days must be at least 1")
    cycle_time = cycle_time or cycle_time_of_day()
    cutoff = (now or datetime.now(timezone.utc)).date() - timedelta(days=keep_days)
    report = PruneReport(keep_days=keep_days, cutoff=cutoff, dry_run=dry_run)
    today = (now or datetime.now(timezone.utc)).date()
    with engine.connect() as conn:
        days = sorted(d for d in existing_days(conn) if d < cutoff)
        if not days:
            return report
        # Every refresh some day's cycle time reads, up to today: a day may read the previous
        # day's last refresh, so each day's choice is made before any day is thinned.
        kept = sorted({ts for n in range((today - days[0]).days + 1)
                       if (ts := conn.execute(text(_KEPT_REFRESH), {
                           "cycle_time": datetime.combine(days[0] + timedelta(days=n), cycle_time)}).scalar())})
    for day in days:
        start = datetime.combine(day, datetime.min.time(), tzinfo=timezone.utc)
        params = {"kept": kept, "start": start, "end": start + timedelta(days=1)}
        snapshots = _PRUNABLE.format(partition=partition_name(day))
        with engine.begin() as conn:
            if dry_run:
                removed = conn.execute(text(f"SELECT count(*) {snapshots}"), params).scalar_one()
                dropped = conn.execute(text(f"SELECT count(*) {_PRUNABLE_REFRESHES}"), params).scalar_one()
            else:
                removed = conn.execute(text(f"DELETE {snapshots}"), params).rowcount
                dropped = conn.execute(text(f"DELETE {_PRUNABLE_REFRESHES}"), params).rowcount
        report.days += 1
        report.snapshots_removed += removed
        report.refreshes_removed += dropped
        report.per_day.append({"day": day.isoformat(), "snapshots_removed": removed, "refreshes_removed": dropped})
    return report
