"""`prescient backtest fork`: a what-if copy of a portfolio as it stood at the end of a day,
with a changed config, replayed to the last imported history day. The three-day history of
test_backtest_dagster (imported over real HTTP) is the market data."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import text

from prescient_pipeline.cli import main
from prescient_pipeline.services.backtest import create_backtest, replay_through
from prescient_pipeline.services.backtest_fork import fork_portfolio, replay_fork
from prescient_pipeline.services.reports import report, unbalanced_portfolios

from .test_backtest_dagster import CONFIG, DAY1, DAY2, DAY3, history, ledger  # noqa: F401 (fixture)


def at(day, hh, mm=0):
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=timezone.utc)


NOV9 = DAY1.replace(day=9)


@pytest.fixture
def live(history):
    """A live portfolio with a hand-written ledger around the fork date (DAY1, Nov 10):
    Nov 9 09:00  transfer in 100 (from another portfolio)
    Nov 9 10:00  buy 201 YES 100 sh at 0.60 for 60.00 -> position A
    Nov 9 12:00  buy 203 YES  50 sh at 0.62 for 31.00 -> position B
    Nov 10 12:00 sell 20 sh of B at 0.65: 13.00, cost taken 31 x 20/50 = 12.40, realized 0.60
    Nov 11 12:00 sell the other 30 sh of B at 0.66: 19.80, realized 19.80 - 18.60 = 1.20 (after the fork date)
    Nov 11 14:30 settle A at 1: 100, realized 40 (after the fork date)
    Nov 11 15:00 transfer in 50 (after the fork date)
    History rows dated Nov 9, 10, 11."""
    engine = history
    with engine.begin() as conn:
        other = conn.execute(text("INSERT INTO portfolios (name, strategy_type, initial_balance, current_balance, net_transfers) "
                                  "VALUES ('other', 'momentum', 1000, 850, -150) RETURNING portfolio_id")).scalar_one()
        pid = conn.execute(text(
            "INSERT INTO portfolios (name, strategy_type, strategy_config, initial_balance, current_balance, "
            "net_transfers, realized_pnl, trade_count, total_trades_executed, total_winning_trades) "
            "VALUES ('live one', 'momentum', CAST(:cfg AS jsonb), 1000, 1191.80, 150, 41.80, 5, 2, 2) "
            "RETURNING portfolio_id"), {"cfg": json.dumps(CONFIG)}).scalar_one()
        for amount, when in ((100, at(NOV9, 9)), (50, at(DAY2, 15))):
            conn.execute(text("INSERT INTO portfolio_rebalancing_log (timestamp, from_portfolio_id, to_portfolio_id, "
                              "amount) VALUES (:t, :o, :p, :a)"), {"t": when, "o": other, "p": pid, "a": amount})

        def position(market, shares, price, cost, opened, closed, realized, proceeds, exit_price):
            return conn.execute(text(
                "INSERT INTO portfolio_positions (portfolio_id, market_id, side, shares, avg_price, cost_basis, "
                "entry_mark, status, opened_at, closed_at, realized_pnl, proceeds, exit_price, current_price, "
                "market_value, last_marked_at) VALUES (:p, :m, 'YES', :s, :price, :cost, :price, 'closed', :o, :c, "
                ":r, :proceeds, :x, :x, 0, :c) RETURNING position_id"),
                dict(p=pid, m=market, s=shares, price=price, cost=cost, o=opened, c=closed, r=realized,
                     proceeds=proceeds, x=exit_price)).scalar_one()

        a = position("201", 100, 0.60, 60, at(NOV9, 10), at(DAY2, 14, 30), 40, 100, 1)
        b = position("203", 30, 0.62, 18.60, at(NOV9, 12), at(DAY2, 12), 1.80, 32.80, 0.66)

        def trade(pos, market, action, shares, price, amount, cash_delta, realized, when):
            conn.execute(text(
                "INSERT INTO trades (portfolio_id, position_id, market_id, side, action, shares, price, amount, fee, "
                "cash_delta, realized_pnl, executed_at, evidence) VALUES (:p, :pos, :m, 'YES', :a, :s, :price, "
                ":amount, 0, :cd, :r, :t, :e)"),
                dict(p=pid, pos=pos, m=market, a=action, s=shares, price=price, amount=amount, cd=cash_delta,
                     r=realized, t=when, e=None if action == "settle" else "top_of_book"))

        trade(a, "201", "buy", 100, 0.60, 60, -60, None, at(NOV9, 10))
        trade(b, "203", "buy", 50, 0.62, 31, -31, None, at(NOV9, 12))
        trade(b, "203", "sell", 20, 0.65, 13, 13, 0.60, at(DAY1, 12))
        trade(b, "203", "sell", 30, 0.66, 19.80, 19.80, 1.20, at(DAY2, 12))
        trade(a, "201", "settle", 100, 1, 100, 100, 40, at(DAY2, 14, 30))
        for day, total in ((NOV9, 1100), (DAY1, 1110), (DAY2, 1191.80)):
            conn.execute(text(
                "INSERT INTO portfolio_history (portfolio_id, snapshot_date, timestamp, cash, positions_value, "
                "total_value, initial_balance, net_transfers, realized_pnl, unrealized_pnl, fees, open_positions, "
                "trade_count) VALUES (:p, :d, :t, 0, 0, :v, 1000, 0, 0, 0, 0, 0, 0)"),
                dict(p=pid, d=day, t=at(day, 23), v=total))
    return pid


def dump(engine, pid) -> list:
    with engine.connect() as conn:
        return [[tuple(r) for r in conn.execute(text(f"SELECT * FROM {table} WHERE portfolio_id = :p ORDER BY 1"),
                                                  {"p": pid})]
                for table in ("portfolios", "portfolio_positions", "trades", "portfolio_history")]


def test_fork_of_a_live_portfolio_reconstructs_the_day_and_replays_forward(history, live):
    engine = history
    before = dump(engine, live)
    with engine.connect() as conn:
        snapshots = conn.execute(text("SELECT count(*) FROM market_snapshots")).scalar_one()
    fork = fork_portfolio(engine, live, DAY1, {"trade_amount": 50})
    # cash 1000 + 100 (the Nov 9 transfer) - 60 - 31 + 13 = 1022; A whole, B with 30 shares
    assert fork.cash == Decimal("1022") and fork.open_positions == 2
    assert (fork.trades_copied, fork.history_copied) == (3, 2)
    assert (fork.replay_from, fork.replay_to) == (DAY2, DAY3)
    with engine.connect() as conn:
        p = conn.execute(text("SELECT * FROM portfolios WHERE portfolio_id = :p"), {"p": fork.portfolio_id}).one()
        positions = {r.market_id: r for r in conn.execute(text(
            "SELECT * FROM portfolio_positions WHERE portfolio_id = :p"), {"p": fork.portfolio_id})}
    assert (p.mode, p.net_transfers, p.realized_pnl, p.trade_count, p.total_trades_executed) == (
        "backtest", Decimal(100), Decimal("0.60"), 3, 2)
    assert p.strategy_config == {**CONFIG, "trade_amount": 50}
    a, b = positions["201"], positions["203"]
    # A: open, 100 sh, cost 60, marked at the last history point by then, 0.75: value 75
    assert (a.status, a.shares, a.cost_basis, a.current_price, a.market_value) == (
        "open", Decimal(100), Decimal(60), Decimal("0.75"), Decimal(75))
    # B: 50 - 20 = 30 sh, cost 31 - 12.40 = 18.60, realized 0.60; marked at 0.62: value 18.60
    assert (b.status, b.shares, b.cost_basis, b.realized_pnl, b.market_value) == (
        "open", Decimal(30), Decimal("18.60"), Decimal("0.60"), Decimal("18.60"))
    (row,) = report(engine, fork.portfolio_id)
    # 1022 + 75 + 18.60 = 1115.60 = 1000 + 100 + 0.60 realized + 15 unrealized
    assert row["total_value"] == Decimal("1115.60")
    assert not unbalanced_portfolios(engine)

    days = replay_fork(engine, fork)
    assert [d.day for d in days] == [DAY2, DAY3]
    with engine.connect() as conn:
        settle = conn.execute(text(
            "SELECT t.executed_at, t.cash_delta, t.realized_pnl, r.closed_time FROM trades t "
            "JOIN market_resolutions r ON r.market_id = t.market_id "
            "WHERE t.portfolio_id = :p AND t.action = 'settle'"), {"p": fork.portfolio_id}).one()
        new_buys = conn.execute(text(
            "SELECT requested_amount FROM trades WHERE portfolio_id = :p AND action = 'buy' AND executed_at >= :d"),
            {"p": fork.portfolio_id, "d": at(DAY2, 0)}).scalars().all()
        snapshots_after = conn.execute(text("SELECT count(*) FROM market_snapshots")).scalar_one()
    # the copied position A settles at the recorded resolution time: 100 x $1, realized 100 - 60 = 40
    assert settle.executed_at == settle.closed_time == at(DAY2, 14, 30)
    assert (settle.cash_delta, settle.realized_pnl) == (Decimal(100), Decimal(40))
    assert new_buys and all(amount == Decimal(50) for amount in new_buys), "the changed config trades"
    assert not unbalanced_portfolios(engine)
    assert dump(engine, live) == before, "the source is untouched"
    assert snapshots_after == snapshots, "a fork imports nothing"


def test_a_fork_of_a_backtest_with_its_own_config_replays_to_the_same_ledger(history):
    engine = history
    source = create_backtest(engine, "momentum", CONFIG, 1000, DAY1, DAY3, name="source")["portfolio_id"]
    replay_through(engine, source, DAY3)
    twins = []
    for name in ("twin 1", "twin 2"):  # two forks of one portfolio share the market data
        fork = fork_portfolio(engine, source, DAY1, None, name)
        replay_fork(engine, fork)
        twins.append(fork.portfolio_id)
    for twin in twins:
        assert ledger(engine, twin) == ledger(engine, source)
        assert report(engine, twin)[0]["total_value"] == report(engine, source)[0]["total_value"]


def test_fork_command_prints_the_fork_and_bad_input_writes_nothing(history, live, capsys, tmp_path, monkeypatch):
    engine = history
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))

    def count():
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM portfolios")).scalar_one()

    n = count()
    for argv, message in (
        (["--at", "yesterday"], "--at must be a date"),
        (["--at", str(DAY1), "--config", "{not json"], "config is not valid JSON"),
        (["--at", str(DAY1), "--config", '{"trade_amount": -5}'], "trade_amount"),
        (["--at", str(DAY3)], "leaves nothing to replay"),
        (["--at", "2026-01-01"], "did not exist"),
        (["--at", str(DAY1), "--name", "live one"], "already exists"),
    ):
        assert main(["backtest", "fork", str(live), *argv]) == 2, argv
        assert message in capsys.readouterr().err
    assert main(["backtest", "fork", "999", "--at", str(DAY1)]) == 2
    assert "no portfolio with id 999" in capsys.readouterr().err
    assert count() == n, "nothing written"

    assert main(["backtest", "fork", str(live), "--at", str(DAY1), "--config", '{"trade_amount": 50}',
                 "--name", "what if 50", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["copied"] == {"cash": 1022.0, "open_positions": 2, "trades": 3, "history_days": 2}
    assert [d["day"] for d in out["days"]] == [str(DAY2), str(DAY3)]
    assert out["report"]["name"] == "what if 50" and out["report"]["mode"] == "backtest"
    assert "brier_score" in out["backtest_metrics"]
