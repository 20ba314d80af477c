"""Runs whose process died: marked failed by `abandoned_runs_sensor` while the daemon runs, and
whenever a `prescient` command opens the instance.

A run killed with its process (kill -9, a reboot, an out-of-memory kill) never writes its end, so
Dagster shows it STARTED forever and its concurrency slots stay taken. Dagster's run monitoring
(enabled in dagster.yaml) fails runs that never start and frees slots of ended runs, but with the
default run launcher it cannot check whether a started run's process is alive. We can: the
RUN_START event names the process (pid), and a process created after that moment is another one.
Only runs of this machine are checked: those tagged with its host name, or any when Dagster's
storage is local (SQLite, a socket, or localhost), where no other machine can run them.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)

HOST_TAG = "prescient/host"


def host_tags() -> dict[str, str]:
    """Tags for a run started here, so it can be recognised as this machine's later."""
    return {HOST_TAG: socket.gethostname()}


def fail_abandoned_runs(instance) -> list[str]:
    """Mark failed every STARTED run of this machine whose process is gone; return their ids."""
    from dagster import DagsterEventType, DagsterRunStatus, RunsFilter

    here = socket.gethostname()
    local_storage = _storage_is_local(instance)
    failed = []
    for record in instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED])):
        run = record.dagster_run
        host = run.tags.get(HOST_TAG)
        if host != here and not (host is None and local_storage):
            continue
        starts = instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_START)
        if not starts or starts[-1].dagster_event is None or starts[-1].dagster_event.pid is None:
            continue
        pid, started_at = starts[-1].dagster_event.pid, starts[-1].timestamp
        if _process_alive_since(pid, started_at):
            continue
        message = f"The process running this run (pid {pid} on {here}) is gone: the run was killed, so it is marked failed."
        instance.report_run_failed(run, message)
        log.warning("run %s of %s was killed with its process; marked failed", run.run_id, run.job_name)
        failed.append(run.run_id)
    return failed


def _process_alive_since(pid: int, started_at: float) -> bool:
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return process.create_time() <= started_at + 1  # created later: the pid was reused
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:  # alive, but not ours to inspect: leave it be
        return True


def _storage_is_local(instance) -> bool:
    from sqlalchemy.engine import make_url

    url = getattr(instance.run_storage, "postgres_url", None)
    if not url:
        return True  # SQLite files in DAGSTER_HOME
    parsed = make_url(url)
    return parsed.host in (None, "", "localhost", "127.0.0.1", "::1") or str(parsed.query.get("host", "")).startswith("/")
