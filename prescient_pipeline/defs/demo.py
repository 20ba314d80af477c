"""`prescient demo`: the whole system offline, on a simulated clock, through the production jobs.

The simulator starts `days` days ago at midnight UTC, so each simulated day is a real past date
and its `portfolio_signals` partitions sit in the UI like any backfilled day. Every simulated
day: a price update every `price_every` minutes (five, as in production), the trading cycle at
the cycle time (refresh, each portfolio's partition, execution), and a snapshot at 23:55.

A Dagster run costs a quarter to half a second, so 288 price-update runs a day would not fit in the
demo's two minutes. Every `runs_every` minutes the price update is a run of `update_prices_job`
(the UI plots those); the updates between them call the service that job's op calls,
`services.prices.update_prices`, with the same client and database.
"""

import logging
import os
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from sqlalchemy import Engine, text

from ..dagster_home import PORTFOLIO_PARTITIONS
from ..db import schema
from ..errors import InputError
from ..config import settings
from ..polymarket.simulator import state as world
from ..polymarket.simulator.server import SimulatorServer
from ..polymarket.client import PolymarketClient
from ..services import reports
from ..services.exports import export_tables
from ..services.prices import update_prices
from ..services.examples import EXAMPLE_NAMES, create_examples
from ..services.portfolios import list_portfolios
from ..services.signals import cycle_time_of_day
from . import runner

log = logging.getLogger(__name__)

SNAPSHOT_AT = timedelta(hours=23, minutes=55)
URL_VARIABLES = ("PRESCIENT_GAMMA_URL", "PRESCIENT_CLOB_URL")
# The simulator runs in this process: no reason to pace requests to it.
UNLIMITED_REQUESTS = {"gamma": 1_000_000, "clob": 1_000_000}


@dataclass
class DemoResult:
    days: int
    start: datetime
    end: datetime
    seconds: float
    portfolios: list[dict]
    exports: dict[str, Path]
    runs: int
    price_updates: int
    report: Path | None = None  # the HTML report's index.html
    notes: list[str] = field(default_factory=list)


def prepare_database(engine: Engine, reset: bool) -> str:
    """Clear what a previous demo left; refuse to touch a database holding other portfolios."""
    existing = [p["name"] for p in list_portfolios(engine)]
    others = [name for name in existing if name not in EXAMPLE_NAMES]
    if others and not reset:
        raise InputError(
            f"this database holds {len(others)} portfolios that are not the demo's ({', '.join(others[:3])}"
            f"{'...' if len(others) > 3 else ''}); run `prescient demo --reset` to wipe it, or set PRESCIENT_HOME "
            "to a fresh directory"
        )
    # Only demo data is here (or the user asked for a wipe): start from empty tables.
    names = ", ".join(t.name for t in schema.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    if reset:
        return "wiped the database"
    return "cleared the previous demo" if existing else "starting from an empty database"


def _forget_stale_partitions(instance, engine: Engine) -> None:
    live = {str(p["portfolio_id"]) for p in list_portfolios(engine)}
    for key in instance.get_dynamic_partitions(PORTFOLIO_PARTITIONS):
        if key not in live:
            instance.delete_dynamic_partition(PORTFOLIO_PARTITIONS, key)


# How often, at least, a price update is a Dagster run (see the module's docstring).
RUNS_EVERY = 240


def run_demo(instance, engine: Engine, *, days: int, seed: int, events: int, price_every: int = 5,
             runs_every: int | None = None, reset: bool, exports_dir: Path, report_dir: Path | None = None,
             progress: Callable[[str], None] = print, history_days: int = 0) -> DemoResult:
    if days < 1 or days > 60:
        raise InputError("--days must be between 1 and 60")
    if price_every < 5 or price_every > 24 * 60:
        raise InputError("--price-every must be between 5 and 1440 minutes")
    if runs_every is None:  # the first multiple of price_every from RUNS_EVERY minutes on
        runs_every = -(-RUNS_EVERY // price_every) * price_every
    if runs_every < price_every or runs_every % price_every:
        raise InputError("--runs-every must be a multiple of --price-every")
    if events < 10 or events > 5000:
        raise InputError("--events must be between 10 and 5000")
    began = time.perf_counter()
    progress(prepare_database(engine, reset))
    _forget_stale_partitions(instance, engine)

    start = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days)
    # Stored under PRESCIENT_HOME before anything is traded in it: `prescient dev --offline`
    # rebuilds this very world, so the demo's positions stay priced against their own markets.
    state = world.WorldState.new(seed, events, start, history_days)
    world.save(settings().home, state)
    universe = state.universe(until=start)
    runs = price_updates = 0
    cycle_at = timedelta(hours=cycle_time_of_day().hour, minutes=cycle_time_of_day().minute)
    saved_urls = {k: os.environ.get(k) for k in URL_VARIABLES}
    with SimulatorServer(universe) as server, ExitStack() as stack:
        server.start()
        for key in URL_VARIABLES:
            os.environ[key] = server.url
        portfolios = create_examples(engine)
        past = f" (history since {universe.epoch:%Y-%m-%d})" if history_days else ""
        progress(f"simulator: {events} events from {start:%Y-%m-%d}{past}; portfolios: "
                 + ", ".join(f"{p['portfolio_id']} {p['name']}" for p in portfolios))

        interval, run_interval = timedelta(minutes=price_every), timedelta(minutes=runs_every)
        client = stack.enter_context(
            PolymarketClient.from_settings(server.url, server.url, requests_per_10s=UNLIMITED_REQUESTS))

        def advance_to(moment: datetime) -> None:
            """Move the simulated clock, running a price update at every interval boundary."""
            nonlocal runs, price_updates
            while universe.now < moment:
                next_tick = start + ((universe.now - start) // interval + 1) * interval
                target = min(next_tick, moment)
                universe.advance((target - universe.now).total_seconds() / 60)
                if target != next_tick:
                    continue
                if (target - start) % run_interval:
                    update_prices(engine, client)
                else:
                    runner.update_prices(instance)
                    runs += 1
                price_updates += 1

        for d in range(days):
            day_start = start + timedelta(days=d)
            advance_to(day_start + cycle_at)
            cycle = runner.run_cycle(instance, engine, day_start.date(), with_snapshot=False)
            runs += 1 + bool(cycle.signals_run) + bool(cycle.execution_run)
            advance_to(day_start + SNAPSHOT_AT)
            runner.snapshot(instance)
            runs += 1
            rows = reports.report(engine)
            total = sum(float(r["total_value"]) for r in rows)
            trades = sum(int(r["trades"]) for r in rows)
            progress(f"day {d + 1}/{days} {day_start:%Y-%m-%d}: {trades} trades so far, "
                     f"total value {total:,.2f} across {len(rows)} portfolios, "
                     f"{price_updates} price updates ({time.perf_counter() - began:.0f}s)")
            advance_to(day_start + timedelta(days=1))
        end = universe.now
        world.save(settings().home, state.at(universe))
    for key, value in saved_urls.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    exports = {name: info["path"] for name, info in export_tables(engine, exports_dir).items()}
    # The report the production portfolio_report_sensor writes after a snapshot, as a run of its job.
    written = runner.report(instance, str(report_dir) if report_dir else None)
    runs += 1
    report = written.asset_materializations_for_node("portfolio_report")[0].metadata["path"].path
    return DemoResult(days, start, end, time.perf_counter() - began, reports.report(engine), exports, runs,
                      price_updates, report=Path(report))
