"""Database URL spelling.

SQLAlchemy 2.1 maps a bare `postgresql://` to psycopg 3, which we do not ship; our engine
always uses psycopg2. libpq (and so dagster-postgres' raw psycopg2 connections) only accepts the
plain scheme, so Dagster gets the plain form.
"""

from __future__ import annotations

from sqlalchemy.engine import make_url

_PLAIN_SCHEMES = ("postgresql://", "postgres://")


def sqlalchemy_url(url: str) -> str:
    """`postgresql[+driver]://...` -> `postgresql+psycopg2://...`."""
    if url.startswith(_PLAIN_SCHEMES):
        return "postgresql+psycopg2://" + url.split("://", 1)[1]
    if url.startswith("postgresql+"):
        return "postgresql+psycopg2://" + url.split("://", 1)[1]
    raise ValueError(f"not a PostgreSQL URL: {redact(url)}")


def libpq_url(url: str) -> str:
    """Any of our spellings -> the plain `postgresql://` that libpq understands. SQLAlchemy
    writes a space in a query value (a socket or password file path) as `+`, which libpq takes
    literally; `%20` means a space to both (a real `+` is already `%2B`)."""
    rest = sqlalchemy_url(url).split("://", 1)[1]
    base, sep, query = rest.partition("?")
    return "postgresql://" + base + sep + query.replace("+", "%20")


def with_database(url: str, database: str) -> str:
    """The same server and credentials, another database."""
    u = make_url(sqlalchemy_url(url)).set(database=database)
    return libpq_url(u.render_as_string(hide_password=False))


def database_name(url: str) -> str | None:
    return make_url(sqlalchemy_url(url)).database


def redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable url>"
