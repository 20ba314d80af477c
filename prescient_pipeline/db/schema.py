"""The application's tables, as SQLAlchemy Core.

Money is NUMERIC (never float): MONEY for dollars, SHARES for share counts, PRICE for
probabilities. Every per-portfolio table cascades from `portfolios`, so deleting a portfolio
removes its whole ledger and nothing else. Shared market tables are keyed by Polymarket's ids,
kept as text (token ids do not fit in 64 bits).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

MONEY = Numeric(20, 6)
SHARES = Numeric(24, 8)
PRICE = Numeric(12, 8)
RATIO = Numeric(18, 8)
TS = DateTime(timezone=True)

metadata = MetaData()


def _portfolio_fk() -> Column:
    return Column(
        "portfolio_id",
        Integer,
        ForeignKey("portfolios.portfolio_id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    )


# Tables rewritten in place on every refresh or price update keep free room in each page, so
# PostgreSQL can update a row without touching its indexes (a heap-only tuple): none of those
# updates changes an indexed column. See migration 0003.
UPDATED_IN_PLACE = {"fillfactor": 70}


def _venue_observation_columns() -> list[Column]:
    """What `markets` (current state) and `market_snapshots` (each observation) both keep of a
    market's rules, fees and book: new Column objects for each table."""
    return [
        # Market rules and fee parameters, as the venue states them (NULL: not stated).
        Column("protocol_version", Text),
        Column("tick_size", PRICE),
        Column("min_order_size", SHARES),
        Column("fees_enabled", Boolean),
        Column("fee_rate", RATIO),
        Column("fee_exponent", RATIO),
        Column("fee_taker_only", Boolean),
        # Top of the YES book, best level first, up to 20 a side: [[price, size], ...].
        Column("bids", JSONB),
        Column("asks", JSONB),
    ]


# --- shared market data -------------------------------------------------------------------

events = Table(
    "events",
    metadata,
    Column("event_id", Text, primary_key=True),
    Column("slug", Text),
    Column("title", Text),
    Column("description", Text),
    Column("category", Text),
    Column("tags", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("active", Boolean),
    Column("closed", Boolean),
    Column("archived", Boolean),
    Column("neg_risk", Boolean, nullable=False, server_default=text("false")),
    Column("neg_risk_market_id", Text),
    # Augmented negRisk (placeholders and an "Other"): the named legs are never a complete basket.
    Column("neg_risk_augmented", Boolean, nullable=False, server_default=text("false")),
    Column("start_date", TS),
    Column("end_date", TS),
    Column("liquidity", MONEY),
    Column("volume", MONEY),
    Column("volume_24hr", MONEY),
    Column("market_count", Integer, nullable=False, server_default=text("0")),
    Column("first_seen_at", TS, nullable=False, server_default=text("now()")),
    Column("updated_at", TS, nullable=False, server_default=text("now()")),
    postgresql_with=UPDATED_IN_PLACE,
)

markets = Table(
    "markets",
    metadata,
    Column("market_id", Text, primary_key=True),
    Column("event_id", Text, index=True),
    Column("condition_id", Text),
    Column("question", Text),
    Column("slug", Text),
    Column("group_item_title", Text),
    Column("category", Text),
    Column("tags", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("outcomes", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("outcome_prices", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("clob_token_ids", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("yes_token_id", Text),
    Column("no_token_id", Text),
    Column("yes_price", PRICE),
    Column("no_price", PRICE),
    Column("best_bid", PRICE),
    Column("best_ask", PRICE),
    Column("spread", PRICE),
    Column("last_trade_price", PRICE),
    Column("liquidity", MONEY),
    Column("volume", MONEY),
    Column("volume_24hr", MONEY),
    Column("active", Boolean),
    Column("closed", Boolean),
    Column("archived", Boolean),
    Column("accepting_orders", Boolean),
    Column("neg_risk", Boolean, nullable=False, server_default=text("false")),
    Column("uma_resolution_status", Text),
    Column("start_date", TS),
    Column("end_date", TS),
    Column("closed_time", TS),
    *_venue_observation_columns(),
    # An "Other" or placeholder outcome of an augmented negRisk event: never traded.
    Column("neg_risk_other", Boolean, nullable=False, server_default=text("false")),
    Column("first_seen_at", TS, nullable=False, server_default=text("now()")),
    Column("updated_at", TS, nullable=False, server_default=text("now()")),
    postgresql_with=UPDATED_IN_PLACE,
)

# One row per market per observation: the history that marks and replays read. Partitioned by
# day on `ts` (db/history_partitions.py), so the primary key includes `ts`.
market_snapshots = Table(
    "market_snapshots",
    metadata,
    Column("snapshot_id", BigInteger, primary_key=True, autoincrement=True),
    Column("market_id", Text, nullable=False),
    Column("ts", TS, primary_key=True),
    Column("yes_price", PRICE),
    Column("no_price", PRICE),
    Column("best_bid", PRICE),
    Column("best_ask", PRICE),
    Column("liquidity", MONEY),
    Column("volume", MONEY),
    Column("volume_24hr", MONEY),
    Column("active", Boolean),
    Column("closed", Boolean),
    Column("last_trade_price", PRICE),
    *_venue_observation_columns(),
    Column("source", Text, nullable=False, server_default=text("'gamma'")),
    Index("ix_market_snapshots_market_ts", "market_id", "ts"),
    Index("ix_market_snapshots_ts", "ts"),
    postgresql_partition_by="RANGE (ts)",
)

# Every full refresh: when, and how many markets it listed. `source` 'gamma' is a live refresh;
# 'history' is a time of an imported observation grid (services/market_history.py), so readers
# find "the observation grid at or before T" in one place.
market_refreshes = Table(
    "market_refreshes",
    metadata,
    Column("ts", TS, primary_key=True),
    Column("source", Text, primary_key=True, server_default=text("'gamma'")),
    Column("markets", Integer, nullable=False),
    Column("events", Integer),
    CheckConstraint("source IN ('gamma', 'history')", name="ck_market_refreshes_source"),
)

# How each market resolved, as Gamma states it once closed: what a backtest settles at, never
# before `closed_time`. `resolved` only for closed with final prices 1/0, 0/1 or 0.5/0.5.
market_resolutions = Table(
    "market_resolutions",
    metadata,
    Column("market_id", Text, primary_key=True),
    Column("closed_time", TS),
    Column("outcome_prices", JSONB),
    Column("uma_resolution_status", Text),
    Column("resolved", Boolean, nullable=False),
    Column("winner", Text),
    Column("fetched_at", TS, nullable=False),
    CheckConstraint("winner IN ('YES', 'NO', 'SPLIT')", name="ck_market_resolutions_winner"),
)

# One row per imported day of market history. `completed_at` is set once the whole day was in
# the past when imported; a day imported while under way (today) is imported again next time.
history_imports = Table(
    "history_imports",
    metadata,
    Column("day", Date, primary_key=True),
    Column("fidelity", Integer, nullable=False),  # minutes between grid times
    Column("min_volume", MONEY),
    Column("markets", Integer, nullable=False),
    Column("points", Integer, nullable=False),
    Column("through", TS, nullable=False),  # the last grid time the import could see
    Column("completed_at", TS),
    Column("imported_at", TS, nullable=False, server_default=text("now()")),
    CheckConstraint("fidelity >= 1", name="ck_history_imports_fidelity"),
)

# When Gamma last answered about each held market, and since when neither Gamma nor the CLOB
# knows it. Kept beside `markets` (whose rows a refresh rewrites whole) by the price update,
# which asks Gamma about every held market at least once an hour.
market_resolution_checks = Table(
    "market_resolution_checks",
    metadata,
    Column("market_id", Text, primary_key=True),
    Column("gamma_checked_at", TS),
    Column("missing_since", TS),
)


# --- portfolios and their ledger -----------------------------------------------------------

portfolios = Table(
    "portfolios",
    metadata,
    Column("portfolio_id", Integer, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False, unique=True),
    Column("description", Text),
    Column("strategy_type", Text, nullable=False, index=True),
    Column("strategy_config", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("initial_balance", MONEY, nullable=False),
    # Cash. Named as in the seeds; total value is cash plus open positions' market value.
    Column("current_balance", MONEY, nullable=False),
    Column("net_transfers", MONEY, nullable=False, server_default=text("0")),
    Column("total_invested", MONEY, nullable=False, server_default=text("0")),
    Column("realized_pnl", MONEY, nullable=False, server_default=text("0")),
    Column("unrealized_pnl", MONEY, nullable=False, server_default=text("0")),
    Column("total_profit_loss", MONEY, nullable=False, server_default=text("0")),
    Column("total_fees", MONEY, nullable=False, server_default=text("0")),
    Column("liquidation_value", MONEY),  # cash plus open positions at the bid
    Column("trade_count", Integer, nullable=False, server_default=text("0")),
    Column("total_trades_executed", Integer, nullable=False, server_default=text("0")),
    Column("total_winning_trades", Integer, nullable=False, server_default=text("0")),
    Column("total_losing_trades", Integer, nullable=False, server_default=text("0")),
    Column("avg_trade_pnl", MONEY, nullable=False, server_default=text("0")),
    Column("max_drawdown", RATIO, nullable=False, server_default=text("0")),
    Column("status", Text, nullable=False, server_default=text("'active'")),
    Column("status_reason", Text),
    Column("max_position_size", MONEY),
    Column("max_total_exposure", MONEY),
    Column("max_positions", Integer, nullable=False, server_default=text("20")),
    Column("created_at", TS, nullable=False, server_default=text("now()")),
    Column("last_updated", TS, nullable=False, server_default=text("now()")),
    Column("last_trade_at", TS),
    Column("last_price_update", TS),
    # 'live' portfolios trade today's markets; 'backtest' ones replay imported history over
    # [backtest_from, backtest_to]. Live jobs never touch a backtest portfolio, nor the reverse.
    Column("mode", Text, nullable=False, server_default=text("'live'")),
    Column("backtest_from", Date),
    Column("backtest_to", Date),
    CheckConstraint("status IN ('active', 'paused', 'archived')", name="ck_portfolios_status"),
    CheckConstraint("mode IN ('live', 'backtest')", name="ck_portfolios_mode"),
    CheckConstraint("initial_balance > 0", name="ck_portfolios_initial_balance_positive"),
    CheckConstraint("current_balance >= 0", name="ck_portfolios_cash_not_negative"),
    postgresql_with=UPDATED_IN_PLACE,
)

trading_signals = Table(
    "trading_signals",
    metadata,
    Column("signal_id", BigInteger, primary_key=True, autoincrement=True),
    _portfolio_fk(),
    Column("strategy_type", Text, nullable=False),
    Column("cycle_date", Date, nullable=False),
    Column("as_of", TS, nullable=False),
    Column("market_id", Text, nullable=False),
    Column("event_id", Text),
    Column("token_id", Text),
    Column("question", Text),
    Column("side", Text, nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("price_seen", PRICE),
    Column("confidence", RATIO),
    Column("reason", Text),
    # Signals sharing a group id (arbitrage legs) execute all or none.
    Column("group_id", Text),
    Column("executed", Boolean, nullable=False, server_default=text("false")),
    Column("executed_at", TS),
    Column("trade_id", BigInteger),
    Column("rejection_reason", Text),
    Column("created_at", TS, nullable=False, server_default=text("now()")),
    CheckConstraint("side IN ('YES', 'NO')", name="ck_trading_signals_side"),
    CheckConstraint("amount > 0", name="ck_trading_signals_amount_positive"),
    Index("ix_trading_signals_portfolio_cycle", "portfolio_id", "cycle_date"),
    Index("ix_trading_signals_portfolio_executed", "portfolio_id", "executed"),
)

portfolio_positions = Table(
    "portfolio_positions",
    metadata,
    Column("position_id", BigInteger, primary_key=True, autoincrement=True),
    _portfolio_fk(),
    Column("market_id", Text, nullable=False),
    Column("event_id", Text),
    Column("token_id", Text),
    Column("question", Text),
    Column("side", Text, nullable=False),
    Column("shares", SHARES, nullable=False),
    Column("avg_price", PRICE, nullable=False),
    # Cost basis includes the entry fee, so P&L is net of fees.
    Column("cost_basis", MONEY, nullable=False),
    Column("entry_fee", MONEY, nullable=False, server_default=text("0")),
    Column("current_price", PRICE),
    Column("market_value", MONEY),
    Column("entry_mark", PRICE),  # the displayed price when bought: what exits compare with
    Column("liquidation_value", MONEY),  # shares at the bid
    Column("unrealized_pnl", MONEY, nullable=False, server_default=text("0")),
    Column("realized_pnl", MONEY, nullable=False, server_default=text("0")),
    Column("exit_price", PRICE),
    Column("exit_fee", MONEY, nullable=False, server_default=text("0")),
    Column("proceeds", MONEY),
    Column("status", Text, nullable=False, server_default=text("'open'")),
    Column("close_reason", Text),
    Column("settlement_flag", Text),
    Column("opened_at", TS, nullable=False),
    Column("closed_at", TS),
    Column("last_marked_at", TS),
    Column("signal_id", BigInteger),
    # Legs of an all-or-none basket: held to settlement, never exited one by one.
    Column("group_id", Text),
    CheckConstraint("status IN ('open', 'closed')", name="ck_positions_status"),
    CheckConstraint("side IN ('YES', 'NO')", name="ck_positions_side"),
    Index("ix_positions_portfolio_status", "portfolio_id", "status"),
    Index("ix_positions_market_open", "market_id", postgresql_where=text("status = 'open'")),
    # The database itself refuses a second open position on one side of one market.
    Index(
        "ux_positions_one_open_per_market_side",
        "portfolio_id",
        "market_id",
        "side",
        unique=True,
        postgresql_where=text("status = 'open'"),
    ),
    postgresql_with=UPDATED_IN_PLACE,
)

trades = Table(
    "trades",
    metadata,
    Column("trade_id", BigInteger, primary_key=True, autoincrement=True),
    _portfolio_fk(),
    Column("signal_id", BigInteger),
    Column("position_id", BigInteger),
    Column("market_id", Text, nullable=False),
    Column("side", Text, nullable=False),
    # buy | sell | settle
    Column("action", Text, nullable=False),
    Column("shares", SHARES, nullable=False),
    Column("price", PRICE, nullable=False),
    Column("price_seen", PRICE),
    # Gross dollars: paid for a buy (fee included), received before fee for a sell.
    Column("amount", MONEY, nullable=False),
    Column("fee", MONEY, nullable=False, server_default=text("0")),
    # Signed change of cash: -amount for a buy, proceeds net of fee for a sell or settlement.
    Column("cash_delta", MONEY, nullable=False),
    Column("realized_pnl", MONEY),
    Column("reason", Text),
    Column("executed_at", TS, nullable=False),
    # How the fill was priced: 'depth' (walked book levels), 'top_of_book' or 'history'.
    Column("evidence", Text),
    Column("levels", JSONB),  # levels taken: [[price, shares], ...]
    Column("mid_price", PRICE),
    Column("slippage", MONEY),  # dollars paid (or forgone) against the mid
    Column("requested_amount", MONEY),  # a buy's signal amount; `amount` is what filled
    Column("observed_at", TS),  # a replayed fill: the time of the market observation it was priced from
    CheckConstraint("action IN ('buy', 'sell', 'settle')", name="ck_trades_action"),
    CheckConstraint("evidence IN ('depth', 'top_of_book', 'history')", name="ck_trades_evidence"),
    Index("ix_trades_portfolio_time", "portfolio_id", "executed_at"),
    # A signal is filled at most once, ever.
    Index(
        "ux_trades_one_buy_per_signal",
        "signal_id",
        unique=True,
        postgresql_where=text("signal_id IS NOT NULL AND action = 'buy'"),
    ),
)

portfolio_history = Table(
    "portfolio_history",
    metadata,
    Column("history_id", BigInteger, primary_key=True, autoincrement=True),
    _portfolio_fk(),
    Column("snapshot_date", Date, nullable=False),
    Column("timestamp", TS, nullable=False),
    Column("cash", MONEY, nullable=False),
    Column("positions_value", MONEY, nullable=False),
    Column("total_value", MONEY, nullable=False),
    Column("initial_balance", MONEY, nullable=False),
    Column("net_transfers", MONEY, nullable=False),
    Column("realized_pnl", MONEY, nullable=False),
    Column("unrealized_pnl", MONEY, nullable=False),
    Column("fees", MONEY, nullable=False),
    Column("open_positions", Integer, nullable=False),
    Column("trade_count", Integer, nullable=False),
    Column("daily_return", RATIO),
    UniqueConstraint("portfolio_id", "snapshot_date", name="uq_portfolio_history_day"),
)

# The days a backtest portfolio has replayed, in order: a day with `replayed_at` is never replayed
# again; one without it was started and not finished (the replay stops there rather than redo it).
backtest_days = Table(
    "backtest_days",
    metadata,
    Column("portfolio_id", Integer, ForeignKey("portfolios.portfolio_id", ondelete="CASCADE"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("started_at", TS, nullable=False, server_default=text("now()")),
    Column("replayed_at", TS),
    Column("total_value", MONEY),
    Column("pnl", MONEY),  # the day's change in total value (net of transfers)
    Column("fills", Integer),
    Column("fees", MONEY),
    Column("settlements", Integer),
    Column("exits", Integer),
)

signal_archives = Table(
    "signal_archives",
    metadata,
    Column("signal_id", BigInteger, primary_key=True),
    _portfolio_fk(),
    Column("strategy_type", Text, nullable=False),
    Column("cycle_date", Date, nullable=False),
    Column("as_of", TS, nullable=False),
    Column("market_id", Text, nullable=False),
    Column("event_id", Text),
    Column("token_id", Text),
    Column("question", Text),
    Column("side", Text, nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("price_seen", PRICE),
    Column("confidence", RATIO),
    Column("reason", Text),
    Column("group_id", Text),
    Column("executed", Boolean, nullable=False),
    Column("executed_at", TS),
    Column("trade_id", BigInteger),
    Column("rejection_reason", Text),
    Column("created_at", TS, nullable=False),
    Column("archived_at", TS, nullable=False, server_default=text("now()")),
)

portfolio_rebalancing_log = Table(
    "portfolio_rebalancing_log",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("timestamp", TS, nullable=False, server_default=text("now()")),
    # A transfer belongs to both sides' books: deleting one portfolio keeps the row for the
    # other, with the deleted side's id cleared and its name kept.
    Column("from_portfolio_id", Integer, ForeignKey("portfolios.portfolio_id", ondelete="SET NULL")),
    Column("to_portfolio_id", Integer, ForeignKey("portfolios.portfolio_id", ondelete="SET NULL")),
    Column("from_portfolio_name", Text),
    Column("to_portfolio_name", Text),
    Column("amount", MONEY, nullable=False),
    Column("reason", Text),
    Column("executed_by", Text, nullable=False, server_default=text("'manual'")),
    CheckConstraint("amount > 0", name="ck_rebalancing_positive_amount"),
)

portfolio_performance_cache = Table(
    "portfolio_performance_cache",
    metadata,
    Column(
        "portfolio_id",
        Integer,
        ForeignKey("portfolios.portfolio_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("calculated_at", TS, nullable=False, server_default=text("now()")),
    Column("days", Integer),
    Column("sharpe_ratio", RATIO),
    Column("sortino_ratio", RATIO),
    Column("max_drawdown", RATIO),
    Column("cagr", RATIO),
    Column("calmar_ratio", RATIO),
    Column("win_rate", RATIO),
    Column("profit_factor", RATIO),
    Column("expectancy", MONEY),
    Column("avg_trade_pnl", MONEY),
    Column("avg_win", MONEY),
    Column("avg_loss", MONEY),
    Column("round_trips", Integer),
    Column("max_consecutive_wins", Integer),
    Column("max_consecutive_losses", Integer),
    Column("signal_execution_rate", RATIO),
    Column("return_1d", RATIO),
    Column("return_7d", RATIO),
    Column("return_30d", RATIO),
    Column("return_all_time", RATIO),
)

ALL_TABLES = [t.name for t in metadata.sorted_tables]
