"""Shared market data: `polymarket_events` and `polymarket_markets`, refreshed together."""

import dagster as dg
import pandas as pd

from ..config import settings
from ..services.market_checks import BLOCKING, CheckOutcome, RefreshRejected
from ..services.market_refresh import refresh_markets
from .freshness import every
from .markdown import markdown_table
from .resources import Database, PolymarketApi

EVENTS = dg.AssetKey("polymarket_events")
MARKETS = dg.AssetKey("polymarket_markets")
GROUP = "market_data"

CHECK_NAMES = [
    "prices_in_unit_interval",
    "yes_no_sum_near_one",
    "unique_market_ids",
    "market_count_not_collapsed",
]


def _check_results(checks: list[CheckOutcome]) -> list[dg.AssetCheckResult]:
    """The checks as computed inside the refresh's transaction, before it committed."""
    return [
        dg.AssetCheckResult(
            check_name=c.name, asset_key=MARKETS, passed=c.passed, description=c.description, metadata=c.metadata,
            severity=dg.AssetCheckSeverity.ERROR if c.blocking else dg.AssetCheckSeverity.WARN,
        )
        for c in checks
    ]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            # skippable: a rejected refresh writes nothing, so neither asset is materialized.
            EVENTS, group_name=GROUP, kinds={"postgres"}, skippable=True,
            freshness_policy=every(settings().refresh_cron),
            description="Active Polymarket events (table `events`), shared by every portfolio.",
        ),
        dg.AssetSpec(
            MARKETS, group_name=GROUP, kinds={"postgres"}, deps=[EVENTS], skippable=True,
            freshness_policy=every(settings().refresh_cron),
            description="Markets of the active events (table `markets`, current state) plus one "
            "`market_snapshots` row per market per refresh.",
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(name, asset=MARKETS, blocking=(name in BLOCKING))
        for name in CHECK_NAMES
    ],
    pool="polymarket_api",
)
def polymarket_market_data(context: dg.AssetExecutionContext, database: Database, polymarket: PolymarketApi):
    """Fetch every active event once; check, then write events, markets and snapshots in one
    transaction. A failed blocking check reports the checks and fails the run with nothing written."""
    engine = database.engine()
    try:
        report = refresh_markets(engine, polymarket.client(), logger=context.log)
    except RefreshRejected as rejected:
        yield from _check_results(rejected.checks)
        raise dg.Failure(description=str(rejected), allow_retries=False) from None
    seconds = {f"seconds_{k}": dg.MetadataValue.float(round(v, 3)) for k, v in report.seconds.items()}
    yield dg.MaterializeResult(
        asset_key=EVENTS,
        metadata={
            "events": dg.MetadataValue.int(report.events),
            "pages": dg.MetadataValue.int(report.pages),
            "duplicates_dropped": dg.MetadataValue.int(report.duplicates),
            "observed_at": dg.MetadataValue.text(report.observed_at.isoformat()),
            **seconds,
        },
    )
    rejected = {f"rejected_{reason}": dg.MetadataValue.int(n) for reason, n in sorted(report.rejected.items())}
    top = pd.DataFrame(report.top_by_volume_24hr(10), columns=["market_id", "question", "yes_price", "volume_24hr", "liquidity"])
    yield dg.MaterializeResult(
        asset_key=MARKETS,
        metadata={
            "markets": dg.MetadataValue.int(report.markets),
            "snapshots": dg.MetadataValue.int(report.snapshots),
            "rejected_total": dg.MetadataValue.int(sum(report.rejected.values())),
            **rejected,
            "top_markets_by_volume_24hr": markdown_table(top, empty="none"),
            **seconds,
        },
        check_results=_check_results(report.checks),
    )


refresh_markets_job = dg.define_asset_job(
    "refresh_markets_job",
    selection=dg.AssetSelection.assets(EVENTS, MARKETS),
    description="Refresh events, markets and market snapshots from Polymarket.",
)

refresh_markets_schedule = dg.ScheduleDefinition(
    name="refresh_markets_schedule",
    job=refresh_markets_job,
    cron_schedule=settings().refresh_cron,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Refresh the shared market data (PRESCIENT_REFRESH_CRON, hourly by default).",
)
