"""Apply the Alembic migrations: idempotent and safe when several processes ask at once."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from .engine import get_engine

MIGRATIONS = Path(__file__).with_name("migrations")
# Any constant works; it only has to be the same in every process.
_ADVISORY_LOCK = 72_2026_11


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine | None = None, target: str = "head") -> tuple[str | None, str]:
    """Bring the schema to `target` (head); returns (revision before, revision after)."""
    engine = engine or get_engine()
    with engine.begin() as conn:
        # Serialise concurrent upgrades; the lock is released with the transaction.
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK})
        before = MigrationContext.configure(conn).get_current_revision()
        cfg = _config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, target)
        after = MigrationContext.configure(conn).get_current_revision()
    return before, after


_migrated: set[str] = set()


def ensure_schema(engine: Engine | None = None) -> Engine:
    """Commands that need the schema call this first; it upgrades once per process."""
    engine = engine or get_engine()
    key = engine.url.render_as_string(hide_password=False)
    if key not in _migrated:
        if current_revision(engine) != head_revision():
            upgrade(engine)
        _migrated.add(key)
    return engine
