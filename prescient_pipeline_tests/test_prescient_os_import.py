"""`prescient import prescient-os` against a throw-away database with the original's schema.

The DDL is the Prescient OS schema as its design documents give it (the multi-portfolio
`portfolios` table, and `portfolio_positions`, `trades`, `trading_signals`, `portfolio_history`
with the columns its database functions read and write).

Every expected figure is computed by hand in the comments. Prescient OS valued a position as
`(price - entry) * amount` and a portfolio as `balance + P&L`; here a position is
`amount / entry` shares worth `shares * price`, and a portfolio is cash plus positions.
"""

import json
import uuid
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from prescient_pipeline.cli import main
from prescient_pipeline.db import embedded
from prescient_pipeline.db.urls import sqlalchemy_url, with_database
from prescient_pipeline.services.reports import unbalanced_portfolios

DDL = """
CREATE TABLE portfolios (
    portfolio_id SERIAL PRIMARY KEY,
    name VARCHAR(255) NOT NULL,
    description TEXT,
    strategy_type VARCHAR(100) NOT NULL,
    initial_balance DECIMAL(15, 2) NOT NULL,
    current_balance DECIMAL(15, 2) NOT NULL,
    total_invested DECIMAL(15, 2) DEFAULT 0,
    total_profit_loss DECIMAL(15, 2) DEFAULT 0,
    trade_count INTEGER DEFAULT 0,
    status VARCHAR(50) DEFAULT 'active',
    created_at TIMESTAMP DEFAULT NOW(),
    last_updated TIMESTAMP DEFAULT NOW(),
    strategy_config JSONB DEFAULT '{}'::jsonb,
    max_position_size DECIMAL(15, 2),
    max_total_exposure DECIMAL(15, 2),
    max_positions INTEGER DEFAULT 20,
    total_trades_executed INTEGER DEFAULT 0,
    total_winning_trades INTEGER DEFAULT 0,
    total_losing_trades INTEGER DEFAULT 0,
    avg_trade_pnl DECIMAL(15, 2) DEFAULT 0,
    max_drawdown DECIMAL(15, 2) DEFAULT 0,
    last_trade_at TIMESTAMP,
    last_price_update TIMESTAMP,
    UNIQUE(name)
);
CREATE TABLE portfolio_positions (
    id SERIAL PRIMARY KEY,
    portfolio_id INTEGER REFERENCES portfolios(portfolio_id) ON DELETE CASCADE,
    trade_id VARCHAR(100),
    market_id VARCHAR(100) NOT NULL,
    market_question TEXT,
    action VARCHAR(20) NOT NULL,
    amount DECIMAL(15, 2) NOT NULL,
    entry_price DECIMAL(10, 4) NOT NULL,
    entry_timestamp TIMESTAMP,
    status VARCHAR(20) DEFAULT 'open',
    current_pnl DECIMAL(15, 2) DEFAULT 0,
    realized_pnl DECIMAL(15, 2),
    exit_price DECIMAL(10, 4),
    exit_timestamp TIMESTAMP
);
CREATE TABLE trades (
    id SERIAL PRIMARY KEY,
    portfolio_id INTEGER REFERENCES portfolios(portfolio_id) ON DELETE CASCADE,
    trade_id VARCHAR(100),
    timestamp TIMESTAMP,
    market_id VARCHAR(100),
    market_question TEXT,
    action VARCHAR(20),
    amount DECIMAL(15, 2),
    entry_price DECIMAL(10, 4),
    confidence DECIMAL(5, 4),
    reason TEXT,
    status VARCHAR(20),
    event_id VARCHAR(100),
    event_title TEXT,
    event_end_date TIMESTAMP,
    current_pnl DECIMAL(15, 2),
    realized_pnl DECIMAL(15, 2)
);
CREATE TABLE trading_signals (
    id SERIAL PRIMARY KEY,
    portfolio_id INTEGER REFERENCES portfolios(portfolio_id) ON DELETE CASCADE,
    strategy_type VARCHAR(100),
    timestamp TIMESTAMP,
    market_id VARCHAR(100),
    market_question TEXT,
    action VARCHAR(20),
    target_price DECIMAL(10, 4),
    amount DECIMAL(15, 2),
    confidence DECIMAL(5, 4),
    reason TEXT,
    yes_price DECIMAL(10, 4),
    no_price DECIMAL(10, 4),
    market_liquidity DECIMAL(20, 2),
    market_volume DECIMAL(20, 2),
    event_id VARCHAR(100),
    event_title TEXT,
    event_end_date TIMESTAMP,
    executed BOOLEAN DEFAULT FALSE,
    executed_at TIMESTAMP,
    trade_id VARCHAR(100)
);
CREATE TABLE portfolio_rebalancing_log (
    id SERIAL PRIMARY KEY,
    timestamp TIMESTAMP DEFAULT NOW(),
    from_portfolio_id INTEGER REFERENCES portfolios(portfolio_id),
    to_portfolio_id INTEGER REFERENCES portfolios(portfolio_id),
    amount DECIMAL(15, 2) NOT NULL,
    reason TEXT,
    executed_by VARCHAR(100),
    CONSTRAINT positive_amount CHECK (amount > 0)
);
CREATE TABLE portfolio_history (
    id SERIAL PRIMARY KEY,
    portfolio_id INTEGER REFERENCES portfolios(portfolio_id) ON DELETE CASCADE,
    snapshot_date DATE NOT NULL,
    timestamp TIMESTAMP,
    balance DECIMAL(15, 2),
    total_invested DECIMAL(15, 2),
    total_profit_loss DECIMAL(15, 2),
    total_value DECIMAL(15, 2),
    open_positions INTEGER,
    trade_count INTEGER
);
"""

# Portfolio 1, momentum, $10,000:
#   A  buy_yes m1 $100 at 0.50, open, their P&L 10 = (0.60 - 0.50) * 100 -> mark 0.60.
#      Here: 100 / 0.50 = 200 shares worth 200 * 0.60 = 120, unrealized 120 - 100 = 20.
#   B  buy_no m2 $200 at 0.40, sold at 0.55 on Jan 11, their realized (0.55 - 0.40) * 200 = 30.
#      Here: 200 / 0.40 = 500 shares, proceeds 500 * 0.55 = 275, realized 275 - 200 = 75.
#   Jan 10 12:00 it transfers $100 to portfolio 2.
#   Their balance 10000 - 100 - 300 + (200 + 30) = 9830, P&L 10, total value 9830 + 10 = 9840.
#   Here: cash 10000 - 100 - 300 + 275 = 9875, positions 120, total 9995 (+155), P&L 75 + 20 = 95 (+85).
# Portfolio 2, mean reversion, $5,000, paused:
#   C  buy_yes m4 $150 at 0.30, settled at 1 on Jan 12, their realized (1 - 0.30) * 150 = 105.
#      Here: 500 shares, proceeds 500, realized 350.
#   D  buy_no m5 $60 at 0.80, open, their P&L -6 -> mark 0.70: 75 shares.
#   E  buy_no m5 $40 at 0.80, open, their P&L -4 -> mark 0.70: 50 shares (one position with D here).
#      D + E: 125 shares worth 125 * 0.70 = 87.50 on a cost of 100, unrealized -12.50.
#   Their balance 5000 + 100 - 250 + (150 + 105) = 5105, P&L -10, total 5095.
#   Here: cash 5000 + 100 - 250 + 500 = 5350, positions 87.50, total 5437.50 (+342.50),
#   P&L 350 - 12.50 = 337.50 (+347.50).
DATA = """
INSERT INTO portfolios (name, description, strategy_type, initial_balance, current_balance, total_invested,
                        total_profit_loss, trade_count, status, strategy_config, max_positions, created_at,
                        last_price_update)
VALUES ('Aggressive Momentum', 'politics and crypto', 'momentum', 10000, 9830, 100, 10, 2, 'active',
        '{"min_liquidity": 50000, "min_volume": 100000, "min_conviction": 0.15,
          "categories": ["politics", "crypto"], "max_positions": 20, "min_confidence": 0.75}',
        20, '2026-01-09 08:00', '2026-01-12 10:00'),
       ('Conservative Mean Reversion', NULL, 'mean_reversion', 5000, 5105, 100, -10, 3, 'paused',
        '{"min_liquidity": 10000, "extreme_price_threshold": 0.85, "categories": ["sports"],
          "max_positions": 10}',
        NULL, '2026-01-09 08:00', '2026-01-12 10:00');

INSERT INTO portfolio_positions (portfolio_id, trade_id, market_id, market_question, action, amount, entry_price,
                                 entry_timestamp, status, current_pnl, realized_pnl, exit_price, exit_timestamp)
VALUES (1, 'trade_a', 'm1', 'Will A?', 'buy_yes', 100, 0.50, '2026-01-10 10:00', 'open', 10, NULL, NULL, NULL),
       (1, 'trade_b', 'm2', 'Will B?', 'buy_no', 200, 0.40, '2026-01-10 10:00', 'closed', 0, 30, 0.55,
        '2026-01-11 12:00'),
       (2, 'trade_c', 'm4', 'Will C?', 'buy_yes', 150, 0.30, '2026-01-10 11:00', 'closed', 0, 105, 1.0,
        '2026-01-12 09:00'),
       (2, 'trade_d', 'm5', 'Will D?', 'buy_no', 60, 0.80, '2026-01-10 11:00', 'open', -6, NULL, NULL, NULL),
       (2, 'trade_e', 'm5', 'Will D?', 'buy_no', 40, 0.80, '2026-01-11 11:00', 'open', -4, NULL, NULL, NULL);

INSERT INTO trades (portfolio_id, trade_id, timestamp, market_id, action, amount, entry_price, confidence, reason,
                    status)
VALUES (1, 'trade_a', '2026-01-10 10:00', 'm1', 'buy_yes', 100, 0.50, 0.8, 'favourite in band', 'open'),
       (1, 'trade_b', '2026-01-10 10:00', 'm2', 'buy_no', 200, 0.40, 0.7, 'favourite in band', 'closed'),
       (2, 'trade_c', '2026-01-10 11:00', 'm4', 'buy_yes', 150, 0.30, 0.6, 'underdog', 'closed'),
       (2, 'trade_x', '2026-01-10 11:00', 'm9', 'buy_yes', 10, 0.30, 0.6, 'lost position', 'open');

INSERT INTO trading_signals (portfolio_id, strategy_type, timestamp, market_id, market_question, action,
                             target_price, amount, confidence, reason, executed, executed_at, trade_id)
VALUES (1, 'momentum', '2026-01-10 09:00', 'm1', 'Will A?', 'buy_yes', 0.50, 100, 0.8, 'band', true,
        '2026-01-10 10:00', 'trade_a'),
       (1, 'momentum', '2026-01-10 09:00', 'm2', 'Will B?', 'buy_no', 0.40, 200, 0.7, 'band', true,
        '2026-01-10 10:00', 'trade_b'),
       (1, 'momentum', '2026-01-10 09:00', 'm3', 'Will C?', 'buy_yes', 0.55, 100, 0.6, 'band', false, NULL, NULL),
       (2, 'mean_reversion', '2026-01-10 09:00', 'm4', 'Will C?', 'hold', 0.30, 150, 0.6, 'no action', false,
        NULL, NULL);

INSERT INTO portfolio_rebalancing_log (timestamp, from_portfolio_id, to_portfolio_id, amount, reason, executed_by)
VALUES ('2026-01-10 12:00', 1, 2, 100, 'top up', 'manual');

-- Portfolio 1's history, in their figures (total_value = balance + P&L):
--   Jan 10 23:00: A and B held, $100 sent. Balance 9600, invested 300, P&L 15 (A +5, B +10), total 9615.
--   Jan 11 23:00: B sold. Balance 9830, invested 100, P&L 10, total 9840.
INSERT INTO portfolio_history (portfolio_id, snapshot_date, timestamp, balance, total_invested, total_profit_loss,
                               total_value, open_positions, trade_count)
VALUES (1, '2026-01-10', '2026-01-10 23:00', 9600, 300, 15, 9615, 2, 2),
       (1, '2026-01-11', '2026-01-11 23:00', 9830, 100, 10, 9840, 1, 2);
"""


@pytest.fixture(scope="module")
def source_url(database_url):
    """A throw-away Prescient OS database on the test server (only read, except where a test restores it)."""
    name = f"prescient_os_{uuid.uuid4().hex[:10]}"
    embedded.ensure_database(database_url, name)
    url = with_database(database_url, name)
    source = create_engine(sqlalchemy_url(url), poolclass=NullPool)
    with source.begin() as conn:
        conn.execute(text(DDL))
        conn.execute(text(DATA))
    source.dispose()
    yield url
    embedded.drop_database(database_url, name)


@pytest.fixture
def cli(engine, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))

    def run(*argv):
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _counts(engine):
    with engine.connect() as conn:
        return [conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("portfolios", "portfolio_positions", "trades", "trading_signals", "portfolio_history")]


def _money(value):
    return Decimal(str(value)).quantize(Decimal("0.01"))


def test_dry_run_reports_the_changes_and_writes_nothing(cli, engine, source_url):
    code, out, err = cli("import", "prescient-os", "--url", source_url, "--dry-run", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["dry_run"] is True
    assert _counts(engine) == [0, 0, 0, 0, 0]
    one, two = result["portfolios"]
    assert one["portfolio_id"] is None and one["name"] == "Aggressive Momentum"
    figures = ("old_total_value", "new_total_value", "total_value_change", "old_pnl", "new_pnl", "pnl_change",
               "new_cash")
    assert [_money(one[k]) for k in figures] == [_money(v) for v in ("9840", "9995", "155", "10", "95", "85", "9875")]
    assert [_money(two[k]) for k in figures] == [
        _money(v) for v in ("5095", "5437.50", "342.50", "-10", "337.50", "347.50", "5350")]
    assert (_money(one["net_transfers"]), _money(two["net_transfers"])) == (_money("-100"), _money("100"))
    code, text_out, _ = cli("import", "prescient-os", "--url", source_url, "--dry-run")
    assert code == 0 and text_out.startswith("dry run, nothing written: 2 portfolios")


def test_import_recomputes_shares_values_and_balances(cli, engine, source_url):
    code, out, err = cli("import", "prescient-os", "--url", source_url, "--json")
    assert code == 0, err
    one, two = json.loads(out)["portfolios"]
    assert unbalanced_portfolios(engine) == []
    with engine.connect() as conn:
        p1 = conn.execute(text("SELECT * FROM portfolios WHERE portfolio_id = :p"), {"p": one["portfolio_id"]}).one()
        assert (p1.name, p1.strategy_type, p1.status) == ("Aggressive Momentum", "momentum", "active")
        # Renamed where the meaning is the same; min_confidence has no counterpart; max_positions is a column.
        assert p1.strategy_config == {"market_min_liquidity": 50000, "market_min_volume": 100000,
                                      "market_min_conviction": 0.15, "categories": ["politics", "crypto"]}
        assert (p1.current_balance, p1.net_transfers, p1.realized_pnl, p1.unrealized_pnl) == (
            Decimal("9875"), Decimal("-100"), Decimal("75"), Decimal("20"))
        moved = conn.execute(text("SELECT from_portfolio_id, to_portfolio_id, amount FROM portfolio_rebalancing_log")).all()
        assert [tuple(r) for r in moved] == [(one["portfolio_id"], two["portfolio_id"], Decimal("100"))]
        assert p1.max_positions == 20
        positions = conn.execute(text(
            "SELECT market_id, side, shares, cost_basis, current_price, market_value, unrealized_pnl, status, "
            "proceeds, realized_pnl FROM portfolio_positions WHERE portfolio_id = :p ORDER BY market_id"),
            {"p": one["portfolio_id"]}).all()
        assert [tuple(r) for r in positions] == [
            ("m1", "YES", Decimal("200"), Decimal("100"), Decimal("0.6"), Decimal("120"), Decimal("20"), "open",
             None, Decimal("0")),
            ("m2", "NO", Decimal("500"), Decimal("200"), Decimal("0.55"), Decimal("0"), Decimal("0"), "closed",
             Decimal("275"), Decimal("75")),
        ]
        fills = conn.execute(text(
            "SELECT t.market_id, t.action, t.shares, t.price, t.cash_delta, s.market_id AS signal_market "
            "FROM trades t LEFT JOIN trading_signals s ON s.signal_id = t.signal_id "
            "WHERE t.portfolio_id = :p ORDER BY t.executed_at, t.trade_id"), {"p": one["portfolio_id"]}).all()
        assert [tuple(r) for r in fills] == [
            ("m1", "buy", Decimal("200"), Decimal("0.5"), Decimal("-100"), "m1"),
            ("m2", "buy", Decimal("500"), Decimal("0.4"), Decimal("-200"), "m2"),
            ("m2", "sell", Decimal("500"), Decimal("0.55"), Decimal("275"), None),
        ]
        signals = conn.execute(text(
            "SELECT market_id, executed, trade_id IS NOT NULL FROM trading_signals WHERE portfolio_id = :p "
            "ORDER BY signal_id"), {"p": one["portfolio_id"]}).all()
        assert [tuple(r) for r in signals] == [("m1", True, True), ("m2", True, True), ("m3", False, False)]
        # History, recomputed: Jan 10 cash 10000 - 300 - 100 = 9600; A and B held at a cost of 300 = 700
        # shares, so their P&L of 15 is 15 * 700 / 300 = 35 here; total 9600 + 300 + 35 = 9935; the
        # transfer is not a return: (9935 + 100) / 10000 - 1 = 0.35%.
        # Jan 11: cash 9875, A held (cost 100, 200 shares): P&L 10 * 200 / 100 = 20; total 9875 + 120 = 9995,
        # realized 75 (return 9995 / 9935 - 1).
        history = conn.execute(text(
            "SELECT snapshot_date, cash, positions_value, total_value, realized_pnl, unrealized_pnl, open_positions, "
            "net_transfers, "
            "daily_return FROM portfolio_history WHERE portfolio_id = :p ORDER BY snapshot_date"),
            {"p": one["portfolio_id"]}).all()
        assert [tuple(r)[:8] for r in history] == [
            (date(2026, 1, 10), Decimal("9600"), Decimal("335"), Decimal("9935"), Decimal("0"), Decimal("35"), 2,
             Decimal("-100")),
            (date(2026, 1, 11), Decimal("9875"), Decimal("120"), Decimal("9995"), Decimal("75"), Decimal("20"), 1,
             Decimal("-100")),
        ]
        assert float(history[0].daily_return) == pytest.approx(0.0035)
        assert float(history[1].daily_return) == pytest.approx(9995 / 9935 - 1)
        # Metrics from that history: values 10000 (start) -> 9935 -> 9995 net of the transfer, the worst
        # fall from a peak is (9935 + 100) / 10000 - 1 = +0.35%: no drawdown; one round trip (B), a win.
        cache = conn.execute(text("SELECT days, max_drawdown, win_rate, round_trips FROM portfolio_performance_cache "
                                  "WHERE portfolio_id = :p"), {"p": one["portfolio_id"]}).one()
        assert (cache.days, cache.max_drawdown, cache.win_rate, cache.round_trips) == (2, 0, 1, 1)

        p2 = conn.execute(text("SELECT * FROM portfolios WHERE portfolio_id = :p"), {"p": two["portfolio_id"]}).one()
        assert (p2.status, p2.max_positions) == ("paused", 10)
        assert p2.strategy_config == {"market_min_liquidity": 10000, "favourite_min_price": 0.85, "categories": ["sports"]}
        assert (p2.current_balance, p2.realized_pnl, p2.unrealized_pnl) == (Decimal("5350"), Decimal("350"),
                                                                          Decimal("-12.5"))
        held = conn.execute(text(
            "SELECT market_id, shares, cost_basis, market_value, avg_price FROM portfolio_positions "
            "WHERE portfolio_id = :p AND status = 'open'"), {"p": two["portfolio_id"]}).all()
        assert [tuple(r) for r in held] == [("m5", Decimal("125"), Decimal("100"), Decimal("87.5"), Decimal("0.8"))]
        settled = conn.execute(text(
            "SELECT action, price, cash_delta, realized_pnl FROM trades WHERE portfolio_id = :p AND action <> 'buy'"),
            {"p": two["portfolio_id"]}).all()
        assert [tuple(r) for r in settled] == [("settle", Decimal("1"), Decimal("500"), Decimal("350"))]
    notes = " | ".join(two["notes"])
    assert "trade_x" in notes and "1 signals" in notes and "extreme_price_threshold" in notes
    assert any("min_confidence" in n for n in one["notes"])


def test_name_clash_exits_2_unless_suffixed(cli, engine, source_url):
    code, _, err = cli("portfolio", "create", "--name", "Aggressive Momentum", "--strategy", "momentum",
                       "--balance", "100")
    assert code == 0, err
    before = _counts(engine)
    code, _, err = cli("import", "prescient-os", "--url", source_url)
    assert code == 2 and "'Aggressive Momentum' already exist" in err and err.count("\n") == 1
    assert _counts(engine) == before
    code, out, err = cli("import", "prescient-os", "--url", source_url, "--name-suffix", " (Prescient OS)", "--json")
    assert code == 0, err
    assert [p["name"] for p in json.loads(out)["portfolios"]] == ["Aggressive Momentum (Prescient OS)",
                                                                  "Conservative Mean Reversion (Prescient OS)"]
    assert unbalanced_portfolios(engine) == []


def test_unknown_strategy_or_bad_rows_write_nothing(cli, engine, source_url):
    source = create_engine(sqlalchemy_url(source_url), poolclass=NullPool)
    with source.begin() as conn:
        conn.execute(text("UPDATE portfolios SET strategy_type = 'sentiment' WHERE portfolio_id = 2"))
    try:
        code, _, err = cli("import", "prescient-os", "--url", source_url)
        assert code == 2 and "sentiment" in err
        assert _counts(engine) == [0, 0, 0, 0, 0]  # portfolio 1 was fine, and is not written either
    finally:
        with source.begin() as conn:
            conn.execute(text("UPDATE portfolios SET strategy_type = 'mean_reversion' WHERE portfolio_id = 2"))
        source.dispose()
    code, _, err = cli("import", "prescient-os", "--url", "mysql://nope/db")
    assert code == 2 and "--url" in err
