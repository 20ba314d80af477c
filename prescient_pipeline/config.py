"""Settings read from the environment, in one place.

Every variable a user can set is listed in ENVIRONMENT so the README, `prescient status` and
the code agree on the names.
"""

from __future__ import annotations

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
    "PRESCIENT_GAMMA_URL": f"Gamma API base URL (default {DEFAULT_GAMMA_URL}).",
    "PRESCIENT_CLOB_URL": f"CLOB API base URL (default {DEFAULT_CLOB_URL}).",
    "PRESCIENT_REFRESH_CRON": "Cron of the market refresh schedule (default hourly, '0 * * * *').",
    "PRESCIENT_CYCLE_CRON": "Cron of the daily trading cycle (default '0 9 * * *', UTC).",
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
    partitions_start: str
    http_retries: int
    http_backoff: float

    @property
    def dagster_home(self) -> Path:
        return Path(os.environ.get("DAGSTER_HOME") or self.home / "dagster")

    @property
    def exports_dir(self) -> Path:
        return self.home / "exports"


def settings() -> Settings:
    """Read the environment now (not at import), so tests and the CLI can change it."""
    return Settings(
        home=Path(os.environ.get("PRESCIENT_HOME") or Path.home() / ".prescient").expanduser(),
        database_url=os.environ.get("PRESCIENT_DATABASE_URL") or None,
        gamma_url=(os.environ.get("PRESCIENT_GAMMA_URL") or DEFAULT_GAMMA_URL).rstrip("/"),
        clob_url=(os.environ.get("PRESCIENT_CLOB_URL") or DEFAULT_CLOB_URL).rstrip("/"),
        refresh_cron=os.environ.get("PRESCIENT_REFRESH_CRON") or "0 * * * *",
        cycle_cron=os.environ.get("PRESCIENT_CYCLE_CRON") or "0 9 * * *",
        partitions_start=os.environ.get("PRESCIENT_PARTITIONS_START") or "2026-01-01",
        http_retries=int(_number("PRESCIENT_HTTP_RETRIES", 5, whole=True)),
        http_backoff=_number("PRESCIENT_HTTP_BACKOFF", 0.5),
    )


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
