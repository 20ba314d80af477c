"""Run the production jobs now, in this process, recorded in the Dagster instance.

`prescient cycle`, `prescient prices update`, `prescient snapshot` and `prescient demo` use this
instead of waiting for schedules and sensors: the same jobs and assets, launched directly.
"""

import logging
from dataclasses import dataclass, field
from datetime import date

import dagster as dg

from ..dagster_home import register_portfolio
from ..services.portfolio_keys import active_portfolios
from .portfolios import portfolio_tags
from .strategy import CYCLE_TAG, signals_partition_key

log = logging.getLogger(__name__)


@dataclass
class CycleResult:
    day: date
    refresh_run: str
    signal_runs: dict[int, str] = field(default_factory=dict)
    execution_runs: dict[int, str] = field(default_factory=dict)
    snapshot_run: str | None = None


def _defs():
    from ..definitions import defs

    return defs


# The run's own event log keeps every line; the terminal only needs warnings.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _run(job_name: str, instance: dg.DagsterInstance, run_config: dict | None = None,
         **kwargs) -> dg.ExecuteInProcessResult:
    job = _defs().resolve_job_def(job_name)
    return job.execute_in_process(instance=instance, raise_on_error=True,
                                  run_config={**QUIET_CONSOLE, **(run_config or {})}, **kwargs)


def refresh(instance: dg.DagsterInstance, day: date | None = None) -> str:
    tags = {CYCLE_TAG: day.isoformat()} if day else None
    return _run("refresh_markets_job", instance, tags=tags).run_id


def signals(instance: dg.DagsterInstance, day: date, portfolio_id: int, name: str | None = None) -> str:
    register_portfolio(instance, portfolio_id)
    key = signals_partition_key(day, portfolio_id)
    return _run("portfolio_signals_job", instance, partition_key=key, tags=portfolio_tags(portfolio_id, name)).run_id


def execute(instance: dg.DagsterInstance, portfolio_id: int, day: date | None = None, name: str | None = None) -> str:
    config = {"portfolio_id": portfolio_id, "cycle_date": day.isoformat() if day else None}
    return _run("execute_signals_job", instance, run_config={"ops": {"execute_signals": {"config": config}}},
                tags=portfolio_tags(portfolio_id, name)).run_id


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
    """Refresh, signals for `day` and execution for each active portfolio (or one), snapshot."""
    result = CycleResult(day, refresh(instance, day))
    names = {p["portfolio_id"]: p["name"] for p in active_portfolios(engine)}
    if portfolio_id is not None:
        names = {pid: name for pid, name in names.items() if pid == portfolio_id}
    for pid, name in names.items():
        result.signal_runs[pid] = signals(instance, day, pid, name)
        result.execution_runs[pid] = execute(instance, pid, day, name)
    if with_snapshot:
        result.snapshot_run = snapshot(instance)
    return result
