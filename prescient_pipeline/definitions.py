"""The code location: everything Dagster loads from `workspace.yaml`."""

import dagster as dg

from .defs import ledger, market_data, market_history, portfolios, run_health, strategy
from .defs.resources import default_resources

defs = dg.Definitions(
    assets=[market_data.polymarket_market_data, market_history.market_history, strategy.portfolio_signals,
            ledger.PORTFOLIO_VALUES, ledger.portfolio_report],
    jobs=[
        market_data.refresh_markets_job,
        strategy.portfolio_signals_job,
        portfolios.manage_portfolio_job,
        ledger.execute_signals_job,
        ledger.update_prices_job,
        ledger.portfolio_snapshot_job,
        ledger.portfolio_report_job,
        ledger.archive_signals_job,
        ledger.prune_history_job,
    ],
    schedules=[
        market_data.refresh_markets_schedule,
        strategy.trading_cycle_schedule,
        ledger.update_prices_schedule,
        ledger.portfolio_snapshot_schedule,
        ledger.archive_signals_schedule,
        ledger.prune_history_schedule,
    ],
    sensors=[
        portfolios.portfolio_partitions_sensor,
        strategy.trading_cycle_sensor,
        strategy.portfolio_cadence_sensor,
        ledger.execute_signals_sensor,
        run_health.abandoned_runs_sensor,
        ledger.portfolio_report_sensor,
        ledger.backtest_report_sensor,
    ],
    resources=default_resources(),
)
