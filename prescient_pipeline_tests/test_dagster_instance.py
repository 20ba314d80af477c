"""The Dagster instance keeps runs, event logs and schedules in PostgreSQL, and plain Dagster
commands find it from prescient's own settings."""

import os
import subprocess
import sys

import dagster as dg
import psycopg2
import pytest

from prescient_pipeline import dagster_home
from prescient_pipeline.db.urls import database_name, libpq_url

from .helpers import simulator


@dg.op
def say_hello(context):
    context.log.info("hello")


@dg.job
def hello_job():
    say_hello()


def test_a_run_lands_in_postgresql(database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    home = dagster_home.prepare()
    assert (home / "dagster.yaml").read_text() == dagster_home.REPO_DAGSTER_YAML.read_text()

    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        result = hello_job.execute_in_process(instance=instance)
        assert result.success
        url = instance.run_storage.postgres_url

    assert database_name(url) == f"{database_name(database_url)}_dagster"
    with psycopg2.connect(libpq_url(url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM runs WHERE run_id = %s", (result.run_id,))
        assert cur.fetchone()[0] == 1
        cur.execute("SELECT count(*) FROM event_logs WHERE run_id = %s", (result.run_id,))
        assert cur.fetchone()[0] > 0
    assert not list(tmp_path.rglob("*.db")), "no SQLite storage may be created"


def _runs_of(url: str, job_name: str) -> list[str]:
    with psycopg2.connect(libpq_url(url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT status FROM runs WHERE pipeline_name = %s", (job_name,))
        return [status for (status,) in cur.fetchall()]


@pytest.mark.slow
def test_a_plain_dagster_command_uses_the_prescient_instance(engine, database_url, tmp_path, monkeypatch):
    """`dagster asset materialize -m ...`, as Dagster's docs type it, with nothing set but the
    app database and a DAGSTER_HOME holding the repo's dagster.yaml (no variable that only
    `prescient` sets): the run lands in the same PostgreSQL storage. (`engine` empties the
    tables: a refresh of this small universe after a bigger one would be refused as a collapse.)"""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    dagster_home.prepare()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRESCIENT_DAGSTER")}
    with simulator(monkeypatch, events=20) as server:
        env.update(PRESCIENT_GAMMA_URL=server.url, PRESCIENT_CLOB_URL=server.url)
        done = subprocess.run(
            [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "prescient_pipeline.definitions",
             "--select", "polymarket_events,polymarket_markets"],
            env=env, capture_output=True, text=True, timeout=300,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    with dg.DagsterInstance.get() as instance:
        url = instance.run_storage.postgres_url
    assert database_name(url) == f"{database_name(database_url)}_dagster"
    assert "SUCCESS" in _runs_of(url, "__ASSET_JOB")
