"""Shared market data: `polymarket_events` and `polymarket_markets`, refreshed together."""

import dagster as dg
import pandas as pd

from ..config import settings
from ..services.market_checks import check_refresh
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


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            EVENTS, group_name=GROUP, kinds={"postgres"}, freshness_policy=every(settings().refresh_cron),
            description="Active Polymarket events (table `events`), shared by every portfolio.",
        ),
        dg.AssetSpec(
            MARKETS, group_name=GROUP, kinds={"postgres"}, deps=[EVENTS],
            freshness_policy=every(settings().refresh_cron),
            description="Markets of the active events (table `markets`, current state) plus one "
            "`market_snapshots` row per market per refresh.",
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(name, asset=MARKETS, blocking=(name == "market_count_not_collapsed"))
        for name in CHECK_NAMES
    ],
    pool="polymarket_api",
)
def polymarket_market_data(context: dg.AssetExecutionContext, database: Database, polymarket: PolymarketApi):
    """Fetch every active event once; write events, markets and snapshots in one transaction."""
    engine = database.engine()
    report = refresh_markets(engine, polymarket.client(), logger=context.log)
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
    checks = check_refresh(engine, report.observed_at, report.previous_market_count)
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
        check_results=[
            dg.AssetCheckResult(
                check_name=c.name, asset_key=MARKETS, passed=c.passed, description=c.description,
                metadata=c.metadata,
                severity=dg.AssetCheckSeverity.ERROR if c.name == "market_count_not_collapsed" else dg.AssetCheckSeverity.WARN,
            )
            for c in checks
        ],
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
