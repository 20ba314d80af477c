"""Prepare the Dagster instance: PostgreSQL storage on the app database's server.

Every `prescient` command that talks to Dagster calls `prepare()` first, so the webserver, the
daemon and run workers it starts inherit DAGSTER_HOME and the app database. The storage itself
(`dagster_storage.PrescientStorage`) finds its URL from the same settings, so plain `dagster`
commands pointed at that DAGSTER_HOME reach the same instance.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from .abandoned_runs import fail_abandoned_runs
from .config import settings
from .db.engine import database_url

log = logging.getLogger(__name__)

REPO_DAGSTER_YAML = Path(__file__).resolve().parents[1] / "dagster.yaml"


def prepare() -> Path:
    """Set DAGSTER_HOME in this process' environment (and start the embedded database if it is
    the one in use, exporting its URL for child processes); return DAGSTER_HOME."""
    database_url()
    home = settings().dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    # A dagster.yaml the user put in their own DAGSTER_HOME is theirs; ours is refreshed.
    user_owned = "DAGSTER_HOME" in os.environ and config.exists()
    if not user_owned:
        if not REPO_DAGSTER_YAML.exists():
            raise FileNotFoundError(f"dagster.yaml not found next to the package ({REPO_DAGSTER_YAML.parent})")
        _replace_atomically(REPO_DAGSTER_YAML, config)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _replace_atomically(source: Path, target: Path) -> None:
    """Copy `source` over `target` so that a reader sees the old file or the new one, never a
    half-written one: another `prescient` process may be reading it while this one refreshes it."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise


def instance():
    """The Dagster instance on PostgreSQL (prepares the environment first)."""
    from dagster import DagsterInstance

    prepare()
    dagster_instance = DagsterInstance.get()
    # A prescient command launches many runs in one process (a cycle, the demo). By default the
    # PostgreSQL storage opens a new connection for every event it writes; keep a small pool
    # open instead, as the webserver does (no statement timeout: runs may write large events).
    dagster_instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=10)
    try:
        fail_abandoned_runs(dagster_instance)
    except Exception as exc:  # never keep a command from running over this
        log.warning("could not check for killed runs: %s", exc)
    return dagster_instance


# The dynamic partitions of `portfolio_signals`: one key per portfolio id.
PORTFOLIO_PARTITIONS = "portfolios"


def register_portfolio(dagster_instance, portfolio_id: int) -> None:
    """Add a portfolio's partition key at once, so its partitions show in the UI right away."""
    dagster_instance.add_dynamic_partitions(PORTFOLIO_PARTITIONS, [str(portfolio_id)])


def unregister_portfolio(dagster_instance, portfolio_id: int) -> None:
    key = str(portfolio_id)
    if dagster_instance.has_dynamic_partition(PORTFOLIO_PARTITIONS, key):
        dagster_instance.delete_dynamic_partition(PORTFOLIO_PARTITIONS, key)
