"""The report in Dagster (portfolio_report after every snapshot) and portfolio names in the UI:
run tags, materialization metadata and descriptions."""

import dagster as dg
from sqlalchemy import text
import pytest

from prescient_pipeline.defs import runner
from prescient_pipeline.defs.ledger import portfolio_report_job, portfolio_report_sensor
from prescient_pipeline.defs.portfolios import PORTFOLIO_NAME_TAG, PORTFOLIO_TAG
from prescient_pipeline.defs.resources import Database
from prescient_pipeline.defs.strategy import SIGNALS
from prescient_pipeline.services import portfolios as svc

from .chromium import Elements, dump_dom
from .helpers import SIM_START, simulator

REPORT = dg.AssetKey("portfolio_report")


def create(engine, name, strategy="momentum") -> int:
    return svc.create_portfolio(engine, svc.NewPortfolio.parse(name=name, strategy=strategy, balance="1000"))["portfolio_id"]


def tick(sensor, instance, cursor=None):
    from prescient_pipeline.definitions import defs

    context = dg.build_sensor_context(instance=instance, instance_ref=instance.get_ref(), cursor=cursor,
                                      resources={"database": Database()}, definitions=defs)
    return sensor.evaluate_tick(context)


def test_the_report_asset_writes_the_pages_and_links_them_from_its_metadata(engine, tmp_path):
    ids = [create(engine, "north star"), create(engine, "south wind", "arbitrage")]
    with dg.instance_for_test() as instance:
        result = runner.report(instance, str(tmp_path / "reports"))
        materialization = instance.get_latest_materialization_event(REPORT).asset_materialization
    assert result.success
    index = tmp_path / "reports" / "index.html"
    metadata = materialization.metadata
    assert metadata["path"] == dg.MetadataValue.path(str(index))
    assert metadata["url"] == dg.MetadataValue.url(index.as_uri())
    assert metadata["portfolios"].value == 2
    table = metadata["pages"].value
    for pid, name in zip(ids, ("north star", "south wind")):
        assert name in table and str(tmp_path / "reports" / f"portfolio-{pid}.html") in table
    names = [link for tag, link in Elements(index.read_text()).elements if tag == "a"]
    assert [a["href"] for a in names] == [f"portfolio-{pid}.html" for pid in ids]


@pytest.mark.slow
def test_every_successful_snapshot_requests_a_fresh_report(engine, tmp_path, monkeypatch):
    monkeypatch.setenv("PRESCIENT_HOME", str(tmp_path))
    create(engine, "north star")
    with dg.instance_for_test() as instance:
        started = tick(portfolio_report_sensor, instance)  # the first tick only places the cursor
        assert not started.run_requests

        snapshot_run = runner.snapshot(instance)
        after = tick(portfolio_report_sensor, instance, started.cursor)
        assert [(r.run_key, r.job_name) for r in after.run_requests] == [
            (f"report-after-{snapshot_run}", None)]
        assert portfolio_report_sensor.job_name == portfolio_report_job.name

        runner.update_prices(instance)  # not a snapshot: no report
        assert tick(portfolio_report_sensor, instance, after.cursor).run_requests == []

        # The requested run (the job with no config, as the daemon launches it) writes the
        # default report directory.
        assert runner.report(instance).success
    index = tmp_path / "reports" / "index.html"
    assert len(Elements(dump_dom(index)).with_class("js-plotly-plot")) == 1


def test_runs_and_materializations_name_their_portfolio(engine, monkeypatch):
    with simulator(monkeypatch, events=30), dg.instance_for_test() as instance:
        pid = create(engine, "north star")
        cycle = runner.run_cycle(instance, engine, SIM_START.date(), with_snapshot=True)
        runner.update_prices(instance)

        # A cycle of one portfolio: its signals run and its execution run carry its name.
        for run_id in (cycle.signals_run, cycle.execution_run):
            tags = instance.get_run_by_id(run_id).tags
            assert tags[PORTFOLIO_TAG] == str(pid) and tags[PORTFOLIO_NAME_TAG] == "north star", tags
        # The UI's run list filters by the name.
        named = instance.get_runs(dg.RunsFilter(tags={PORTFOLIO_NAME_TAG: "north star"}))
        assert {r.job_name for r in named} == {"portfolio_signals_job", "execute_signals_job"}

        signals = instance.get_latest_materialization_event(SIGNALS).asset_materialization
        assert signals.metadata["portfolio_name"].value == "north star"
        values = instance.fetch_materializations(dg.AssetKey("portfolio_values"), limit=10).records
        sources = {r.asset_materialization.metadata["source"].value for r in values}
        assert sources == {"snapshot", "price_update"}
        for record in values:
            event = record.asset_materialization
            assert event.partition == str(pid)
            assert event.metadata["portfolio_name"].value == "north star"
            assert event.description.startswith(f"north star (portfolio {pid})")
        outputs = instance.all_logs(cycle.execution_run, of_type=dg.DagsterEventType.STEP_OUTPUT)
        assert [e.dagster_event.step_output_data.metadata["portfolio_name"].value for e in outputs] == ["north star"]


def test_execution_requests_carry_the_portfolio_name(engine):
    from prescient_pipeline.defs.ledger import execute_signals_sensor
    from prescient_pipeline.defs.strategy import signals_partition_key

    pid = create(engine, "north star")
    with engine.begin() as conn:  # a pending signal of that day: there is something to execute
        conn.execute(text("INSERT INTO trading_signals (portfolio_id, strategy_type, cycle_date, as_of, market_id, "
                          "side, amount) VALUES (:pid, 'momentum', '2026-03-02', '2026-03-02', 'm1', 'YES', 10)"),
                     {"pid": pid})
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("portfolios", [str(pid)])
        instance.report_runless_asset_event(dg.AssetMaterialization(
            asset_key=SIGNALS, partition=str(signals_partition_key("2026-03-02", pid))))
        requests = tick(execute_signals_sensor, instance).run_requests
    # A day's run of one portfolio carries its id and name.
    assert [{k: v for k, v in r.tags.items() if k.startswith("prescient/")} for r in requests] == [
        {PORTFOLIO_TAG: str(pid), PORTFOLIO_NAME_TAG: "north star", "prescient/cycle_date": "2026-03-02"}]
