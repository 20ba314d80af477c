"""The embedded PostgreSQL used when PRESCIENT_DATABASE_URL is not set.

pgserver ships the server binaries; it serialises start-up across processes with its own
inter-process lock and counts the processes holding a handle, stopping the server cleanly when
the last one exits. We only choose where the data lives and which database to use.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .urls import libpq_url, with_database

log = logging.getLogger(__name__)

APP_DATABASE = "prescient"


def start(home: Path) -> str:
    """Start (or join) the server under `home`; return the app database URL."""
    import pgserver

    home.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(home / "pgdata", cleanup_mode="stop")
    base = libpq_url(server.get_uri())
    ensure_database(base, APP_DATABASE)
    return with_database(base, APP_DATABASE)


def ensure_database(any_db_url: str, name: str) -> None:
    """CREATE DATABASE `name` on the server of `any_db_url` unless it exists (race-safe)."""
    import psycopg2
    from psycopg2 import errors, sql

    conn = psycopg2.connect(with_database(any_db_url, "postgres"))
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone():
                return
            try:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                log.info("created database %s", name)
            except (errors.DuplicateDatabase, errors.UniqueViolation):
                pass  # another process created it first
    finally:
        conn.close()


def drop_database(any_db_url: str, name: str) -> None:
    """DROP DATABASE `name` on the server of `any_db_url`, closing its sessions (test/benchmark scratch)."""
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(with_database(any_db_url, "postgres"))
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    finally:
        conn.close()
