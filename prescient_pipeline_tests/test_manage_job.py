"""manage_portfolio_job: the launchpad path validates like the CLI and registers partitions."""

import dagster as dg
from sqlalchemy import text

from .helpers import run_job


def config(**fields):
    return {"ops": {"manage_portfolio": {"config": fields}}}


def rows(engine):
    with engine.connect() as conn:
        return conn.execute(text("SELECT portfolio_id, name, status FROM portfolios ORDER BY 1")).all()


def test_create_pause_archive_from_the_launchpad(engine):
    with dg.instance_for_test() as instance:
        created = run_job("manage_portfolio_job", instance, run_config=config(
            action="create", name="ui book", strategy="momentum", balance="2500", config_json='{"trade_amount": 40}'))
        assert created.success
        pid = rows(engine)[0][0]
        assert instance.get_dynamic_partitions("portfolios") == [str(pid)]
        assert run_job("manage_portfolio_job", instance, run_config=config(action="pause", portfolio_id=pid)).success
        assert rows(engine) == [(pid, "ui book", "paused")]
        assert run_job("manage_portfolio_job", instance, run_config=config(action="archive", portfolio_id=pid)).success
        assert rows(engine) == [(pid, "ui book", "archived")]
        assert instance.get_dynamic_partitions("portfolios") == []


def test_bad_input_fails_the_run_with_one_line_and_writes_nothing(engine):
    with dg.instance_for_test() as instance:
        for bad in (dict(action="create", name="x", strategy="nope", balance="10"),
                    dict(action="create", name="x", strategy="momentum", balance="-1"),
                    dict(action="create", name="x", strategy="momentum", balance="10", config_json='{"zzz": 1}'),
                    dict(action="pause", portfolio_id=999),
                    dict(action="create", name="x", strategy="momentum", balance="1e15"),
                    dict(action="create", name="x", strategy="momentum", balance="10", max_positions=99999999999),
                    dict(action="create", name="x\x1b[2J", strategy="momentum", balance="10"),
                    dict(action="explode", portfolio_id=1)):
            result = run_job("manage_portfolio_job", instance, run_config=config(**bad))
            assert not result.success, bad
            failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
            assert failure is not None and "\n" not in failure.description, bad
        assert rows(engine) == []


def test_database_errors_fail_the_run_with_one_clear_line(engine, database_url):
    # A database that does not exist on the same server: the connection fails inside the op.
    from prescient_pipeline.db.urls import with_database

    missing = with_database(database_url, "prescient_no_such_database")
    with dg.instance_for_test() as instance:
        result = run_job("manage_portfolio_job", instance, run_config={
            **config(action="create", name="x", strategy="momentum", balance="10"),
            "resources": {"database": {"config": {"url": missing}}},
        })
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert failure is not None, "a clear failure, not an unexpected error"
    assert "\n" not in failure.description
    assert "database" in failure.description and "prescient_no_such_database" in failure.description
    assert rows(engine) == []
