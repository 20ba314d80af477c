"""Apply the Alembic migrations: idempotent and safe when several processes ask at once."""

from __future__ import annotations

import ast
from pathlib import Path

from sqlalchemy import Engine, text

from .engine import get_engine

# Alembic is imported where a migration is read or run: a command on an up-to-date database
# only compares two revision ids (see `ensure_schema`), and importing Alembic costs more than that.

MIGRATIONS = Path(__file__).with_name("migrations")
# Any constant works; it only has to be the same in every process.
_ADVISORY_LOCK = 72_2026_11


def _config():
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine | None = None, target: str = "head") -> tuple[str | None, str]:
    """Bring the schema to `target` (head); returns (revision before, revision after)."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext

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
        stored = _stored_revision(engine)
        if stored is None or stored != _declared_head():
            if current_revision(engine) != head_revision():
                upgrade(engine)
        _migrated.add(key)
    return engine


def _stored_revision(engine: Engine) -> str | None:
    """alembic_version's row, read without Alembic; None when absent or not exactly one."""
    with engine.connect() as conn:
        if conn.execute(text("SELECT to_regclass('alembic_version')")).scalar() is None:
            return None
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return rows[0] if len(rows) == 1 else None


def _declared_head() -> str | None:
    """The one revision no migration file names as its down_revision, read from the files'
    `revision = ...` / `down_revision = ...` lines; None when unclear (Alembic then decides)."""
    revisions, parents = set(), set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = {}
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                if node.targets[0].id in ("revision", "down_revision"):
                    try:
                        found[node.targets[0].id] = ast.literal_eval(node.value)
                    except ValueError:
                        return None
        if not isinstance(found.get("revision"), str):
            return None
        revisions.add(found["revision"])
        down = found.get("down_revision")
        parents.update(down if isinstance(down, (tuple, list)) else [down] if down else [])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None
