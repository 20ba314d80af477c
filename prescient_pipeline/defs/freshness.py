"""How fresh the market data and the marks should be, so a stalled refresh or price update
shows in the UI (asset health) instead of going unnoticed."""

from datetime import datetime, timedelta, timezone

import dagster as dg
from dagster._utils.schedules import cron_string_iterator  # Dagster's own cron evaluation


def cron_interval(cron: str) -> timedelta:
    """The longest gap between consecutive ticks of `cron` over a day (its period, for the usual
    'every N minutes/hours' schedules)."""
    ticks = cron_string_iterator(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp(), cron, "UTC")
    stamps = [next(ticks) for _ in range(2)]
    while stamps[-1] - stamps[0] < timedelta(days=1):
        stamps.append(next(ticks))
    return max(b - a for a, b in zip(stamps, stamps[1:]))


def every(cron: str, grace: timedelta = timedelta(minutes=10)) -> dg.FreshnessPolicy:
    """Warn when one tick of `cron` was missed, fail after two."""
    period = cron_interval(cron)
    return dg.FreshnessPolicy.time_window(fail_window=2 * period + grace, warn_window=period + grace)
