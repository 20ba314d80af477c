"""A market's price path on a fixed observation grid, with no look-ahead.

The grid is every multiple of the fidelity (UTC, counted from the Unix epoch, so fidelities that
divide a day start at midnight). The price at a grid time is the last point at or before it,
never a later one. A market that closed has rows up to the first grid time at or after its
closed time (that row says closed) and none after; no point later than the closed time is used.
Pure: lists of (unix seconds, price) in, rows out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

import numpy as np

PRICE_DECIMALS = 8


@dataclass(frozen=True)
class GridPoint:
    ts: datetime
    yes_price: float
    no_price: float
    closed: bool


def day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time(0, 0), tzinfo=timezone.utc)
    return start, start + timedelta(days=1)


def grid_times(day: date, fidelity_minutes: int, through: datetime | None = None) -> list[datetime]:
    """The grid times of `day` (UTC), up to `through` when given (a day still under way)."""
    if fidelity_minutes < 1:
        raise ValueError("fidelity must be at least 1 minute")
    step = fidelity_minutes * 60
    start, end = (int(t.timestamp()) for t in day_bounds(day))
    last = end - 1 if through is None else min(end - 1, int(through.timestamp()))
    first = -(-start // step) * step  # the first multiple of the step at or after midnight
    return [datetime.fromtimestamp(t, timezone.utc) for t in range(first, last + 1, step)]


def _last_at_or_before(grid: np.ndarray, points: list[tuple[int, float]]) -> np.ndarray:
    """For each grid time, the price of the last point at or before it; NaN where none is."""
    if not points:
        return np.full(len(grid), np.nan)
    times = np.fromiter((t for t, _ in points), dtype=np.int64, count=len(points))
    prices = np.fromiter((p for _, p in points), dtype=np.float64, count=len(points))
    order = np.argsort(times, kind="stable")  # equal times: the later listed wins
    times, prices = times[order], prices[order]
    index = np.searchsorted(times, grid, side="right") - 1
    return np.where(index >= 0, prices[np.clip(index, 0, None)], np.nan)


def price_path(
    grid: list[datetime],
    yes_points: list[tuple[int, float]],
    no_points: list[tuple[int, float]],
    closed_at: datetime | None = None,
) -> list[GridPoint]:
    """The market's rows on `grid`: YES from the YES token's points and NO from the NO token's;
    a side with no point yet is 1 minus the other; no row before either has a point."""
    if not grid:
        return []
    grid_ts = np.array([int(g.timestamp()) for g in grid], dtype=np.int64)
    keep = len(grid)
    if closed_at is not None:
        cut = closed_at.timestamp()
        yes_points = [(t, p) for t, p in yes_points if t <= cut]
        no_points = [(t, p) for t, p in no_points if t <= cut]
        # Rows up to and including the first grid time at or after the close.
        keep = int(np.searchsorted(grid_ts, cut, side="left")) + 1
    yes = _last_at_or_before(grid_ts, yes_points)
    no = _last_at_or_before(grid_ts, no_points)
    yes = np.where(np.isnan(yes), 1.0 - no, yes)
    no = np.where(np.isnan(no), 1.0 - yes, no)
    rows = []
    for k in range(min(keep, len(grid))):
        if np.isnan(yes[k]):
            continue
        rows.append(GridPoint(
            ts=grid[k],
            yes_price=round(float(yes[k]), PRICE_DECIMALS),
            no_price=round(float(no[k]), PRICE_DECIMALS),
            closed=closed_at is not None and grid[k] >= closed_at,
        ))
    return rows
