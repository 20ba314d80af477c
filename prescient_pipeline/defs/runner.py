"""Run the production jobs now, in this process, recorded in the Dagster instance.

`prescient cycle`, `prescient prices update`, `prescient snapshot` and `prescient demo` use this
instead of waiting for schedules and sensors: the same jobs and assets, launched directly.
"""

import logging
from dataclasses import dataclass, field
from datetime import date

import dagster as dg

from ..abandoned_runs import host_tags
from ..dagster_home import register_portfolio
from ..services.portfolio_keys import active_portfolios
from .portfolios import portfolio_tags
from .strategy import CYCLE_TAG, day_range_tags, signals_partition_key

log = logging.getLogger(__name__)


@dataclass
class CycleResult:
    day: date
    refresh_run: str
    portfolio_ids: list[int] = field(default_factory=list)
    signals_run: str | None = None  # one run for every portfolio's partition of the day
    execution_run: str | None = None  # one run executing all of them
    snapshot_run: str | None = None


def _defs():
    from ..definitions import defs

    return defs


# The run's own event log keeps every line, and dagster.yaml sends warnings and errors (with their
# tracebacks) to the log file; the command that launched the run says in one line what failed.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def _run(job_name: str, instance: dg.DagsterInstance, run_config: dict | None = None,
         **kwargs) -> dg.ExecuteInProcessResult:
    job = _defs().resolve_job_def(job_name)
    tags = {**host_tags(), **(kwargs.pop("tags", None) or {})}
    return job.execute_in_process(instance=instance, raise_on_error=True, tags=tags,
                                  run_config={**QUIET_CONSOLE, **(run_config or {})}, **kwargs)


def refresh(instance: dg.DagsterInstance, day: date | None = None) -> str:
    tags = {CYCLE_TAG: day.isoformat()} if day else None
    return _run("refresh_markets_job", instance, tags=tags).run_id


def _tags(ids: list[int], names: dict[int, str] | None) -> dict[str, str] | None:
    """A run of one portfolio carries its id and name (a run of several shows them per partition)."""
    return portfolio_tags(ids[0], (names or {}).get(ids[0])) if len(ids) == 1 else None


def signals(instance: dg.DagsterInstance, day: date, portfolio_ids: int | list[int],
            names: dict[int, str] | None = None) -> str:
    """One run of `portfolio_signals` over `day`'s partitions of these portfolios: the day's
    universe is read once in it."""
    ids = [portfolio_ids] if isinstance(portfolio_ids, int) else list(portfolio_ids)
    for portfolio_id in ids:
        register_portfolio(instance, portfolio_id)
    if len(ids) == 1:
        return _run("portfolio_signals_job", instance, partition_key=signals_partition_key(day, ids[0]),
                    tags=_tags(ids, names)).run_id
    return _run("portfolio_signals_job", instance, tags=day_range_tags(day, ids)).run_id


def execute(instance: dg.DagsterInstance, portfolio_ids: int | list[int], day: date | None = None,
            names: dict[int, str] | None = None) -> str:
    ids = [portfolio_ids] if isinstance(portfolio_ids, int) else sorted(portfolio_ids)
    config = {"portfolio_ids": ids, "cycle_date": day.isoformat() if day else None}
    return _run("execute_signals_job", instance, run_config={"ops": {"execute_signals": {"config": config}}},
                tags=_tags(ids, names)).run_id


def update_prices(instance: dg.DagsterInstance) -> str:
    return _run("update_prices_job", instance).run_id


def snapshot(instance: dg.DagsterInstance) -> str:
    return _run("portfolio_snapshot_job", instance).run_id


def report(instance: dg.DagsterInstance, out_dir: str | None = None) -> dg.ExecuteInProcessResult:
    """Write the HTML report (what portfolio_report_sensor starts after each snapshot)."""
    config = {"ops": {"portfolio_report": {"config": {"out_dir": out_dir}}}} if out_dir else None
    return _run("portfolio_report_job", instance, run_config=config)


def run_cycle(instance: dg.DagsterInstance, engine, day: date, portfolio_id: int | None = None,
              with_snapshot: bool = True) -> CycleResult:
    """Refresh; then `day`'s signals of every active portfolio (or one) in one run and their
    execution in one more; then a snapshot: the runs the schedule and sensors launch."""
    result = CycleResult(day, refresh(instance, day))
    names = {p["portfolio_id"]: p["name"] for p in active_portfolios(engine)
             if portfolio_id is None or p["portfolio_id"] == portfolio_id}
    result.portfolio_ids = list(names)
    if result.portfolio_ids:
        result.signals_run = signals(instance, day, result.portfolio_ids, names)
        result.execution_run = execute(instance, result.portfolio_ids, day, names)
    if with_snapshot:
        result.snapshot_run = snapshot(instance)
    return result
