"""`market_history`: the imported market history, one partition per day (UTC).

Partition D imports day D (services/market_history.py): every market open that day, closed and
resolved ones included, its price path as `market_snapshots` rows of source `history`, and each
resolution. A backfill over a range imports it day by day. Its backfill policy runs up to a week
of days in one run: the window's markets are listed from Gamma once per run instead of once per
day, while each day stays its own transaction and its own partition's metadata, so a run stopped
halfway keeps the days it finished and its re-run skips them.
"""

from datetime import date

import dagster as dg

from ..services.market_history import import_history
from .resources import Database, PolymarketApi
from .strategy import daily_partitions

MARKET_HISTORY = dg.AssetKey("market_history")
DAYS_PER_RUN = 7


class MarketHistoryConfig(dg.Config):
    fidelity_minutes: int = 60
    min_volume: float | None = None
    force: bool = False


@dg.asset(
    key=MARKET_HISTORY,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=DAYS_PER_RUN),
    group_name="market_data",
    kinds={"postgres"},
    pool="polymarket_api",
    description="Imported market history of a day: every market open that day (closed and resolved ones "
    "included), its price path (`market_snapshots`, source `history`, no book), its resolution "
    "(`market_resolutions`). A completed day is not imported again unless `force`.",
)
def market_history(context: dg.AssetExecutionContext, config: MarketHistoryConfig, database: Database,
                   polymarket: PolymarketApi):
    keys = context.partition_keys
    day_from, day_to = date.fromisoformat(keys[0]), date.fromisoformat(keys[-1])
    with polymarket.client() as client:
        report = import_history(database.engine(), client, day_from, day_to, config.fidelity_minutes,
                                config.min_volume, force=config.force,
                                progress=lambda stage, day: context.log.info(f"{day.day}: {stage}"))
    for day in report.days:
        context.add_asset_metadata({
            "markets": dg.MetadataValue.int(day.markets),
            "points": dg.MetadataValue.int(day.points),
            "resolutions": dg.MetadataValue.int(day.resolutions),
            "without_history": dg.MetadataValue.int(day.without_history),
            "skipped": dg.MetadataValue.bool(day.status == "skipped"),
            "complete": dg.MetadataValue.bool(day.complete),
            "fidelity_minutes": dg.MetadataValue.int(config.fidelity_minutes),
        }, partition_key=day.day.isoformat())
