"""COPY rows into PostgreSQL through the connection's own transaction.

COPY is the fastest way in; staging into a temporary table then upserting keeps a refresh in a
single transaction, so a failure leaves the previous rows untouched.

Rows are rendered column by column in COPY's text format: one type check per column, C-level
map() over uniform columns, and escaping only where a column's text needs it. Cell by cell
through the csv module, rendering 50,000 markets took longer than PostgreSQL took to COPY them.
"""

from __future__ import annotations

import gc
import io
import json
import math
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from operator import itemgetter

from sqlalchemy import Connection

_NULL = "\\N"
# One encoder for every cell: json.dumps with options builds a new encoder per call.
_json = json.JSONEncoder(ensure_ascii=False).encode
_SPECIAL = ("\\", "\t", "\n", "\r")
# Only text can hold those characters (numbers, booleans and timestamps never do).
_MAY_NEED_ESCAPE = {str, list, dict}
_BOOL = {True: "t", False: "f"}
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text(value) -> str | None:
    """One value as COPY text (before escaping); None is NULL."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (list, dict)):
        return _json(value)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, float):
        # float.__repr__ also prints numpy floats as plain numbers.
        return None if value != value else float.__repr__(value)  # NaN -> NULL
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def _column(values: Sequence) -> Sequence[str]:
    """One column's cells as COPY text. Uniform columns take C-level map() paths."""
    kinds = set(map(type, values))
    nullable = type(None) in kinds
    kinds.discard(type(None))
    if kinds <= {str}:
        cells = values
    elif kinds == {float} and not nullable and not any(map(math.isnan, values)):
        cells = list(map(float.__repr__, values))
    elif kinds == {bool} and not nullable:
        cells = list(map(_BOOL.__getitem__, values))
    elif kinds <= {list, dict} and not nullable:
        cells = list(map(_json, values))
    elif kinds == {datetime} and not nullable:
        cells = list(map(datetime.isoformat, values))
    else:
        cells = [_text(v) for v in values]
        nullable = True
    if (kinds & _MAY_NEED_ESCAPE) and any(c in "".join(filter(None, cells)) for c in _SPECIAL):
        cells = [None if c is None else c.translate(_ESCAPES) for c in cells]
    return [_NULL if c is None else c for c in cells] if nullable else cells


@contextmanager
def collector_paused():
    """Pause Python's cyclic garbage collector while building many short, acyclic structures.

    Rendering allocates a tuple per row and per cell, and parsing a refresh a dict per market:
    none forms a cycle, yet the collections they trigger traverse them and, every so often, the
    whole heap (a quarter to 40% of the time at 50,000 markets). Reference counting still frees
    everything; a cycle made elsewhere meanwhile waits for the next collection.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def to_copy_text(rows: Iterable[dict], columns: Sequence[str]) -> io.StringIO:
    """Rows as COPY text format: tab-separated, \\N for NULL, backslash escapes."""
    rows = rows if isinstance(rows, list) else list(rows)
    buf = io.StringIO()
    with collector_paused():
        _render(buf, rows, columns)
    buf.seek(0)
    return buf


def _render(buf: io.StringIO, rows: list[dict], columns: Sequence[str]) -> None:
    if not rows:
        return
    try:
        # Every row has every column (the usual case): transpose at C speed.
        get = itemgetter(*columns)
        values = list(zip(*map(get, rows))) if len(columns) > 1 else [list(map(get, rows))]
    except KeyError:
        values = [[row.get(name) for row in rows] for name in columns]
    cells = [_column(v) for v in values]
    buf.write("\n".join(map("\t".join, zip(*cells))))
    buf.write("\n")


def copy_rows(conn: Connection, table: str, columns: Sequence[str], rows: Iterable[dict]) -> int:
    """COPY `rows` (dicts) into `table`; returns the number of rows written."""
    buf = to_copy_text(rows, columns)
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buf)
        return cursor.rowcount
    finally:
        cursor.close()


def stage(conn: Connection, like_table: str, columns: Sequence[str], rows: Iterable[dict]) -> str:
    """Create a temporary table shaped like `like_table`, COPY rows in, return its name."""
    name = f"stage_{like_table}"
    conn.exec_driver_sql(
        f"CREATE TEMP TABLE IF NOT EXISTS {name} (LIKE {like_table} INCLUDING DEFAULTS) ON COMMIT DROP"
    )
    conn.exec_driver_sql(f"TRUNCATE {name}")
    copy_rows(conn, name, columns, rows)
    return name
