"""Shared fixtures: a real PostgreSQL for the whole session, emptied before each test.

With PRESCIENT_DATABASE_URL set, a throw-away database is created on that server and dropped at
the end; without it, an embedded PostgreSQL is started in a temporary PRESCIENT_HOME.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from prescient_pipeline.db import embedded, schema
from prescient_pipeline.db.engine import dispose_engines, get_engine
from prescient_pipeline.db.migrate import ensure_schema
from prescient_pipeline.db.urls import with_database

# Tests replay fixed dates (the simulator's 2026-03-02, ...): give the partitions a start before
# them, whatever the throw-away database holds when the definitions are first imported.
os.environ.setdefault("PRESCIENT_PARTITIONS_START", "2026-01-01")

POLYMARKET_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "polymarket_data"


@pytest.fixture(scope="session")
def polymarket_data() -> Path:
    """The recorded real API responses, read in place (never copied); skip when absent."""
    if not POLYMARKET_DATA.is_dir():
        pytest.skip("recorded Polymarket data (../shared/polymarket_data) is not present")
    return POLYMARKET_DATA


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    saved = {k: os.environ.get(k) for k in ("PRESCIENT_DATABASE_URL", "PRESCIENT_HOME")}
    home = tmp_path_factory.mktemp("prescient_home")
    os.environ["PRESCIENT_HOME"] = str(home)
    server = saved["PRESCIENT_DATABASE_URL"]
    if server:
        name = f"prescient_test_{uuid.uuid4().hex[:10]}"
        embedded.ensure_database(server, name)
        url = with_database(server, name)
    else:
        url = embedded.start(home)
    os.environ["PRESCIENT_DATABASE_URL"] = url
    yield url
    dispose_engines()
    if server:
        embedded.drop_database(server, name)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def migrated_engine(database_url):
    return ensure_schema(get_engine(database_url))


@pytest.fixture
def engine(migrated_engine):
    """The app engine, with every table emptied first."""
    names = ", ".join(t.name for t in schema.metadata.sorted_tables)
    with migrated_engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    return migrated_engine
