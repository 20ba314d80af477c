"""Where the app database is, and one SQLAlchemy engine per URL per process."""

from __future__ import annotations

import os

from sqlalchemy import Engine, create_engine

from ..config import settings
from . import embedded
from .urls import database_name, libpq_url, sqlalchemy_url, with_database


def database_url() -> str:
    """PRESCIENT_DATABASE_URL, or the embedded server's app database (started on demand).

    The embedded URL is exported to PRESCIENT_DATABASE_URL so child processes (Dagster's
    webserver, daemon and run workers) reuse the same server instead of each holding a handle.
    """
    s = settings()
    if s.database_url:
        return libpq_url(s.database_url)
    url = embedded.start(s.home)
    os.environ["PRESCIENT_DATABASE_URL"] = url
    return url


def dagster_storage_url(app_url: str | None = None) -> str:
    """Dagster's own database on the same server: `<app database>_dagster`, created if missing."""
    app_url = app_url or database_url()
    name = f"{database_name(app_url) or 'prescient'}_dagster"
    embedded.ensure_database(app_url, name)
    return with_database(app_url, name)


_engines: dict[str, Engine] = {}


def get_engine(url: str | None = None) -> Engine:
    url = libpq_url(url or database_url())
    if url not in _engines:
        _engines[url] = create_engine(
            sqlalchemy_url(url), pool_pre_ping=True, pool_size=5, max_overflow=10
        )
    return _engines[url]


def dispose_engines() -> None:
    """Close pooled connections (before dropping a database, or after a fork)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()
