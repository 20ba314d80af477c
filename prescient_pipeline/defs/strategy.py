"""`portfolio_signals`: one partition per day x portfolio, and what requests it.

The daily cycle schedule refreshes the markets; when that run succeeds, a run-status sensor
requests the day's partitions of every active portfolio in one run, which reads the day's
universe once for all of them. Portfolios with their own `cycle_cron` are requested by
`portfolio_cadence_sensor` on that cadence instead.

A backtest portfolio's partition replays its day (services/backtest.replay_all_through, a run's
backtest portfolios of a day together): earlier unreplayed days first, in order, so any backfill
order gives the CLI's ledger; two blocking checks prove the replay used nothing later than it could have known.
"""

import logging
from types import SimpleNamespace
from datetime import date, datetime, time, timedelta, timezone

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
import pandas as pd
from dagster._utils.schedules import cron_string_iterator  # Dagster's own cron evaluation

from ..config import settings
from ..db.engine import get_engine
from ..services import lookahead
from ..services.portfolio_keys import active_portfolios, backtest_portfolio_ids, first_ledger_day
from ..services.portfolios import get_portfolio
from ..services.signals import as_of_for, generate_signals, universe_for
from .market_data import MARKETS, refresh_markets_job
from .markdown import markdown_table
from .portfolios import portfolio_tags, portfolios_partitions
from .resources import Database

SIGNALS = dg.AssetKey("portfolio_signals")
EVERY_PORTFOLIO_SIGNALLED = "every_portfolio_signalled"
NO_LOOKAHEAD_FILLS = "backtest_fills_use_no_later_observation"
NO_EARLY_SETTLEMENTS = "backtest_settles_at_or_after_resolution"
CYCLE_TAG = "prescient/cycle_date"

def partitions_start() -> str:
    """PRESCIENT_PARTITIONS_START, else the first day of any portfolio (today when there is none).

    Dagster counts every (day, portfolio) pair of the grid, so a fixed early start made every
    day before a portfolio existed a "missing" partition. Read when the code location loads:
    days before it can be replayed by setting PRESCIENT_PARTITIONS_START.
    """
    configured = settings().partitions_start
    if configured:
        return configured
    today = datetime.now(timezone.utc).date()
    try:
        first = first_ledger_day(get_engine())
    except Exception as exc:  # no database or no schema yet: the grid starts today, as for an empty ledger
        logging.getLogger(__name__).info("portfolio_signals partitions start today (%s)", type(exc).__name__)
        first = None
    return min(first or today, today).isoformat()


daily_partitions = dg.DailyPartitionsDefinition(start_date=partitions_start(), end_offset=1, timezone="UTC")
signals_partitions = dg.MultiPartitionsDefinition({"date": daily_partitions, "portfolio": portfolios_partitions})


def signals_partition_key(day: date | str, portfolio_id: int | str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"date": str(day), "portfolio": str(portfolio_id)})


@dg.asset(
    key=SIGNALS,
    partitions_def=signals_partitions,
    deps=[MARKETS],
    group_name="strategies",
    kinds={"postgres", "pandas"},
    # A day's portfolios (or a backfill's range) run together: one run reads each day's universe
    # once and shares it, instead of one run and one universe read per portfolio.
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[
        dg.AssetCheckSpec(EVERY_PORTFOLIO_SIGNALLED, asset=SIGNALS),
        # Blocking: a look-ahead makes a backtest's numbers meaningless, so the run fails loudly
        # (and nothing downstream, such as a report, is built on them) rather than warn.
        dg.AssetCheckSpec(NO_LOOKAHEAD_FILLS, asset=SIGNALS, blocking=True,
                          description="Backtest partitions: no fill used an observation later than its "
                          "signal's as-of time."),
        dg.AssetCheckSpec(NO_EARLY_SETTLEMENTS, asset=SIGNALS, blocking=True,
                          description="Backtest partitions: no settlement before the market's recorded "
                          "resolution time (market_resolutions.closed_time)."),
    ],
    description="A portfolio's trading signals for a day (table `trading_signals`), from market "
    "state as of that day's cycle time. For a backtest portfolio, the day replayed: signals, fills, "
    "exits and settlements from the imported history, earlier unreplayed days first.",
)
def portfolio_signals(context: dg.AssetExecutionContext, database: Database):
    engine = database.engine()
    daily_cycle = CYCLE_TAG in context.run.tags
    failed = {}
    by_day = _by_day(context.partition_keys)
    backtests = backtest_portfolio_ids(engine, {pid for ids in by_day.values() for pid in ids})
    universes: dict = {}  # backtest portfolios replaying the same day share its universe read
    replayed_now = 0
    for cycle_date, portfolio_ids in by_day.items():
        live = [pid for pid in portfolio_ids if pid not in backtests]
        # The day's backtest portfolios replay together (one universe read, one mark pass per
        # observation time); each ends with its own metadata or its own error.
        replays = _replay_metadata(engine, [pid for pid in portfolio_ids if pid in backtests], cycle_date, universes)
        universe = None
        for portfolio_id in portfolio_ids:
            key = signals_partition_key(cycle_date, portfolio_id)
            try:
                if portfolio_id in backtests:
                    metadata = replays[portfolio_id]
                    if isinstance(metadata, Exception):
                        raise metadata
                else:
                    if universe is None:
                        as_of = as_of_for(cycle_date)
                        universe = universe_for(engine, as_of)
                        context.log.info(f"{cycle_date}: {len(universe)} markets as of {as_of.isoformat()}, "
                                         f"shared by {len(live)} portfolios")
                    metadata = _signal_metadata(context, engine, portfolio_id, cycle_date, as_of, universe, daily_cycle)
            except Exception as exc:  # one portfolio's failure must not hold back the others
                context.log.exception(f"portfolio {portfolio_id} on {cycle_date}: {exc}")
                failed[str(key)] = f"{type(exc).__name__}: {exc}"
                metadata = {"portfolio_id": dg.MetadataValue.int(portfolio_id),
                            "signals": dg.MetadataValue.int(0), "error": dg.MetadataValue.text(failed[str(key)])}
                if portfolio_id in backtests:  # so live execution leaves it alone (execute_signals_sensor)
                    metadata["mode"] = dg.MetadataValue.text("backtest")
            context.add_asset_metadata(metadata, partition_key=str(key))
            replayed_now += metadata["days_replayed_now"].value if "days_replayed_now" in metadata else 0
    if backtests:
        context.log.info(f"{len(backtests)} backtest portfolios: {replayed_now} days replayed")
    return dg.MaterializeResult(check_results=[
        dg.AssetCheckResult(
            check_name=EVERY_PORTFOLIO_SIGNALLED, passed=not failed,
            metadata={"failed": dg.MetadataValue.json(failed),
                      "partitions": dg.MetadataValue.int(len(context.partition_keys))}),
        *_lookahead_checks(engine, sorted(backtests), max(by_day) if by_day else None),
    ])


def _replay_metadata(engine, portfolio_ids: list[int], day: date, universes: dict) -> dict[int, dict | Exception]:
    """Bring these backtest portfolios' ledgers to the end of `day` (earlier unreplayed days
    first, in order; a replayed day is not redone) and report each one's day as numbers the UI
    plots per partition, or the error that stopped it."""
    from ..services.backtest import replay_all_through, replayed_days

    outcomes: dict[int, dict | Exception] = {}
    to_replay = []
    for portfolio_id in portfolio_ids:
        try:
            portfolio = get_portfolio(engine, portfolio_id)
        except Exception as exc:
            outcomes[portfolio_id] = exc
            continue
        if portfolio["backtest_from"] <= day <= portfolio["backtest_to"]:
            to_replay.append(portfolio_id)
            continue
        outcomes[portfolio_id] = {
            "portfolio_id": dg.MetadataValue.int(portfolio_id), "mode": dg.MetadataValue.text("backtest"),
            "skipped": dg.MetadataValue.text(
                f"{day} is outside the backtest's window {portfolio['backtest_from']} .. {portfolio['backtest_to']}")}
    try:
        replays = replay_all_through(engine, to_replay, day, universes=universes)
    except Exception as exc:  # nothing of the day could be replayed (the database, say)
        return outcomes | {portfolio_id: exc for portfolio_id in to_replay}
    outcomes.update(replays.failures)
    for portfolio_id in to_replay:
        if portfolio_id in replays.failures:
            continue
        replayed = replays.days[portfolio_id]
        result = next((r for r in replayed if r.day == day), None)
        if result is None:  # replayed by an earlier run: its recorded figures
            result = next((SimpleNamespace(**r) for r in replayed_days(engine, portfolio_id)
                           if r["day"] == day and r["replayed_at"] is not None), None)
        if result is None:
            outcomes[portfolio_id] = RuntimeError(f"portfolio {portfolio_id}: {day} was not replayed")
            continue
        outcomes[portfolio_id] = {
            "portfolio_id": dg.MetadataValue.int(portfolio_id),
            "mode": dg.MetadataValue.text("backtest"),
            "days_replayed_now": dg.MetadataValue.int(len(replayed)),
            "total_value": dg.MetadataValue.float(float(result.total_value)),
            "pnl": dg.MetadataValue.float(float(result.pnl)),
            "fills": dg.MetadataValue.int(int(result.fills)),
            "fees": dg.MetadataValue.float(float(result.fees)),
            "settlements": dg.MetadataValue.int(int(result.settlements)),
            "exits": dg.MetadataValue.int(int(result.exits)),
        }
    return outcomes


def _lookahead_checks(engine, backtest_ids: list[int], last_day: date | None) -> list[dg.AssetCheckResult]:
    """The two no-look-ahead checks over every trade of the run's backtest portfolios up to the
    end of its last day (a live-only run has nothing to check and passes)."""
    until = datetime.combine(last_day + timedelta(days=1), time(), timezone.utc) if last_day else None
    late = lookahead.fills_after_their_observations(engine, backtest_ids, until) if until else []
    early = lookahead.settlements_before_resolution(engine, backtest_ids, until) if until else []
    checked = {"backtest_portfolios": dg.MetadataValue.json(backtest_ids)}
    return [
        dg.AssetCheckResult(check_name=NO_LOOKAHEAD_FILLS, passed=not late,
                            metadata={**checked, "violations": dg.MetadataValue.int(len(late)),
                                      "fills": dg.MetadataValue.json(late[:50])}),
        dg.AssetCheckResult(check_name=NO_EARLY_SETTLEMENTS, passed=not early,
                            metadata={**checked, "violations": dg.MetadataValue.int(len(early)),
                                      "settlements": dg.MetadataValue.json(early[:50])}),
    ]


def _by_day(partition_keys) -> dict[date, list[int]]:
    days: dict[date, list[int]] = {}
    for key in partition_keys:
        dims = signals_partitions.get_partition_key_from_str(key).keys_by_dimension
        days.setdefault(date.fromisoformat(dims["date"]), []).append(int(dims["portfolio"]))
    return dict(sorted(days.items()))


def _signal_metadata(context, engine, portfolio_id: int, cycle_date: date, as_of: datetime,
                     universe: pd.DataFrame, daily_cycle: bool) -> dict:
    portfolio = get_portfolio(engine, portfolio_id)
    base = {
        "portfolio_id": dg.MetadataValue.int(portfolio_id),
        "portfolio_name": dg.MetadataValue.text(portfolio["name"]),
        "as_of": dg.MetadataValue.text(as_of.isoformat()),
    }
    if daily_cycle and not uses_daily_cycle(portfolio):
        # Inside the day's range, but it trades on its own `cycle_cron` (portfolio_cadence_sensor).
        return {**base, "signals": dg.MetadataValue.int(0),
                "skipped": dg.MetadataValue.text("trades on its own cycle_cron, not the daily cycle")}
    run = generate_signals(engine, portfolio_id, cycle_date, as_of, universe)
    base["strategy_type"] = dg.MetadataValue.text(run.strategy_type)
    if run.skipped:
        return {**base, "signals": dg.MetadataValue.int(0), "skipped": dg.MetadataValue.text(run.skipped)}
    funnel = {f"markets_after_{step}": dg.MetadataValue.int(n) for step, n in run.funnel}
    preview_cols = ["market_id", "side", "amount", "price_seen", "confidence", "reason", "group_id"]
    preview = run.signals[preview_cols].head(20) if len(run.signals) else pd.DataFrame(columns=preview_cols)
    return {
        **base,
        **funnel,
        "signals": dg.MetadataValue.int(len(run.signals)),
        "signals_amount": dg.MetadataValue.float(float(run.signals["amount"].sum()) if len(run.signals) else 0.0),
        "pending_replaced": dg.MetadataValue.int(run.replaced),
        "preview": markdown_table(preview, empty="no signals"),
    }


def day_range_tags(day: date | str, portfolio_ids: list[int]) -> dict[str, str]:
    """Run tags for one run over a day's partitions of these portfolios: the range from the first
    to the last (a range of the `portfolios` keys also covers any key between them)."""
    first, last = min(portfolio_ids), max(portfolio_ids)
    return {
        ASSET_PARTITION_RANGE_START_TAG: str(signals_partition_key(day, first)),
        ASSET_PARTITION_RANGE_END_TAG: str(signals_partition_key(day, last)),
    }


portfolio_signals_job = dg.define_asset_job(
    "portfolio_signals_job",
    selection=dg.AssetSelection.assets(SIGNALS),
    description="Materialize portfolio_signals partitions (requested by the cycle and cadence sensors).",
)


@dg.schedule(
    name="trading_cycle_schedule",
    cron_schedule=settings().cycle_cron,
    job=refresh_markets_job,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="The daily trading cycle: refresh markets; on success every active portfolio's "
    "partition for the day is requested (PRESCIENT_CYCLE_CRON, 09:00 UTC by default).",
)
def trading_cycle_schedule(context: dg.ScheduleEvaluationContext):
    day = context.scheduled_execution_time.astimezone(timezone.utc).date().isoformat()
    return dg.RunRequest(run_key=f"cycle-{day}", tags={CYCLE_TAG: day})


def uses_daily_cycle(portfolio: dict) -> bool:
    return not (portfolio.get("strategy_config") or {}).get("cycle_cron")


@dg.run_status_sensor(
    name="trading_cycle_sensor",
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[refresh_markets_job],
    request_job=portfolio_signals_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After a cycle's market refresh succeeds, requests that day's portfolio_signals "
    "partitions of every active portfolio on the daily cycle, in one run.",
)
def trading_cycle_sensor(context: dg.RunStatusSensorContext, database: Database):
    day = context.dagster_run.tags.get(CYCLE_TAG)
    if not day:
        return dg.SkipReason("a plain refresh, not a trading cycle")
    portfolios = [p["portfolio_id"] for p in active_portfolios(database.engine()) if uses_daily_cycle(p)]
    if not portfolios:
        return dg.SkipReason("no active portfolio on the daily cycle")
    # One run for the whole day: its partitions share one read of the day's universe.
    return dg.RunRequest(run_key=f"cycle-{day}", tags={CYCLE_TAG: day, **day_range_tags(day, portfolios)})


@dg.sensor(
    name="portfolio_cadence_sensor",
    job=portfolio_signals_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests today's partition for portfolios whose config sets `cycle_cron`, on that cadence.",
)
def portfolio_cadence_sensor(context: dg.SensorEvaluationContext, database: Database):
    now = datetime.now(timezone.utc)
    since = float(context.cursor) if context.cursor else now.timestamp()
    requests = []
    for p in active_portfolios(database.engine()):
        cron = (p.get("strategy_config") or {}).get("cycle_cron")
        if not cron:
            continue
        tick = next(cron_string_iterator(since, cron, "UTC"))
        if tick <= now:
            requests.append(dg.RunRequest(
                run_key=f"cadence-{p['portfolio_id']}-{tick.isoformat()}",
                partition_key=signals_partition_key(tick.date(), p["portfolio_id"]),
                tags=portfolio_tags(p["portfolio_id"], p["name"]),
            ))
    return dg.SensorResult(run_requests=requests, cursor=str(now.timestamp()))
