"""`portfolio_signals`: one partition per day x portfolio, and what requests it.

The daily cycle schedule refreshes the markets; when that run succeeds, a run-status sensor
requests the day's partition of every active portfolio. Portfolios with their own `cycle_cron`
are requested by `portfolio_cadence_sensor` on that cadence instead.
"""

from datetime import date, datetime, timezone

import dagster as dg
import pandas as pd
from dagster._utils.schedules import cron_string_iterator  # Dagster's own cron evaluation

from ..config import settings
from ..services.portfolio_keys import active_portfolios, portfolio_names
from ..services.signals import as_of_for, generate_signals
from .market_data import MARKETS, refresh_markets_job
from .portfolios import portfolio_tags, portfolios_partitions
from .resources import Database

SIGNALS = dg.AssetKey("portfolio_signals")
CYCLE_TAG = "prescient/cycle_date"

daily_partitions = dg.DailyPartitionsDefinition(
    start_date=settings().partitions_start, end_offset=1, timezone="UTC"
)
signals_partitions = dg.MultiPartitionsDefinition({"date": daily_partitions, "portfolio": portfolios_partitions})


def signals_partition_key(day: date | str, portfolio_id: int | str) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"date": str(day), "portfolio": str(portfolio_id)})


@dg.asset(
    key=SIGNALS,
    partitions_def=signals_partitions,
    deps=[MARKETS],
    group_name="strategies",
    kinds={"postgres", "pandas"},
    description="A portfolio's trading signals for a day (table `trading_signals`), from market "
    "state as of that day's cycle time.",
)
def portfolio_signals(context: dg.AssetExecutionContext, database: Database) -> dg.MaterializeResult:
    keys = context.partition_key.keys_by_dimension
    cycle_date = date.fromisoformat(keys["date"])
    as_of = as_of_for(cycle_date)
    run = generate_signals(database.engine(), int(keys["portfolio"]), cycle_date, as_of)
    name = portfolio_names(database.engine(), [run.portfolio_id]).get(run.portfolio_id, "")
    base = {
        "portfolio_id": dg.MetadataValue.int(run.portfolio_id),
        "portfolio_name": dg.MetadataValue.text(name),
        "strategy_type": dg.MetadataValue.text(run.strategy_type),
        "as_of": dg.MetadataValue.text(as_of.isoformat()),
    }
    if run.skipped:
        context.log.info(run.skipped)
        return dg.MaterializeResult(metadata={**base, "signals": dg.MetadataValue.int(0),
                                              "skipped": dg.MetadataValue.text(run.skipped)})
    funnel = {f"markets_after_{step}": dg.MetadataValue.int(n) for step, n in run.funnel}
    preview_cols = ["market_id", "side", "amount", "price_seen", "confidence", "reason", "group_id"]
    preview = run.signals[preview_cols].head(20) if len(run.signals) else pd.DataFrame(columns=preview_cols)
    context.log.info(f"{len(run.signals)} signals for portfolio {run.portfolio_id} ({name}) on {cycle_date}")
    return dg.MaterializeResult(
        metadata={
            **base,
            **funnel,
            "signals": dg.MetadataValue.int(len(run.signals)),
            "signals_amount": dg.MetadataValue.float(float(run.signals["amount"].sum()) if len(run.signals) else 0.0),
            "pending_replaced": dg.MetadataValue.int(run.replaced),
            "preview": dg.MetadataValue.md(preview.to_markdown(index=False) if len(preview) else "_no signals_"),
        }
    )


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


def _uses_daily_cycle(portfolio: dict) -> bool:
    return not (portfolio.get("strategy_config") or {}).get("cycle_cron")


@dg.run_status_sensor(
    name="trading_cycle_sensor",
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[refresh_markets_job],
    request_job=portfolio_signals_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After a cycle's market refresh succeeds, requests that day's portfolio_signals "
    "partition for every active portfolio on the daily cycle.",
)
def trading_cycle_sensor(context: dg.RunStatusSensorContext, database: Database):
    day = context.dagster_run.tags.get(CYCLE_TAG)
    if not day:
        return dg.SkipReason("a plain refresh, not a trading cycle")
    portfolios = [p for p in active_portfolios(database.engine()) if _uses_daily_cycle(p)]
    return [
        dg.RunRequest(
            run_key=f"cycle-{day}-{p['portfolio_id']}",
            partition_key=signals_partition_key(day, p["portfolio_id"]),
            tags={CYCLE_TAG: day, **portfolio_tags(p["portfolio_id"], p["name"])},
        )
        for p in portfolios
    ]


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
