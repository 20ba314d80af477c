"""Import the market history of past days: what a backtest replays.

For a window of days, every market that was open at some time in it, closed or resolved ones
included (no survivorship bias), is listed from Gamma once; then each day is one unit of work in
one transaction: its markets' `events`/`markets` rows (a newer live state is never overwritten),
their price path as `market_snapshots` rows of source `history` on the fidelity grid (see
domain/history_grid.py), the grid times in `market_refreshes` (source `history`), each closed
market's resolution in `market_resolutions`, and the day in `history_imports`. A completed day is
skipped, so a re-run adds nothing; a day stopped halfway left nothing and is imported next time.

A history row has a price but no book (no bid, ask or depth) and no liquidity or volume as of
then: today's volume would be look-ahead. `min_volume` selects markets by today's volume.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import Engine, text

from ..db.history_partitions import ensure_partitions
from ..domain.history_grid import day_bounds, grid_times, price_path
from ..domain.settlement import FIFTY_FIFTY, Settlement, settlement_for
from ..errors import InputError
from ..polymarket.client import PolymarketClient
from ..polymarket.parser import parse_markets
from .bulk import copy_rows, stage
from .market_store import EVENT_COLUMNS, MARKET_COLUMNS, _upsert_sql

log = logging.getLogger(__name__)

HISTORY = "history"
# How far before a day its price points are asked: the first grid time of the day takes the
# last point at or before it, usually from the previous day.
LOOKBACK = timedelta(days=1)
CLOSED_MARKET_FIDELITY = 720
SNAPSHOT_COLUMNS = ["market_id", "ts", "yes_price", "no_price", "active", "closed", "source"]


@dataclass
class DayResult:
    day: date
    status: str  # imported | skipped
    markets: int = 0
    points: int = 0
    resolutions: int = 0  # markets that closed during the day, with their resolution recorded
    without_history: int = 0  # open that day, but the CLOB had no price for them
    complete: bool = True  # false for a day still under way: imported again next time
    market_ids: set = field(default_factory=set, repr=False)

    def as_dict(self) -> dict:
        return {"day": self.day.isoformat(), "status": self.status, "markets": self.markets, "points": self.points,
                "resolutions": self.resolutions, "without_history": self.without_history, "complete": self.complete}


@dataclass
class HistoryImport:
    day_from: date
    day_to: date
    fidelity: int
    min_volume: float | None
    days: list[DayResult] = field(default_factory=list)
    listed: int = 0  # markets Gamma listed for the window
    rejected: Counter = field(default_factory=Counter)  # listed but unusable, by reason

    def totals(self) -> dict:
        imported = [d for d in self.days if d.status == "imported"]
        return {
            "days_imported": len(imported),
            "days_skipped": sum(d.status == "skipped" for d in self.days),
            "markets": len(set().union(*(d.market_ids for d in imported))),
            "points": sum(d.points for d in imported),
            "resolutions": sum(d.resolutions for d in imported),
        }


Progress = Callable[[str, DayResult], None]


def validate_window(day_from: date, day_to: date, fidelity_minutes: int, min_volume: float | None,
                    now: datetime) -> None:
    if day_from > day_to:
        raise InputError(f"--from {day_from} is after --to {day_to}")
    if day_to > now.date():
        raise InputError(f"the window ends in the future ({day_to}); today is {now.date()} (UTC)")
    if fidelity_minutes < 1:
        raise InputError(f"--fidelity must be at least 1 minute, not {fidelity_minutes}")
    if min_volume is not None and not (math.isfinite(min_volume) and min_volume >= 0):
        raise InputError(f"--min-volume must be a finite number at least 0, not {min_volume}")


def import_history(
    engine: Engine,
    client: PolymarketClient,
    day_from: date,
    day_to: date,
    fidelity_minutes: int = 60,
    min_volume: float | None = None,
    *,
    force: bool = False,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> HistoryImport:
    """Import days `day_from`..`day_to` (UTC, inclusive); see the module docstring.

    `progress(stage, day)` is called with stage "fetched" (prices in hand), "written" (inside the
    day's transaction, rows written, not yet committed: raising there undoes the day), then
    "imported" or "skipped".
    """
    now = now or datetime.now(timezone.utc)
    validate_window(day_from, day_to, fidelity_minutes, min_volume, now)
    report = HistoryImport(day_from, day_to, fidelity_minutes, min_volume)
    days = [day_from + timedelta(days=n) for n in range((day_to - day_from).days + 1)]
    done = set() if force else _completed_days(engine, days, fidelity_minutes, min_volume)
    pending = [d for d in days if d not in done]
    for day in days:
        if day in done:
            report.days.append(DayResult(day, "skipped"))
            _tell(progress, "skipped", report.days[-1])
    if not pending:
        return report

    window_start, window_end = day_bounds(pending[0])[0], day_bounds(pending[-1])[1]
    listing = client.fetch_markets_open_between(window_start, window_end, min_volume=min_volume)
    parsed = parse_markets(listing.markets)
    report.listed, report.rejected = len(listing.markets), parsed.rejected
    markets = [m for m in parsed.markets if _volume_ok(m, min_volume)]
    events_by_id = {e["event_id"]: e for e in parsed.events}
    ensure_partitions(engine, *[day_bounds(d)[0] for d in pending], ahead=0)

    for day in pending:
        result = _import_day(engine, client, day, markets, events_by_id, fidelity_minutes, min_volume,
                             listing.observed_at, now, progress)
        report.days.append(result)
    report.days.sort(key=lambda d: d.day)
    return report


def _tell(progress: Progress | None, stage: str, result: DayResult) -> None:
    if progress is not None:
        progress(stage, result)


def _volume_ok(market: dict, min_volume: float | None) -> bool:
    # Gamma may ignore volume_num_min (unknown filters are dropped silently): checked here too.
    return min_volume is None or (market.get("volume") is not None and market["volume"] >= min_volume)


def closed_at(market: dict) -> datetime | None:
    """When a closed market closed: its closedTime, else its end date (older markets lack one)."""
    if not market.get("closed"):
        return None
    return market.get("closed_time") or market.get("end_date")


def open_during(market: dict, start: datetime, end: datetime, step: timedelta) -> bool:
    """Whether the market has a grid row in [start, end): it started before `end` and had not
    closed before the grid time preceding `start` (the row at or after a close still counts)."""
    started = market.get("start_date")
    if started is not None and started >= end:
        return False
    if market.get("closed") and closed_at(market) is None:
        return False  # closed at an unknown time: nothing can be placed on a grid
    closed = closed_at(market)
    return closed is None or closed > start - step


def _completed_days(engine: Engine, days: list[date], fidelity: int, min_volume: float | None) -> set[date]:
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT day FROM history_imports WHERE day = ANY(:days) AND completed_at IS NOT NULL "
            "AND fidelity = :fidelity AND min_volume IS NOT DISTINCT FROM CAST(:min_volume AS numeric)"
        ), {"days": days, "fidelity": fidelity, "min_volume": min_volume}).scalars()
        return set(rows)


def _import_day(engine, client, day, markets, events_by_id, fidelity, min_volume, observed_at, now,
                progress) -> DayResult:
    start, end = day_bounds(day)
    step = timedelta(minutes=fidelity)
    complete = end <= now
    grid = grid_times(day, fidelity, through=None if complete else now)
    chosen = [m for m in markets if open_during(m, start, end, step)]
    result = DayResult(day, "imported", complete=complete)

    last_second = min(end - timedelta(seconds=1), now)
    histories = _price_histories(client, chosen, start - LOOKBACK, last_second, fidelity) if chosen and grid else {}
    snapshots, per_time, with_rows = [], Counter(), []
    events_at: dict[datetime, set] = {}
    for market in chosen:
        path = price_path(grid, histories.get(market["yes_token_id"], []), histories.get(market["no_token_id"], []),
                          closed_at(market))
        if not path:
            continue
        with_rows.append(market)
        for point in path:
            snapshots.append({"market_id": market["market_id"], "ts": point.ts, "yes_price": point.yes_price,
                              "no_price": point.no_price, "active": not point.closed, "closed": point.closed,
                              "source": HISTORY})
            per_time[point.ts] += 1
            events_at.setdefault(point.ts, set()).add(market.get("event_id"))
    result.markets, result.points = len(with_rows), len(snapshots)
    result.market_ids = {m["market_id"] for m in with_rows}
    result.without_history = len(chosen) - len(with_rows)
    resolutions = [_resolution(m, observed_at) for m in with_rows if m.get("closed")]
    result.resolutions = sum(1 for m in with_rows if m.get("closed") and start <= closed_at(m) < end)
    _tell(progress, "fetched", result)

    with engine.begin() as conn:
        # One import of a day at a time (the CLI and a Dagster backfill may overlap).
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('prescient.history_import'), :n)"),
                     {"n": day.toordinal()})
        bounds = {"start": start, "end": end}
        conn.execute(text("DELETE FROM market_snapshots WHERE source = 'history' AND ts >= :start AND ts < :end"),
                     bounds)
        conn.execute(text("DELETE FROM market_refreshes WHERE source = 'history' AND ts >= :start AND ts < :end"),
                     bounds)
        _upsert_current_state(conn, with_rows, events_by_id, observed_at)
        if snapshots:
            copy_rows(conn, "market_snapshots", SNAPSHOT_COLUMNS, snapshots)
        if per_time:
            conn.execute(text(
                "INSERT INTO market_refreshes (ts, source, markets, events) VALUES (:ts, 'history', :markets, :events)"
            ), [{"ts": ts, "markets": n, "events": len(events_at[ts] - {None})} for ts, n in sorted(per_time.items())])
        if resolutions:
            conn.execute(text(
                "INSERT INTO market_resolutions (market_id, closed_time, outcome_prices, uma_resolution_status, "
                "resolved, winner, fetched_at) VALUES (:market_id, :closed_time, CAST(:outcome_prices AS jsonb), "
                ":uma_resolution_status, :resolved, :winner, :fetched_at) "
                "ON CONFLICT (market_id) DO UPDATE SET closed_time = EXCLUDED.closed_time, "
                "outcome_prices = EXCLUDED.outcome_prices, uma_resolution_status = EXCLUDED.uma_resolution_status, "
                "resolved = EXCLUDED.resolved, winner = EXCLUDED.winner, fetched_at = EXCLUDED.fetched_at "
                "WHERE market_resolutions.fetched_at <= EXCLUDED.fetched_at"
            ), resolutions)
        _tell(progress, "written", result)
        conn.execute(text(
            "INSERT INTO history_imports (day, fidelity, min_volume, markets, points, through, completed_at, imported_at) "
            "VALUES (:day, :fidelity, :min_volume, :markets, :points, :through, :completed, now()) "
            "ON CONFLICT (day) DO UPDATE SET fidelity = EXCLUDED.fidelity, min_volume = EXCLUDED.min_volume, "
            "markets = EXCLUDED.markets, points = EXCLUDED.points, through = EXCLUDED.through, "
            "completed_at = EXCLUDED.completed_at, imported_at = EXCLUDED.imported_at"
        ), {"day": day, "fidelity": fidelity, "min_volume": min_volume, "markets": result.markets,
            "points": result.points, "through": grid[-1] if grid else start,
            "completed": now if complete else None})
    _tell(progress, "imported", result)
    log.info("history %s: %d markets, %d points, %d resolutions", day, result.markets, result.points,
             result.resolutions)
    return result


def _price_histories(client: PolymarketClient, markets: list[dict], start: datetime, end: datetime,
                     fidelity: int) -> dict[str, list[tuple[int, float]]]:
    """Both tokens' points of every market. The CLOB answers a closed market's history only at a
    fidelity of 12 hours or more (py-clob-client #216), so closed markets that came back empty are
    asked again that coarsely when neither token had a point: their grid rows then repeat the last
    12-hourly point."""
    window = {"start_ts": int(start.timestamp()), "end_ts": int(end.timestamp())}
    tokens = [t for m in markets for t in (m["yes_token_id"], m["no_token_id"]) if t]
    histories = client.fetch_price_histories(tokens, fidelity=fidelity, **window)
    if fidelity < CLOSED_MARKET_FIDELITY:
        empty = [t for m in markets if m.get("closed")
                 and not (histories.get(m["yes_token_id"]) or histories.get(m["no_token_id"]))
                 for t in (m["yes_token_id"], m["no_token_id"]) if t]
        if empty:
            histories.update(client.fetch_price_histories(empty, fidelity=CLOSED_MARKET_FIDELITY, **window))
    return histories


def _upsert_current_state(conn, markets: list[dict], events_by_id: dict[str, dict], observed_at: datetime) -> None:
    """Events and markets as Gamma lists them now, under the refresh's guard: a row holding a
    later observation keeps it. An event's market count keeps the larger of the two, because a
    market listing shows only the markets it lists, not all of the event's."""
    if not markets:
        return
    events = [events_by_id[e] for e in dict.fromkeys(m.get("event_id") for m in markets) if e in events_by_id]
    if events:
        columns = [c for c in EVENT_COLUMNS if c in events[0]]
        staged = stage(conn, "events", columns, events)
        upsert = _upsert_sql("events", staged, "event_id", columns).replace(
            "market_count = EXCLUDED.market_count", "market_count = GREATEST(events.market_count, EXCLUDED.market_count)")
        conn.execute(text(upsert), {"ts": observed_at})
    columns = [c for c in MARKET_COLUMNS if c in markets[0]]
    staged = stage(conn, "markets", columns, markets)
    conn.execute(text(_upsert_sql("markets", staged, "market_id", columns)), {"ts": observed_at})


def _resolution(market: dict, fetched_at: datetime) -> dict:
    outcome = settlement_for(market)
    settled = isinstance(outcome, Settlement)
    winner = ("SPLIT" if outcome.kind == FIFTY_FIFTY else outcome.winner) if settled else None
    return {
        "market_id": market["market_id"],
        "closed_time": market.get("closed_time"),
        "outcome_prices": json.dumps(market.get("outcome_prices")),
        "uma_resolution_status": market.get("uma_resolution_status"),
        "resolved": settled,
        "winner": winner,
        "fetched_at": fetched_at,
    }


def imported_days(engine: Engine, day_from: date, day_to: date) -> list[dict]:
    """The `history_imports` rows of a window, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM history_imports WHERE day BETWEEN :a AND :b ORDER BY day"),
                            {"a": day_from, "b": day_to}).mappings().all()
    return [{k: (float(v) if isinstance(v, Decimal) else v) for k, v in row.items()} for row in rows]
