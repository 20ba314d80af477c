"""Data-quality checks over a market refresh, as plain results.

They run inside the refresh's own transaction, before it commits: a failed blocking check
rolls the whole refresh back, so the previous rows stay the universe and the baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, text

# A binary market's YES and NO prices should add up to about 1.
SUM_TOLERANCE = 0.05
# A refresh with fewer than this share of the previous refresh's markets is a collapse.
COLLAPSE_RATIO = 0.5


# Checks whose failure rejects the refresh; the others only warn.
BLOCKING = frozenset({"market_count_not_collapsed"})


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    passed: bool
    description: str
    metadata: dict

    @property
    def blocking(self) -> bool:
        return self.name in BLOCKING


def failed_blocking(checks: list[CheckOutcome]) -> list[CheckOutcome]:
    return [c for c in checks if c.blocking and not c.passed]


class RefreshRejected(RuntimeError):
    """A blocking check failed: the refresh was rolled back and nothing of it is stored."""

    def __init__(self, checks: list[CheckOutcome]):
        self.checks = checks
        failed = "; ".join(f"{c.name}: {c.description}" for c in failed_blocking(checks))
        super().__init__(f"market refresh rejected, nothing written (the previous refresh stays current): {failed}")


def check_refresh(conn: Connection, ts: datetime, previous_count: int | None) -> list[CheckOutcome]:
    """The checks over the refresh stamped `ts`, read through the refresh's own connection,
    which sees its rows before they commit."""
    row = conn.execute(
        text(
            """
            SELECT count(*) AS n,
                   count(DISTINCT market_id) AS distinct_ids,
                   count(*) FILTER (WHERE yes_price < 0 OR yes_price > 1 OR no_price < 0 OR no_price > 1) AS out_of_range,
                   count(*) FILTER (WHERE NOT coalesce(closed, false)
                                    AND abs(yes_price + no_price - 1) > :tol) AS off_sum
            FROM market_snapshots WHERE source = 'gamma' AND ts = :ts
            """
        ),
        {"ts": ts, "tol": SUM_TOLERANCE},
    ).one()
    n = row.n
    collapsed = previous_count is not None and previous_count > 0 and n < COLLAPSE_RATIO * previous_count
    return [
        CheckOutcome("prices_in_unit_interval", row.out_of_range == 0,
                     f"{row.out_of_range} markets priced outside [0, 1]", {"out_of_range": row.out_of_range}),
        CheckOutcome("yes_no_sum_near_one", row.off_sum == 0,
                     f"{row.off_sum} open markets with |YES + NO - 1| > {SUM_TOLERANCE}", {"off_sum": row.off_sum}),
        CheckOutcome("unique_market_ids", row.distinct_ids == n,
                     f"{n - row.distinct_ids} repeated market ids in the refresh", {"markets": n, "distinct": row.distinct_ids}),
        CheckOutcome("market_count_not_collapsed", not collapsed,
                     f"{n} markets now, {previous_count} in the previous refresh",
                     {"markets": n, "previous": previous_count if previous_count is not None else -1}),
    ]
