"""One market refresh: fetch every active event, parse, write; with timings for the UI."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Engine

from ..polymarket.client import PolymarketClient
from ..polymarket.parser import parse_events
from .bulk import collector_paused
from .market_checks import CheckOutcome, RefreshRejected, check_refresh, failed_blocking
from .market_store import RefreshWrite, write_refresh
from .resolution_checks import record_refresh_reads

log = logging.getLogger(__name__)


@dataclass
class RefreshReport:
    observed_at: datetime
    pages: int
    events: int
    markets: int
    snapshots: int
    duplicates: int
    rejected: Counter
    previous_market_count: int | None
    seconds: dict[str, float]
    checks: list[CheckOutcome] = field(default_factory=list)  # computed before the write committed
    markets_rows: list[dict] = field(repr=False, default_factory=list)
    events_rows: list[dict] = field(repr=False, default_factory=list)

    def top_by_volume_24hr(self, n: int = 10) -> list[dict]:
        ranked = sorted(self.markets_rows, key=lambda m: m.get("volume_24hr") or 0.0, reverse=True)
        return ranked[:n]


def refresh_markets(engine: Engine, client: PolymarketClient, logger: logging.Logger = log) -> RefreshReport:
    """Fetch all active events once and write events, markets and snapshots in one transaction.

    Any fetch or parse failure raises before the write, and the data-quality checks run inside
    the write's transaction: a failed blocking check raises `RefreshRejected` and rolls the
    whole refresh back. Either way the previous rows stay as they were.
    """
    t0 = time.perf_counter()
    fetched = client.fetch_active_events(
        on_page=lambda page, n: logger.info("fetched page %d (%d events so far)", page, n)
    )
    t1 = time.perf_counter()
    with collector_paused():  # a dict per market, all alive until the write: see collector_paused
        parsed = parse_events(fetched.events)
    t2 = time.perf_counter()
    logger.info(
        "parsed %d events, %d markets (%d rejected); writing", len(parsed.events), len(parsed.markets),
        sum(parsed.rejected.values()),
    )
    checks: list[CheckOutcome] = []

    def verify(conn, written: RefreshWrite) -> None:
        checks[:] = check_refresh(conn, written.ts, written.previous_market_count)
        if failed_blocking(checks):
            raise RefreshRejected(checks)
        record_refresh_reads(conn, written.ts)

    written = write_refresh(engine, parsed.events, parsed.markets, fetched.observed_at, before_commit=verify)
    t3 = time.perf_counter()
    return RefreshReport(
        observed_at=written.ts,
        pages=fetched.pages,
        events=written.events,
        markets=written.markets,
        snapshots=written.snapshots,
        duplicates=fetched.duplicates + parsed.duplicates,
        rejected=parsed.rejected,
        previous_market_count=written.previous_market_count,
        seconds={"fetch": t1 - t0, "parse": t2 - t1, "write": t3 - t2},
        checks=checks,
        markets_rows=parsed.markets,
        events_rows=parsed.events,
    )
