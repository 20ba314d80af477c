"""The paper ledger in Dagster: execution on a sensor, 5-minute prices, daily snapshots,
monthly archive, and the balance check every ledger job ends with."""

from datetime import date, timedelta
from typing import Optional

import dagster as dg
import pandas as pd

from ..config import settings
from ..polymarket.client import PolymarketError
from ..services.books import fetch_books_for_pending
from ..services.execution import execute_portfolio
from ..services.history import archive_signals, snapshot_portfolios
from ..services.portfolio_keys import portfolio_names
from ..services.prices import update_prices
from ..services.reports import unbalanced_portfolios
from ..services.retention import prune_history
from ..services.signals import days_with_pending_signals
from .freshness import every
from .markdown import markdown_table
from .portfolios import portfolio_tags, portfolios_partitions
from .resources import Database, PolymarketApi
from .strategy import SIGNALS, signals_partitions

PRICES_CRON = "*/5 * * * *"

# Each portfolio's values over time: price updates and snapshots report a materialization per
# portfolio partition, whose numeric metadata the UI plots.
PORTFOLIO_VALUES = dg.AssetSpec(
    "portfolio_values",
    partitions_def=portfolios_partitions,
    group_name="ledger",
    kinds={"postgres"},
    description="Each portfolio's total value and P&L, reported by every price update and snapshot.",
    # Marks come every five minutes while positions are open: warn after one missed update.
    freshness_policy=every(PRICES_CRON, grace=timedelta(minutes=5)),
)


def _value_events(rows: list[dict], source: str) -> list[dg.AssetMaterialization]:
    return [
        dg.AssetMaterialization(
            asset_key=PORTFOLIO_VALUES.key,
            partition=str(r["portfolio_id"]),
            description=f"{r['name']} (portfolio {r['portfolio_id']}), {source.replace('_', ' ')}",
            metadata={
                "portfolio_name": dg.MetadataValue.text(str(r["name"])),
                "total_value": dg.MetadataValue.float(float(r["total_value"])),
                "cash": dg.MetadataValue.float(float(r["cash"])),
                "positions_value": dg.MetadataValue.float(float(r["positions_value"])),
                "realized_pnl": dg.MetadataValue.float(float(r["realized_pnl"])),
                "unrealized_pnl": dg.MetadataValue.float(float(r["unrealized_pnl"])),
                "open_positions": dg.MetadataValue.int(int(r["open_positions"])),
                "source": dg.MetadataValue.text(source),
            },
        )
        for r in rows
    ]


def _table(rows: list[dict]) -> dg.MetadataValue:
    return markdown_table(pd.DataFrame(rows), empty="no portfolios", floatfmt=".2f")


def _check_books(context, database: Database) -> None:
    problems = unbalanced_portfolios(database.engine())
    if problems:
        for p in problems:
            context.log.error(p)
        raise dg.Failure(description="books do not balance: " + "; ".join(problems), allow_retries=False)
    context.log.info("every portfolio balances to the cent")


# --- execution ---------------------------------------------------------------------------------

class ExecuteSignals(dg.Config):
    portfolio_ids: list[int] = []
    portfolio_id: Optional[int] = None  # one portfolio (kept for launchpad configs written before portfolio_ids)
    cycle_date: Optional[str] = None  # YYYY-MM-DD; unset executes every pending signal


@dg.op(description="Fill the pending signals of one or more portfolios: risk checks, fills that walk the book, "
       "ledger rows.")
def execute_signals(context: dg.OpExecutionContext, config: ExecuteSignals, database: Database,
                    polymarket: PolymarketApi):
    day = date.fromisoformat(config.cycle_date) if config.cycle_date else None
    ids = sorted(set(config.portfolio_ids) | ({config.portfolio_id} if config.portfolio_id is not None else set()))
    engine = database.engine()
    # One batch of books for every market about to be traded, so fills walk the book as it stands.
    try:
        booked = fetch_books_for_pending(engine, polymarket.client(), ids, day)
    except PolymarketError as exc:  # fill at the last stored observation rather than not at all
        booked = 0
        context.log.warning(f"no fresh books before execution ({exc}); filling at the last stored observation")
    names = portfolio_names(engine, ids) if ids else {}
    rows = []
    for portfolio_id in ids:
        report = execute_portfolio(engine, portfolio_id, day)
        rows.append({"portfolio_id": portfolio_id, "name": names.get(portfolio_id, ""), "executed": report.executed,
                     "rejected": report.rejected, "skipped": report.skipped, "spent": float(report.spent),
                     "fees": float(report.fees), "partial_fills": report.partial, "rejections": report.rejections})
    # One line for the run (each line is an event stored in the instance); the metadata table
    # below has every portfolio.
    context.log.info(f"{len(rows)} portfolios: {sum(r['executed'] for r in rows)} executed, "
                     f"{sum(r['rejected'] for r in rows)} rejected, {sum(r['skipped'] for r in rows)} already handled")
    single = {"portfolio_id": dg.MetadataValue.int(ids[0]),
              "portfolio_name": dg.MetadataValue.text(names.get(ids[0], ""))} if len(ids) == 1 else {}
    context.add_output_metadata({
        **single,
        "portfolios": dg.MetadataValue.int(len(rows)),
        "fresh_books": dg.MetadataValue.int(booked),
        "executed": dg.MetadataValue.int(sum(r["executed"] for r in rows)),
        "rejected": dg.MetadataValue.int(sum(r["rejected"] for r in rows)),
        "skipped": dg.MetadataValue.int(sum(r["skipped"] for r in rows)),
        "spent": dg.MetadataValue.float(sum(r["spent"] for r in rows)),
        "fees": dg.MetadataValue.float(sum(r["fees"] for r in rows)),
        "partial_fills": dg.MetadataValue.int(sum(r["partial_fills"] for r in rows)),
        "per_portfolio": _table([{k: v for k, v in r.items() if k != "rejections"} for r in rows]),
        "rejections": dg.MetadataValue.json({str(r["portfolio_id"]): r["rejections"] for r in rows if r["rejections"]}),
    })
    _check_books(context, database)


@dg.job(executor_def=dg.in_process_executor, tags={"prescient/job": "execute_signals"},
        description="Execute portfolios' pending signals (launched by execute_signals_sensor).")
def execute_signals_job():
    execute_signals()


# Materializations read per sensor tick (the cursor carries the rest to the next tick).
EXECUTION_PAGE = 1000


def execution_request(cycle_date: str, portfolio_ids: list[int], run_key: str | None = None,
                      names: dict[int, str] | None = None) -> dg.RunRequest:
    tags = {"prescient/cycle_date": cycle_date}
    if len(portfolio_ids) == 1:  # a run of several portfolios names them in its metadata
        tags.update(portfolio_tags(portfolio_ids[0], (names or {}).get(portfolio_ids[0])))
    return dg.RunRequest(
        run_key=run_key,
        run_config={"ops": {"execute_signals": {"config": {
            "portfolio_ids": sorted(portfolio_ids), "cycle_date": cycle_date}}}},
        tags=tags,
    )


def _is_backtest(record) -> bool:
    mode = record.asset_materialization.metadata.get("mode") if record.asset_materialization else None
    return mode is not None and mode.value == "backtest"


@dg.sensor(
    name="execute_signals_sensor",
    job=execute_signals_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Executes every new portfolio_signals materialization whose signals are still "
    "pending: one execute_signals_job run per day among them, paging through them with a cursor so "
    "none is skipped.",
)
def execute_signals_sensor(context: dg.SensorEvaluationContext, database: Database):
    result = context.instance.fetch_materializations(SIGNALS, limit=EXECUTION_PAGE, cursor=context.cursor, ascending=True)
    found = []
    for record in result.records:
        if not record.partition_key:
            continue
        if _is_backtest(record):
            continue  # a replayed day filled its signals itself: live execution never touches them
        keys = signals_partitions.get_partition_key_from_str(record.partition_key).keys_by_dimension
        found.append((record, int(keys["portfolio"]), date.fromisoformat(keys["date"])))
    # Materializations whose signals were already executed (by `prescient cycle` or the demo,
    # which execute in the same breath, or by an earlier run) need no run: a daemon starting on
    # a home with history must not launch a catch-up run per past day.
    pending = days_with_pending_signals(database.engine(), [(pid, day) for _, pid, day in found])
    by_day: dict[str, set[int]] = {}
    first: dict[str, int] = {}
    for record, pid, day in found:
        if (pid, day) in pending:
            by_day.setdefault(day.isoformat(), set()).add(pid)
            first.setdefault(day.isoformat(), record.storage_id)
    names = portfolio_names(database.engine(), sorted({p for ids in by_day.values() for p in ids})) if by_day else {}
    requests = [execution_request(day, sorted(ids), run_key=f"execute-{day}-{first[day]}", names=names)
                for day, ids in sorted(by_day.items())]
    return dg.SensorResult(run_requests=requests, cursor=result.cursor)


# --- prices --------------------------------------------------------------------------------------

@dg.op(description="Fetch held markets in batches; mark, exit and settle every portfolio.")
def update_portfolio_prices(context: dg.OpExecutionContext, database: Database, polymarket: PolymarketApi):
    report = update_prices(database.engine(), polymarket.client(), logger=context.log)
    rows = [vars(p) for p in report.portfolios]
    for event in _value_events(rows, "price_update"):
        context.log_event(event)
    context.add_output_metadata({
        "markets_held": dg.MetadataValue.int(report.markets_held),
        "priced_from_books": dg.MetadataValue.int(report.books),
        "priced_from_gamma": dg.MetadataValue.int(report.gamma_markets),
        "unpriced_markets": dg.MetadataValue.int(len(report.unpriced)),
        "gamma_asked": dg.MetadataValue.int(report.gamma_asked),
        "missing_markets": dg.MetadataValue.json(report.missing),
        "positions_marked": dg.MetadataValue.int(report.marked),
        "exits": dg.MetadataValue.int(sum(report.exits.values())),
        "settlements": dg.MetadataValue.int(sum(report.settlements.values())),
        "flagged_not_settled": dg.MetadataValue.json(dict(report.flags)),
        "superseded_portfolios": dg.MetadataValue.int(len(report.superseded)),
        "portfolios": _table(rows),
    })
    _check_books(context, database)


@dg.job(executor_def=dg.in_process_executor, tags={"prescient/job": "update_prices"},
        description="Mark every open position to the latest prices; exits and settlement.")
def update_prices_job():
    update_portfolio_prices()


update_prices_schedule = dg.ScheduleDefinition(
    name="update_prices_schedule", job=update_prices_job, cron_schedule=PRICES_CRON,
    execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every five minutes: marks, stop loss / take profit / holding time exits, settlement.",
)


# --- snapshots and archive ----------------------------------------------------------------------

@dg.op(description="One portfolio_history row per portfolio for the day; refresh performance metrics.")
def snapshot_portfolio_history(context: dg.OpExecutionContext, database: Database):
    snaps = snapshot_portfolios(database.engine())
    rows = [{"portfolio_id": s.portfolio_id, "name": s.name, "date": str(s.snapshot_date),
             "total_value": s.totals.total_value, "cash": s.totals.cash,
             "positions_value": s.totals.positions_value, "realized_pnl": s.totals.realized_pnl,
             "unrealized_pnl": s.totals.unrealized_pnl, "open_positions": s.totals.open_positions,
             "sharpe": s.metrics.get("sharpe_ratio"), "max_drawdown": s.metrics.get("max_drawdown")}
            for s in snaps]
    for event in _value_events(rows, "snapshot"):
        context.log_event(event)
    context.add_output_metadata({"portfolios": _table(rows), "snapshots": dg.MetadataValue.int(len(rows))})
    _check_books(context, database)


@dg.job(executor_def=dg.in_process_executor, description="Daily portfolio history and performance.")
def portfolio_snapshot_job():
    snapshot_portfolio_history()


portfolio_snapshot_schedule = dg.ScheduleDefinition(
    name="portfolio_snapshot_schedule", job=portfolio_snapshot_job, cron_schedule=settings().snapshot_cron,
    execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
    description="One history row per portfolio per day (PRESCIENT_SNAPSHOT_CRON, 23:55 UTC by default).",
)


# --- the HTML report ---------------------------------------------------------------------------

class ReportConfig(dg.Config):
    out_dir: Optional[str] = None  # unset: $PRESCIENT_HOME/reports


@dg.asset(
    name="portfolio_report",
    deps=[PORTFOLIO_VALUES],
    group_name="ledger",
    kinds={"plotly", "html"},
    description="The HTML portfolio report: index.html comparing every portfolio, and one page each with "
    "its equity curve, drawdown, daily returns, named positions and trades, fees, metrics and "
    "settlement flags. Written after every portfolio snapshot (portfolio_report_sensor) and after "
    "backtest days are replayed (backtest_report_sensor).",
)
def portfolio_report(context: dg.AssetExecutionContext, config: ReportConfig, database: Database):
    from pathlib import Path

    from ..services.html_report import default_report_dir, write_report

    files = write_report(database.engine(), Path(config.out_dir) if config.out_dir else default_report_dir())
    context.log.info(f"HTML report of {len(files.pages)} portfolios: {files.index}")
    pages = pd.DataFrame([{"portfolio_id": pid, "name": files.names[pid], "page": str(path)}
                          for pid, path in files.pages.items()])
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(files.index)),
        "url": dg.MetadataValue.url(files.index.as_uri()),
        "portfolios": dg.MetadataValue.int(len(files.pages)),
        "pages": dg.MetadataValue.md(pages.to_markdown(index=False) if len(pages) else "_no portfolios_"),
    })


portfolio_report_job = dg.define_asset_job(
    "portfolio_report_job", selection=dg.AssetSelection.assets(portfolio_report),
    executor_def=dg.in_process_executor, description="Write the HTML portfolio report.",
)


@dg.run_status_sensor(
    name="portfolio_report_sensor",
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[portfolio_snapshot_job],
    request_job=portfolio_report_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After each successful portfolio snapshot, rewrites the HTML portfolio report.",
)
def portfolio_report_sensor(context: dg.RunStatusSensorContext):
    return dg.RunRequest(run_key=f"report-after-{context.dagster_run.run_id}")


@dg.sensor(
    name="backtest_report_sensor",
    job=portfolio_report_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="After backtest days are replayed (portfolio_signals partitions of a backtest portfolio, "
    "by any run or backfill), rewrites the HTML portfolio report: one run per tick, whatever the "
    "number of days replayed since the last.",
)
def backtest_report_sensor(context: dg.SensorEvaluationContext):
    result = context.instance.fetch_materializations(SIGNALS, limit=EXECUTION_PAGE, cursor=context.cursor, ascending=True)
    runs = sorted({r.run_id for r in result.records if _is_backtest(r)})
    requests = [dg.RunRequest(run_key=f"report-after-{runs[-1]}")] if runs else []
    return dg.SensorResult(run_requests=requests, cursor=result.cursor)


class ArchiveSignals(dg.Config):
    older_than_days: int = 30


@dg.op(description="Move old executed, rejected and stale signals to signal_archives.")
def archive_old_signals(context: dg.OpExecutionContext, config: ArchiveSignals, database: Database):
    moved = archive_signals(database.engine(), config.older_than_days)
    context.add_output_metadata({"archived": dg.MetadataValue.int(moved)})


@dg.job(executor_def=dg.in_process_executor, description="Monthly archive of old signals.")
def archive_signals_job():
    archive_old_signals()


archive_signals_schedule = dg.ScheduleDefinition(
    name="archive_signals_schedule", job=archive_signals_job, cron_schedule="0 3 1 * *",
    execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Monthly (1st, 03:00 UTC): archive signals older than 30 days.",
)


# --- history retention -------------------------------------------------------------------------

class PruneHistory(dg.Config):
    keep_days: Optional[int] = None  # default PRESCIENT_HISTORY_KEEP_DAYS (90)
    dry_run: bool = False


@dg.op(description="Thin market history older than the retention window to what replays read.")
def prune_market_history(context: dg.OpExecutionContext, config: PruneHistory, database: Database):
    keep = config.keep_days or settings().history_keep_days
    report = prune_history(database.engine(), keep, dry_run=config.dry_run)
    context.log.info(f"before {report.cutoff}: {report.snapshots_removed} observations and "
                     f"{report.refreshes_removed} refreshes {'would go' if config.dry_run else 'removed'}")
    context.add_output_metadata({
        "cutoff": dg.MetadataValue.text(report.cutoff.isoformat()),
        "days": dg.MetadataValue.int(report.days),
        "snapshots_removed": dg.MetadataValue.int(report.snapshots_removed),
        "refreshes_removed": dg.MetadataValue.int(report.refreshes_removed),
        "dry_run": dg.MetadataValue.bool(report.dry_run),
    })


@dg.job(executor_def=dg.in_process_executor, description="Market history retention (`prescient db prune`).")
def prune_history_job():
    prune_market_history()


prune_history_schedule = dg.ScheduleDefinition(
    name="prune_history_schedule", job=prune_history_job, cron_schedule="30 3 * * *",
    execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Daily (03:30 UTC): thin market history older than PRESCIENT_HISTORY_KEEP_DAYS.",
)
