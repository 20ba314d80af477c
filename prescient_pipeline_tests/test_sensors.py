"""The sensors, evaluated tick by tick the way the daemon does, against real instances.

Each tick goes through `evaluate_tick` (what the daemon calls), with the cursor the previous tick
returned; dynamic partition requests are applied to the instance as the daemon applies them.
"""

import time
from datetime import date, datetime, timedelta, timezone

import dagster as dg

from prescient_pipeline.dagster_home import PORTFOLIO_PARTITIONS
from prescient_pipeline.defs import runner
from prescient_pipeline.defs.ledger import execute_signals_job, execute_signals_sensor
from prescient_pipeline.defs.portfolios import portfolio_partitions_sensor
from prescient_pipeline.defs.resources import Database
from prescient_pipeline.defs.strategy import (
    CYCLE_TAG,
    SIGNALS,
    portfolio_cadence_sensor,
    signals_partition_key,
    trading_cycle_sensor,
)
from prescient_pipeline.services import portfolios as svc

from .helpers import SIM_START, run_job, simulator


def tick(sensor, instance, cursor=None):
    from prescient_pipeline.definitions import defs

    # The instance ref is what lets the tick check requested partition keys against the
    # instance's dynamic partitions, as the daemon's ticks do.
    context = dg.build_sensor_context(
        instance=instance, instance_ref=instance.get_ref(), cursor=cursor,
        resources={"database": Database()}, definitions=defs,
    )
    return sensor.evaluate_tick(context)


def apply_partition_requests(instance, requests) -> None:
    """What the daemon does with a tick's dynamic_partitions_requests."""
    for request in requests:
        if isinstance(request, dg.AddDynamicPartitionsRequest):
            new = [k for k in request.partition_keys
                   if not instance.has_dynamic_partition(request.partitions_def_name, k)]
            instance.add_dynamic_partitions(request.partitions_def_name, new)
        else:
            for key in request.partition_keys:
                if instance.has_dynamic_partition(request.partitions_def_name, key):
                    instance.delete_dynamic_partition(request.partitions_def_name, key)


def sync_partitions(instance) -> None:
    apply_partition_requests(instance, tick(portfolio_partitions_sensor, instance).dynamic_partitions_requests)


def create(engine, name, strategy="momentum", **config) -> int:
    new = svc.NewPortfolio.parse(name=name, strategy=strategy, balance="1000", config=config or None)
    return svc.create_portfolio(engine, new)["portfolio_id"]


def keys(instance) -> set[str]:
    return set(instance.get_dynamic_partitions(PORTFOLIO_PARTITIONS))


# --- portfolio_partitions_sensor ---------------------------------------------------------------

def test_partition_keys_follow_portfolios_created_archived_and_deleted(engine):
    with dg.instance_for_test() as instance:
        a, b, c = (create(engine, n) for n in ("alpha", "beta", "gamma"))
        first = tick(portfolio_partitions_sensor, instance)
        assert [(type(r).__name__, list(r.partition_keys)) for r in first.dynamic_partitions_requests] == [
            ("AddDynamicPartitionsRequest", [str(a), str(b), str(c)])
        ]
        apply_partition_requests(instance, first.dynamic_partitions_requests)
        assert keys(instance) == {str(a), str(b), str(c)}

        quiet = tick(portfolio_partitions_sensor, instance)
        assert not quiet.dynamic_partitions_requests and "already match" in quiet.skip_message

        svc.set_status(engine, a, "paused", "still live")
        svc.set_status(engine, b, "archived", "done")
        svc.delete_portfolio(engine, c)
        d = create(engine, "delta")
        second = tick(portfolio_partitions_sensor, instance)
        requests = {type(r).__name__: sorted(r.partition_keys) for r in second.dynamic_partitions_requests}
        assert requests == {"AddDynamicPartitionsRequest": [str(d)],
                            "DeleteDynamicPartitionsRequest": sorted([str(b), str(c)])}
        apply_partition_requests(instance, second.dynamic_partitions_requests)
        assert keys(instance) == {str(a), str(d)}, "paused stays; archived and deleted are gone"
        assert not tick(portfolio_partitions_sensor, instance).dynamic_partitions_requests


# --- execute_signals_sensor --------------------------------------------------------------------

def expected_request(partition_key: str) -> tuple[int, str]:
    day, portfolio = partition_key.split("|")
    return int(portfolio), day


def requested(run_request) -> tuple[int, str]:
    config = run_request.run_config["ops"]["execute_signals"]["config"]
    return config["portfolio_id"], config["cycle_date"]


def signal_records(instance) -> list:
    return list(instance.fetch_materializations(SIGNALS, limit=10_000, ascending=True).records)


def test_every_signals_materialization_requests_one_execution(engine, monkeypatch):
    days = [SIM_START.date(), SIM_START.date() + timedelta(days=1)]
    with simulator(monkeypatch, events=30), dg.instance_for_test() as instance:
        ids = [create(engine, f"book {i}") for i in range(3)]
        runner.refresh(instance)
        for day in days:
            for pid in ids:
                runner.signals(instance, day, pid)
        records = signal_records(instance)
        assert len(records) == 6

        first = tick(execute_signals_sensor, instance)
        assert [requested(r) for r in first.run_requests] == [expected_request(r.partition_key) for r in records]
        assert sorted(requested(r) for r in first.run_requests) == sorted(
            (pid, day.isoformat()) for day in days for pid in ids)
        assert [r.run_key for r in first.run_requests] == [f"execute-{r.storage_id}" for r in records]
        for request in first.run_requests:
            pid, day = requested(request)
            assert request.tags["prescient/portfolio"] == str(pid) and request.tags["prescient/cycle_date"] == day
            assert dg.validate_run_config(execute_signals_job, request.run_config)

        assert tick(execute_signals_sensor, instance, first.cursor).run_requests == []

        # A re-run of a partition is a new materialization: its signals may have changed.
        runner.signals(instance, days[1], ids[0])
        runner.signals(instance, days[0], ids[2])
        second = tick(execute_signals_sensor, instance, first.cursor)
        assert [requested(r) for r in second.run_requests] == [
            (ids[0], days[1].isoformat()), (ids[2], days[0].isoformat())]
        third = tick(execute_signals_sensor, instance, second.cursor)
        assert third.run_requests == [] and third.cursor == second.cursor

        # The first request, launched as the daemon would, executes that portfolio's day.
        request = first.run_requests[0]
        result = run_job("execute_signals_job", instance, run_config=request.run_config, tags=request.tags)
        assert result.success


def test_more_materializations_than_a_page_are_all_requested_once(engine):
    # 450 materialization events, reported in two bursts around the ticks: more than two of the
    # sensor's 200-record pages, so the cursor has to carry every tick into the next.
    with dg.instance_for_test() as instance:
        def report(count: int, start: int) -> None:
            for n in range(start, start + count):
                day = date(2026, 1, 1) + timedelta(days=n % 60)
                instance.report_runless_asset_event(dg.AssetMaterialization(
                    asset_key=SIGNALS, partition=str(signals_partition_key(day, 1 + n // 60))))

        started = time.perf_counter()
        report(250, 0)
        ticks = [tick(execute_signals_sensor, instance)]
        report(200, 250)
        while ticks[-1].run_requests:
            ticks.append(tick(execute_signals_sensor, instance, ticks[-1].cursor))
        assert time.perf_counter() - started < 60

        records = signal_records(instance)
        assert len(records) == 450
        assert [len(t.run_requests) for t in ticks] == [200, 200, 50, 0]
        all_requests = [r for t in ticks for r in t.run_requests]
        assert [r.run_key for r in all_requests] == [f"execute-{r.storage_id}" for r in records]
        assert [requested(r) for r in all_requests] == [expected_request(r.partition_key) for r in records]


# --- trading_cycle_sensor ----------------------------------------------------------------------

def test_a_cycle_refresh_requests_the_days_partition_of_each_portfolio_on_the_daily_cycle(engine, monkeypatch):
    with simulator(monkeypatch, events=20), dg.instance_for_test() as instance:
        daily = [create(engine, "daily one"), create(engine, "daily two", strategy="arbitrage")]
        own_cadence = create(engine, "own cadence", cycle_cron="0 */4 * * *")
        paused = create(engine, "paused")
        svc.set_status(engine, paused, "paused", "off")
        archived = create(engine, "archived")
        sync_partitions(instance)
        svc.set_status(engine, archived, "archived", "gone")

        started = tick(trading_cycle_sensor, instance)  # the first tick only places the cursor
        assert not started.run_requests and "Initiating" in started.skip_message

        day = "2026-03-02"
        runner.refresh(instance, date.fromisoformat(day))
        cycle = tick(trading_cycle_sensor, instance, started.cursor)
        assert [r.partition_key for r in cycle.run_requests] == [
            str(signals_partition_key(day, pid)) for pid in daily]
        assert [r.run_key for r in cycle.run_requests] == [f"cycle-{day}-{pid}" for pid in daily]
        assert all(r.tags.get(CYCLE_TAG) == day for r in cycle.run_requests)
        assert {own_cadence, paused, archived}.isdisjoint(
            int(r.partition_key.split("|")[1]) for r in cycle.run_requests)

        runner.refresh(instance)  # an hourly refresh, not a cycle
        plain = tick(trading_cycle_sensor, instance, cycle.cursor)
        assert plain.run_requests == []
        assert tick(trading_cycle_sensor, instance, plain.cursor).run_requests == []


# --- portfolio_cadence_sensor ------------------------------------------------------------------

def away_from_a_minute_boundary() -> None:
    if datetime.now(timezone.utc).second >= 58:
        time.sleep(3)


def test_a_cycle_cron_portfolio_is_requested_once_per_tick_window(engine):
    with dg.instance_for_test() as instance:
        every_minute = create(engine, "every minute", cycle_cron="* * * * *")
        create(engine, "daily")
        paused = create(engine, "paused cadence", cycle_cron="* * * * *")
        svc.set_status(engine, paused, "paused", "off")
        sync_partitions(instance)
        away_from_a_minute_boundary()

        first = tick(portfolio_cadence_sensor, instance)  # no cursor: the window starts now
        assert first.run_requests == []

        # Five minute boundaries passed since the cursor: still one request, for the first one.
        window_start = datetime.now(timezone.utc) - timedelta(minutes=5)
        due = window_start.replace(second=0, microsecond=0) + timedelta(minutes=1)
        caught_up = tick(portfolio_cadence_sensor, instance, str(window_start.timestamp()))
        assert [(r.partition_key, r.run_key) for r in caught_up.run_requests] == [
            (str(signals_partition_key(due.date(), every_minute)), f"cadence-{every_minute}-{due.isoformat()}")]
        assert float(caught_up.cursor) > window_start.timestamp() + 299

        away_from_a_minute_boundary()
        again = tick(portfolio_cadence_sensor, instance, caught_up.cursor)
        assert again.run_requests == [], "no boundary passed since the last tick"


# --- the code location -------------------------------------------------------------------------

def test_definitions_hold_the_promised_names_all_running_by_default():
    from prescient_pipeline.definitions import defs

    dg.Definitions.validate_loadable(defs)
    jobs = {job.name: job for job in defs.resolve_all_job_defs()}
    assert {"execute_signals_job", "update_prices_job", "portfolio_snapshot_job", "archive_signals_job",
            "refresh_markets_job", "portfolio_signals_job"} <= set(jobs)
    assets = {key.to_user_string() for key in defs.resolve_all_asset_keys()}
    assert {"polymarket_events", "polymarket_markets", "portfolio_signals"} <= assets
    signals = defs.resolve_assets_def(SIGNALS).partitions_def
    assert isinstance(signals, dg.MultiPartitionsDefinition)
    assert {d.name: type(d.partitions_def) for d in signals.partitions_defs} == {
        "date": dg.DailyPartitionsDefinition, "portfolio": dg.DynamicPartitionsDefinition}
    assert signals.get_partitions_def_for_dimension("portfolio").name == PORTFOLIO_PARTITIONS

    schedules = {s.name: s for s in defs.schedules}
    targets = {name: s.job_name for name, s in schedules.items()}
    assert targets == {
        "refresh_markets_schedule": "refresh_markets_job",
        "trading_cycle_schedule": "refresh_markets_job",
        "update_prices_schedule": "update_prices_job",
        "portfolio_snapshot_schedule": "portfolio_snapshot_job",
        "archive_signals_schedule": "archive_signals_job",
    }
    assert schedules["update_prices_schedule"].cron_schedule == "*/5 * * * *"
    sensors = {s.name: s for s in defs.sensors}
    assert {"portfolio_partitions_sensor", "execute_signals_sensor", "trading_cycle_sensor",
            "portfolio_cadence_sensor", "abandoned_runs_sensor"} <= set(sensors)
    for definition in [*schedules.values(), *sensors.values()]:
        assert definition.default_status.value == "RUNNING", definition.name
    for name in schedules:
        assert defs.resolve_schedule_def(name).job.name == targets[name]
    for name in sensors:
        defs.resolve_sensor_def(name)
