"""Dagster's storage for the prescient instance: dagster-postgres on the app database's server.

`dagster.yaml` names this class instead of a `postgres_url: {env: ...}` so that any Dagster
process finds its storage from prescient's own settings (`PRESCIENT_DATABASE_URL`, or the
embedded server under `PRESCIENT_HOME`): `dagster`, `dagster-webserver`, `dagster-daemon`,
`dagster code-server` and `dg` work on the instance without a variable only `prescient` sets.
"""

from __future__ import annotations

from contextlib import contextmanager

import yaml
from dagster import Field, StringSource
from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage


# Any constant works; it only has to be the same in every process.
_STORAGE_LOCK = 72_2026_13


def resolved_storage_url(configured: str | None = None) -> str:
    """The configured URL, or Dagster's database `<app database>_dagster` on the app's server
    (created if missing; the embedded server is started if it is the one in use)."""
    from .db.engine import dagster_storage_url
    from .db.urls import sqlalchemy_url

    # dagster-postgres hands the URL to SQLAlchemy, which would pick psycopg 3 for a bare
    # postgresql:// under SQLAlchemy 2.1; name the driver we ship.
    return sqlalchemy_url(configured or dagster_storage_url())


@contextmanager
def _schema_lock(url: str):
    import psycopg2

    from .db.urls import libpq_url

    conn = psycopg2.connect(libpq_url(url))
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (_STORAGE_LOCK,))
        yield
    finally:
        conn.close()  # releases the lock


class PrescientStorage(DagsterPostgresStorage):
    @classmethod
    def config_type(cls):
        return {"postgres_url": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        url = resolved_storage_url(config_value.get("postgres_url"))
        # Building the storage creates Dagster's tables on a new database, and two processes
        # doing it at once (two `prescient cycle`s, a daemon beside a webserver) collide on
        # them ("type alembic_version already exists"): one at a time, per server.
        with _schema_lock(url):
            return cls(postgres_url=url, inst_data=inst_data)

    # Dagster hands these to processes it starts (run workers, code servers): they name the
    # resolved URL, so a child needs no settings of its own to reach the same storage.
    def _part(self, class_name: str) -> ConfigurableClassData | None:
        if self.inst_data is None:
            return None
        return ConfigurableClassData("dagster_postgres", class_name, yaml.dump({"postgres_url": self.postgres_url}))

    @property
    def event_storage_data(self) -> ConfigurableClassData | None:
        return self._part("PostgresEventLogStorage")

    @property
    def run_storage_data(self) -> ConfigurableClassData | None:
        return self._part("PostgresRunStorage")

    @property
    def schedule_storage_data(self) -> ConfigurableClassData | None:
        return self._part("PostgresScheduleStorage")
