"""`prescient export`: every table a user owns, one file each, with the column types kept.

Types follow the schema, not whatever a reader would guess: integer ids stay integers (never
`1.0`), JSON columns are JSON text (never Python's repr), timestamps are ISO 8601 with their UTC
offset, dates `YYYY-MM-DD`, money the exact NUMERIC text. Parquet (`--format parquet`) stores
the same columns natively: int32/int64, decimal128 at the column's precision and scale,
timestamp[us, UTC], date32, bool, and JSON as text.

`market_snapshots` (one row per market per observation) can hold millions of rows, so it is
written only on request, optionally limited to a window of days. Rows stream from the database
in chunks, so a big table never sits in memory whole.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterable

from sqlalchemy import Engine, Table, select, types

from ..db import schema
from ..errors import InputError

FORMATS = ("csv", "parquet")
CHUNK_ROWS = 10_000

# Every table a user owns, in the order written, with the order of its rows.
TABLES: tuple[tuple[Table, tuple[str, ...]], ...] = (
    (schema.portfolios, ("portfolio_id",)),
    (schema.portfolio_positions, ("position_id",)),
    (schema.trades, ("trade_id",)),
    (schema.trading_signals, ("signal_id",)),
    (schema.signal_archives, ("signal_id",)),
    (schema.portfolio_history, ("portfolio_id", "snapshot_date")),
    (schema.portfolio_rebalancing_log, ("id",)),
    (schema.portfolio_performance_cache, ("portfolio_id",)),
    (schema.backtest_days, ("portfolio_id", "day")),
    (schema.events, ("event_id",)),
    (schema.markets, ("market_id",)),
)
SNAPSHOTS: tuple[Table, tuple[str, ...]] = (schema.market_snapshots, ("ts", "snapshot_id"))


@dataclass(frozen=True)
class SnapshotWindow:
    """Which market snapshots to export: none, or those observed on days since..until (UTC, inclusive)."""

    include: bool = False
    since: date | None = None
    until: date | None = None

    @classmethod
    def parse(cls, include: bool, since: str | None, until: str | None) -> "SnapshotWindow":
        if (since or until) and not include:
            raise InputError("--since/--until choose which market snapshots to export; add --snapshots")
        window = cls(include, _parse_day(since, "--since"), _parse_day(until, "--until"))
        if window.since and window.until and window.since > window.until:
            raise InputError(f"--since {window.since} is after --until {window.until}")
        return window


def _parse_day(value: str | None, flag: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InputError(f"{flag} must be a date YYYY-MM-DD, got {value!r}") from None


# --- per-column conversion -----------------------------------------------------------------


def _csv_text(column) -> Callable[[Any], str]:
    """How one column's value is spelled in CSV (None -> empty field)."""
    kind = column.type
    if isinstance(kind, types.JSON):
        return lambda v: "" if v is None else json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    if isinstance(kind, (types.DateTime, types.Date)):
        return lambda v: "" if v is None else v.isoformat()
    if isinstance(kind, types.Boolean):
        return lambda v: "" if v is None else ("true" if v else "false")
    if isinstance(kind, types.Numeric):  # positional, never "0E-8"
        return lambda v: "" if v is None else format(v, "f")
    return lambda v: "" if v is None else str(v)


def _arrow_type(column):
    import pyarrow as pa

    kind = column.type
    if isinstance(kind, types.BigInteger):
        return pa.int64()
    if isinstance(kind, types.Integer):
        return pa.int32()
    if isinstance(kind, types.Numeric):
        return pa.decimal128(kind.precision, kind.scale)
    if isinstance(kind, types.DateTime):
        return pa.timestamp("us", tz="UTC")
    if isinstance(kind, types.Date):
        return pa.date32()
    if isinstance(kind, types.Boolean):
        return pa.bool_()
    return pa.string()  # text, and JSON as text


def _arrow_value(column) -> Callable[[Any], Any]:
    if isinstance(column.type, types.JSON):
        return lambda v: None if v is None else json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    if isinstance(column.type, types.Numeric):
        quantum = Decimal(1).scaleb(-column.type.scale)
        return lambda v: None if v is None else Decimal(v).quantize(quantum)
    return lambda v: v


# --- writers ---------------------------------------------------------------------------------


def _write_csv(path: Path, table: Table, chunks: Iterable[list]) -> int:
    columns = list(table.columns)
    spell = [_csv_text(c) for c in columns]
    count = 0
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([c.name for c in columns])
        for rows in chunks:
            writer.writerows([f(v) for f, v in zip(spell, row)] for row in rows)
            count += len(rows)
    return count


def _write_parquet(path: Path, table: Table, chunks: Iterable[list]) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = list(table.columns)
    arrow_schema = pa.schema([pa.field(c.name, _arrow_type(c), nullable=True) for c in columns])
    convert = [_arrow_value(c) for c in columns]
    count = 0
    with pq.ParquetWriter(path, arrow_schema) as writer:
        for rows in chunks:
            arrays = [pa.array([f(row[i]) for row in rows], type=field.type)
                      for i, (f, field) in enumerate(zip(convert, arrow_schema))]
            writer.write_table(pa.Table.from_arrays(arrays, schema=arrow_schema))
            count += len(rows)
        if count == 0:  # an empty table still gets its typed columns
            writer.write_table(arrow_schema.empty_table())
    return count


def _chunks(conn, query) -> Iterable[list]:
    result = conn.execution_options(stream_results=True, max_row_buffer=CHUNK_ROWS).execute(query)
    for part in result.partitions(CHUNK_ROWS):
        yield [tuple(row) for row in part]


def _query(table: Table, order: tuple[str, ...], window: SnapshotWindow | None = None):
    query = select(table).order_by(*[table.c[name] for name in order])
    if window is not None:
        if window.since is not None:
            query = query.where(table.c.ts >= datetime.combine(window.since, time(), timezone.utc))
        if window.until is not None:
            query = query.where(table.c.ts < datetime.combine(window.until + timedelta(days=1), time(), timezone.utc))
    return query


def export_tables(engine: Engine, out_dir: Path, fmt: str = "csv",
                  snapshots: SnapshotWindow = SnapshotWindow()) -> dict[str, dict]:
    """Write one file per table into `out_dir`; returns {table: {"path", "rows"}}."""
    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    write = _write_csv if fmt == "csv" else _write_parquet
    jobs = [(table, order, None) for table, order in TABLES]
    if snapshots.include:
        jobs.append((*SNAPSHOTS, snapshots))
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, dict] = {}
    # One read-only transaction at REPEATABLE READ: every file shows the same moment.
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
        for table, order, window in jobs:
            path = out_dir / f"{table.name}.{fmt}"
            rows = write(path, table, _chunks(conn, _query(table, order, window)))
            written[table.name] = {"path": path, "rows": rows}
    return written


__all__ = ["FORMATS", "TABLES", "SnapshotWindow", "export_tables"]
