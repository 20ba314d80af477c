"""The Dagster instance keeps runs, event logs and schedules in PostgreSQL."""

import os

import dagster as dg
import psycopg2

from prescient_pipeline import dagster_home
from prescient_pipeline.db.urls import database_name, libpq_url


@dg.op
def say_hello(context):
    context.log.info("hello")


@dg.job
def hello_job():
    say_hello()


def test_a_run_lands_in_postgresql(database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.delenv(dagster_home.STORAGE_ENV, raising=False)
    home = dagster_home.prepare()
    assert (home / "dagster.yaml").read_text() == dagster_home.REPO_DAGSTER_YAML.read_text()

    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        result = hello_job.execute_in_process(instance=instance)
        assert result.success



    url = os.environ[dagster_home.STORAGE_ENV]
    assert database_name(url) == f"{database_name(database_url)}_dagster"
    with psycopg2.connect(libpq_url(url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM runs WHERE run_id = %s", (result.run_id,))
        assert cur.fetchone()[0] == 1
        cur.execute("SELECT count(*) FROM event_logs WHERE run_id = %s", (result.run_id,))
        assert cur.fetchone()[0] > 0
    assert not list(tmp_path.rglob("*.db")), "no SQLite storage may be created"
