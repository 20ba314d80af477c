"""The sensors, evaluated tick by tick the way the daemon does, against real instances.

Each tick goes through `evaluate_tick` (what the daemon calls), with the cursor the previous tick
returned; dynamic partition requests are applied to the instance as the daemon applies them.
"""

import time
from datetime import date, datetime, timedelta, timezone

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from sqlalchemy import text

from prescient_pipeline.dagster_home import PORTFOLIO_PARTITIONS
from prescient_pipeline.defs import runner
from prescient_pipeline.defs import ledger
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

def requested(run_request) -> tuple[str, list[int]]:
    config = run_request.run_config["ops"]["execute_signals"]["config"]
    return config["cycle_date"], config["portfolio_ids"]


def signal_records(instance) -> list:
    return list(instance.fetch_materializations(SIGNALS, limit=10_000, ascending=True).records)


def pending_days(engine) -> set[tuple[int, str]]:
    with engine.connect() as conn:
        return {(pid, day.isoformat()) for pid, day in conn.execute(text(
            "SELECT DISTINCT portfolio_id, cycle_date FROM trading_signals "
            "WHERE NOT executed AND rejection_reason IS NULL"))}


def by_day(pairs) -> list[tuple[str, list[int]]]:
    days: dict[str, list[int]] = {}
    for pid, day in sorted(pairs):
        days.setdefault(day, []).append(pid)
    return sorted((day, sorted(pids)) for day, pids in days.items())


def test_each_days_new_pending_signals_are_executed_in_one_run(engine, monkeypatch):
    days = [SIM_START.date(), SIM_START.date() + timedelta(days=1)]
    with simulator(monkeypatch, events=30), dg.instance_for_test() as instance:
        ids = [create(engine, f"book {i}") for i in range(3)]
        runner.refresh(instance)
        for day in days:
            runner.signals(instance, day, ids)  # one run per day, one materialization per portfolio
        records = signal_records(instance)
        assert len(records) == 6
        pending = pending_days(engine)
        assert pending, "the simulated markets give momentum signals on these days"

        first = tick(execute_signals_sensor, instance)
        # One run per day, for the portfolios whose signals of that day are pending.
        assert [requested(r) for r in first.run_requests] == by_day(pending)
        for request in first.run_requests:
            assert request.tags["prescient/cycle_date"] == requested(request)[0]
            assert dg.validate_run_config(execute_signals_job, request.run_config)
        assert len({r.run_key for r in first.run_requests}) == len(first.run_requests)

        assert tick(execute_signals_sensor, instance, first.cursor).run_requests == []

        # A re-run of a partition is a new materialization: its signals may have changed.
        runner.signals(instance, days[1], ids[0])
        runner.signals(instance, days[0], ids[2])
        second = tick(execute_signals_sensor, instance, first.cursor)
        now_pending = pending_days(engine)
        assert [requested(r) for r in second.run_requests] == by_day(
            pair for pair in [(ids[0], days[1].isoformat()), (ids[2], days[0].isoformat())] if pair in now_pending)
        third = tick(execute_signals_sensor, instance, second.cursor)
        assert third.run_requests == [] and third.cursor == second.cursor

        # The first request, launched as the daemon would, executes those portfolios' day.
        request = first.run_requests[0]
        result = run_job("execute_signals_job", instance, run_config=request.run_config, tags=request.tags)
        assert result.success
        day, pids = requested(request)
        assert not {(pid, day) for pid in pids} & pending_days(engine)
        [output] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
        assert output.event_specific_data.metadata["portfolios"].value == len(pids)


def test_a_daemon_starting_on_executed_history_launches_no_catch_up_runs(engine, monkeypatch):
    # What `prescient demo` and `prescient cycle` leave behind: every day's partition materialized
    # and executed in the same breath. A daemon starting later (no cursor yet) must not launch an
    # execution run per past day.
    days = [SIM_START.date() + timedelta(days=n) for n in range(3)]
    with simulator(monkeypatch, events=30), dg.instance_for_test() as instance:
        ids = [create(engine, f"book {i}") for i in range(2)]
        for day in days:
            runner.run_cycle(instance, engine, day, with_snapshot=False)
        assert len(signal_records(instance)) == len(days) * len(ids)
        assert pending_days(engine) == set()

        first = tick(execute_signals_sensor, instance)
        assert first.run_requests == []
        assert first.cursor, "the cursor moves past the history"
        assert tick(execute_signals_sensor, instance, first.cursor).run_requests == []


def test_more_materializations_than_a_page_are_all_requested_once(engine, monkeypatch):
    # 450 materialization events, reported in two bursts around the ticks, read 200 a page: the
    # cursor has to carry every tick into the next, and no (day, portfolio) is lost or repeated.
    monkeypatch.setattr(ledger, "EXECUTION_PAGE", 200)
    portfolio_ids = [create(engine, f"paged {n}") for n in range(8)]
    with dg.instance_for_test() as instance:
        def report(count: int, start: int) -> None:
            with engine.begin() as conn:
                for n in range(start, start + count):
                    day, pid = date(2026, 1, 1) + timedelta(days=n % 60), portfolio_ids[n // 60]
                    conn.execute(text(  # one pending signal per partition: there is work to do
                        "INSERT INTO trading_signals (portfolio_id, strategy_type, cycle_date, as_of, market_id, "
                        "side, amount) VALUES (:pid, 'momentum', :day, :day, 'm1', 'YES', 10)"),
                        {"pid": pid, "day": day})
            for n in range(start, start + count):
                day, pid = date(2026, 1, 1) + timedelta(days=n % 60), portfolio_ids[n // 60]
                instance.report_runless_asset_event(dg.AssetMaterialization(
                    asset_key=SIGNALS, partition=str(signals_partition_key(day, pid))))

        report(250, 0)
        ticks = [tick(execute_signals_sensor, instance)]
        report(200, 250)
        while ticks[-1].run_requests:
            ticks.append(tick(execute_signals_sensor, instance, ticks[-1].cursor))

        records = signal_records(instance)
        assert len(records) == 450
        # Pages of 200, 200 and 50 records; each page asks for one run per day among them.
        assert len(ticks) == 4 and ticks[-1].run_requests == []
        requested_pairs = sorted((day, pid) for t in ticks for r in t.run_requests
                                 for day, pids in [requested(r)] for pid in pids)
        materialized = sorted((day, int(pid)) for day, pid in (r.partition_key.split("|") for r in records))
        assert requested_pairs == materialized
        assert len({r.run_key for t in ticks for r in t.run_requests}) == sum(len(t.run_requests) for t in ticks)


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
        # One run for the day: the range of the daily portfolios' partitions, read once.
        [request] = cycle.run_requests
        assert request.run_key == f"cycle-{day}" and request.tags[CYCLE_TAG] == day
        assert (request.tags[ASSET_PARTITION_RANGE_START_TAG], request.tags[ASSET_PARTITION_RANGE_END_TAG]) == (
            str(signals_partition_key(day, daily[0])), str(signals_partition_key(day, daily[1])))
        assert {own_cadence, paused, archived}.isdisjoint(daily)

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
        "prune_history_schedule": "prune_history_job",
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


# --- where the date partitions begin --------------------------------------------------------------

def test_partitions_begin_on_the_first_day_of_any_portfolio_unless_configured(engine, monkeypatch):
    from prescient_pipeline.defs.strategy import partitions_start

    monkeypatch.delenv("PRESCIENT_PARTITIONS_START")
    today = datetime.now(timezone.utc).date().isoformat()
    assert partitions_start() == today, "no portfolio yet: only today's partitions"
    pid = create(engine, "new today")
    assert partitions_start() == today, "a portfolio created today misses no earlier day"
    with engine.begin() as conn:  # a replayed (or simulated) day before its creation
        conn.execute(text("INSERT INTO trading_signals (portfolio_id, strategy_type, cycle_date, as_of, market_id, "
                          "side, amount) VALUES (:pid, 'momentum', '2026-03-02', '2026-03-02', 'm1', 'YES', 10)"),
                     {"pid": pid})
    assert partitions_start() == "2026-03-02"
    monkeypatch.setenv("PRESCIENT_PARTITIONS_START", "2026-02-01")
    assert partitions_start() == "2026-02-01"
