"""A run whose process is killed is marked failed the next time a prescient command opens the
Dagster instance; runs whose process lives are left alone."""

import os
import signal
import subprocess
import sys
import time

import dagster as dg
import pytest

from prescient_pipeline import dagster_home
from prescient_pipeline.abandoned_runs import fail_abandoned_runs

SCRIPT = """
import time
import dagster as dg

@dg.op
def wait_forever():
    time.sleep(600)

@dg.job
def killed_in_flight_job():
    wait_forever()

with dg.DagsterInstance.get() as instance:
    killed_in_flight_job.execute_in_process(instance=instance)
"""


def started_run(instance, proc, timeout=120.0):
    """The STARTED run of the script's job, once its process has begun it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        records = instance.get_run_records(dg.RunsFilter(job_name="killed_in_flight_job",
                                                         statuses=[dg.DagsterRunStatus.STARTED]))
        if records:
            return records[0].dagster_run
        time.sleep(0.5)
    raise AssertionError("the run never started")


def by_the_next_command():
    return dagster_home.instance()  # what every prescient command that talks to Dagster opens


def by_the_daemon_sensor():
    from prescient_pipeline.defs.run_health import abandoned_runs_sensor

    instance = dg.DagsterInstance.get()
    abandoned_runs_sensor(dg.build_sensor_context(instance=instance))
    return instance


@pytest.mark.slow
@pytest.mark.parametrize("noticed", [by_the_next_command, by_the_daemon_sensor])
def test_a_killed_run_is_marked_failed(database_url, tmp_path, monkeypatch, noticed):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    dagster_home.prepare()
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], env=dict(os.environ), stderr=subprocess.PIPE, text=True)
    try:
        with dg.DagsterInstance.get() as instance:
            run = started_run(instance, proc)
            assert fail_abandoned_runs(instance) == [], "a run whose process lives is left alone"
            assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    instance = noticed()
    try:
        after = instance.get_run_by_id(run.run_id)
        assert after.status == dg.DagsterRunStatus.FAILURE
        failure = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        assert failure and f"pid {proc.pid}" in failure[-1].message and "killed" in failure[-1].message
        assert fail_abandoned_runs(instance) == [], "marked once"
    finally:
        instance.dispose()
