"""Settings read from the environment, in one place.

Every variable a user can set is listed in ENVIRONMENT so the README, `prescient status` and
the code agree on the names.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError

DEFAULT_GAMMA_URL = "https://gamma-api.polymarket.com"
DEFAULT_CLOB_URL = "https://clob.polymarket.com"

ENVIRONMENT = {
    "PRESCIENT_DATABASE_URL": "App database. Unset: an embedded PostgreSQL under PRESCIENT_HOME.",
    "PRESCIENT_HOME": "Where embedded PostgreSQL, Dagster's home and exports live (default ~/.prescient).",
    "DAGSTER_HOME": "Dagster instance directory (default $PRESCIENT_HOME/dagster).",
    "PRESCIENT_GAMMA_URL": f"Gamma API base URL (default {DEFAULT_GAMMA_URL}, or the simulator of a "
                           "running `prescient dev --offline` on the same PRESCIENT_HOME).",
    "PRESCIENT_CLOB_URL": f"CLOB API base URL (default {DEFAULT_CLOB_URL}, or that simulator).",
    "PRESCIENT_REFRESH_CRON": "Cron of the market refresh schedule (default hourly, '0 * * * *').",
    "PRESCIENT_CYCLE_CRON": "Cron of the daily trading cycle (default '0 9 * * *', UTC).",
    "PRESCIENT_SNAPSHOT_CRON": "Cron of the daily portfolio snapshot (default '55 23 * * *', UTC).",
    "PRESCIENT_HISTORY_KEEP_DAYS": "Days of market history kept whole; older days are thinned to what "
                                   "replays read (default 90).",
    "PRESCIENT_PARTITIONS_START": "First date of the portfolio_signals partitions (default 2026-01-01).",
    "PRESCIENT_HTTP_RETRIES": "Retries of a Polymarket request answered 429/5xx or timed out (default 5).",
    "PRESCIENT_HTTP_BACKOFF": "Seconds of backoff between those retries, doubling each time (default 0.5).",
}


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str | None
    gamma_url: str
    clob_url: str
    refresh_cron: str
    cycle_cron: str
    snapshot_cron: str
    history_keep_days: int
    partitions_start: str
    http_retries: int
    http_backoff: float
    api_source: str  # where gamma_url and clob_url came from: environment, offline simulator, default

    @property
    def dagster_home(self) -> Path:
        return Path(os.environ.get("DAGSTER_HOME") or self.home / "dagster")

    @property
    def exports_dir(self) -> Path:
        return self.home / "exports"


def settings() -> Settings:
    """Read the environment now (not at import), so tests and the CLI can change it."""
    home = Path(os.environ.get("PRESCIENT_HOME") or Path.home() / ".prescient").expanduser()
    gamma, clob = os.environ.get("PRESCIENT_GAMMA_URL"), os.environ.get("PRESCIENT_CLOB_URL")
    source = "environment" if gamma or clob else "default"
    if not (gamma or clob):
        # While `prescient dev --offline` runs, this home's data is the simulator's: every other
        # command on it (status, cycle, prices update) must ask the same simulator.
        gamma = clob = running_simulator_url(home)
        source = "offline simulator" if gamma else source
    return Settings(
        home=home,
        database_url=os.environ.get("PRESCIENT_DATABASE_URL") or None,
        gamma_url=(gamma or DEFAULT_GAMMA_URL).rstrip("/"),
        clob_url=(clob or DEFAULT_CLOB_URL).rstrip("/"),
        refresh_cron=os.environ.get("PRESCIENT_REFRESH_CRON") or "0 * * * *",
        cycle_cron=os.environ.get("PRESCIENT_CYCLE_CRON") or "0 9 * * *",
        snapshot_cron=os.environ.get("PRESCIENT_SNAPSHOT_CRON") or "55 23 * * *",
        history_keep_days=max(1, int(_number("PRESCIENT_HISTORY_KEEP_DAYS", 90, whole=True))),
        partitions_start=os.environ.get("PRESCIENT_PARTITIONS_START") or "2026-01-01",
        http_retries=int(_number("PRESCIENT_HTTP_RETRIES", 5, whole=True)),
        http_backoff=_number("PRESCIENT_HTTP_BACKOFF", 0.5),
        api_source=source,
    )


def simulator_marker(home: Path) -> Path:
    """Written by `prescient dev --offline` while it serves the simulator, removed when it stops."""
    return home / "offline_simulator.json"


def running_simulator_url(home: Path) -> str | None:
    """The URL of the simulator a live `prescient dev --offline` serves for `home`, if any."""
    try:
        marker = json.loads(simulator_marker(home).read_text())
        url, pid = str(marker["url"]), int(marker["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)  # a marker left by a process that died does not count
    except PermissionError:  # alive, but another user's
        return url
    except OSError:
        return None
    return url


def _number(name: str, default: float, whole: bool = False) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = int(raw) if whole else float(raw)
    except ValueError:
        value = -1
    if not value >= 0:  # also refuses NaN
        kind = "a whole number" if whole else "a number"
        raise InputError(f"{name} must be {kind} >= 0, not {raw!r}")
    return value
