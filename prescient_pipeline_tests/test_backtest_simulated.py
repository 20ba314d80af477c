"""End to end: the simulator's past (14 days), imported over its last ten, then backtests of
momentum and arbitrage through the command line. Real HTTP, real PostgreSQL."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from prescient_pipeline.cli import main
from prescient_pipeline.polymarket.simulator import SimulatorServer, Universe
from prescient_pipeline.services.portfolios import NewPortfolio, create_portfolio
from prescient_pipeline.services.reports import unbalanced_portfolios

START = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)  # the simulator's clock
DAY_FROM, DAY_TO = date(2026, 11, 10), date(2026, 11, 19)


def _dump(engine, portfolio_id: int) -> list:
    with engine.connect() as conn:
        return [[tuple(r) for r in conn.execute(text(f"SELECT * FROM {table} WHERE portfolio_id = :p ORDER BY 1"),
                                                {"p": portfolio_id})]
                for table in ("portfolios", "portfolio_positions", "trades", "trading_signals", "portfolio_history")]


@pytest.mark.slow
def test_backtests_of_the_simulated_past(engine, monkeypatch, capsys):
    live = create_portfolio(engine, NewPortfolio.parse(name="live", strategy="momentum", balance=1000))
    live_before = _dump(engine, live["portfolio_id"])
    past = Universe(seed=7, events=60, start=START, history_days=14)
    with SimulatorServer(past) as server:
        monkeypatch.setenv("PRESCIENT_GAMMA_URL", server.url)
        monkeypatch.setenv("PRESCIENT_CLOB_URL", server.url)
        assert main(["history", "import", "--from", str(DAY_FROM), "--to", str(DAY_TO), "--json"]) == 0
    capsys.readouterr()

    results = {}
    for strategy, config in (("momentum", {"market_min_liquidity": 0, "max_spread": None}), ("arbitrage", {})):
        assert main(["backtest", "run", "--strategy", strategy, "--config", json.dumps(config), "--from",
                     str(DAY_FROM), "--to", str(DAY_TO), "--balance", "10000", "--json"]) == 0
        results[strategy] = json.loads(capsys.readouterr().out)

    for strategy, data in results.items():
        pid = data["portfolio_id"]
        assert [d["day"] for d in data["days"]] == [str(DAY_FROM + timedelta(days=n)) for n in range(10)]
        with engine.connect() as conn:
            buys = conn.execute(text("SELECT count(*) FROM trades WHERE portfolio_id = :p AND action = 'buy'"),
                                {"p": pid}).scalar()
            early = conn.execute(text(
                "SELECT count(*) FROM trades t JOIN market_resolutions r ON r.market_id = t.market_id "
                "WHERE t.portfolio_id = :p AND t.action = 'settle' AND t.executed_at < r.closed_time"),
                {"p": pid}).scalar()
            late_fills = conn.execute(text(
                "SELECT count(*) FROM trades t JOIN trading_signals s ON s.signal_id = t.signal_id "
                "WHERE t.portfolio_id = :p AND t.observed_at > s.as_of"), {"p": pid}).scalar()
            history_days = conn.execute(text(
                "SELECT count(DISTINCT snapshot_date) FROM portfolio_history WHERE portfolio_id = :p"),
                {"p": pid}).scalar()
        assert buys > 0, f"{strategy} traded"
        assert (early, late_fills, history_days) == (0, 0, 10)
        assert data["report"]["total_value"] == pytest.approx(data["days"][-1]["total_value"])
    settled = sum(d["settlements"] for data in results.values() for d in data["days"])
    assert settled > 0, "some positions settled at their recorded resolution times"
    assert unbalanced_portfolios(engine) == []
    assert _dump(engine, live["portfolio_id"]) == live_before, "the live portfolio is byte-for-byte unchanged"


def test_replaying_a_day_a_live_portfolio_traded_gives_its_signals(engine, monkeypatch, capsys):
    """Parity: with the data the live run saw (live refreshes, no imported history), a backtest
    of that day signals exactly what the live portfolio signalled at its cycle time."""
    from prescient_pipeline.polymarket.client import PolymarketClient
    from prescient_pipeline.services.backtest import create_backtest, replay_through
    from prescient_pipeline.services.market_refresh import refresh_markets
    from prescient_pipeline.services.signals import generate_signals

    cycle = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    universe = Universe(seed=7, events=200, start=cycle)
    with SimulatorServer(universe) as server, PolymarketClient(server.url, server.url) as client:
        refresh_markets(engine, client)
        with engine.connect() as conn:
            refreshed = conn.execute(text("SELECT max(ts) FROM market_refreshes")).scalar()
        assert refreshed == cycle
        live = create_portfolio(engine, NewPortfolio.parse(name="live", strategy="momentum", balance=1000))
        run = generate_signals(engine, live["portfolio_id"], cycle.date(), cycle)
        universe.advance(24 * 60)  # the next day's refresh: the first day is now in the past
        refresh_markets(engine, client)

    backtest = create_backtest(engine, "momentum", {}, 1000, cycle.date(), cycle.date())
    replay_through(engine, backtest["portfolio_id"], cycle.date())
    query = text("SELECT market_id, side, amount, price_seen, as_of FROM trading_signals WHERE portfolio_id = :p "
                 "ORDER BY market_id, side")
    with engine.connect() as conn:
        live_signals = conn.execute(query, {"p": live["portfolio_id"]}).all()
        replayed = conn.execute(query, {"p": backtest["portfolio_id"]}).all()
    assert len(run.signals) > 0 and live_signals == replayed

    # The check a user runs: the same signals, exit 0.
    day = str(cycle.date())
    capsys.readouterr()
    assert main(["backtest", "parity", str(live["portfolio_id"]), "--day", day, "--json"]) == 0
    parity = json.loads(capsys.readouterr().out)
    assert (parity["same"], parity["live"], parity["replayed"], parity["differences"]) == (
        True, len(run.signals), len(run.signals), [])
    assert parity["as_of"] == cycle.isoformat()

    # A config changed since the live run: the replay sizes differently, and the check says where (exit 1).
    with engine.begin() as conn:
        conn.execute(text("UPDATE portfolios SET strategy_config = strategy_config || '{\"trade_amount\": 7}' "
                          "WHERE portfolio_id = :p"), {"p": live["portfolio_id"]})
    assert main(["backtest", "parity", str(live["portfolio_id"]), "--day", day, "--json"]) == 1
    parity = json.loads(capsys.readouterr().out)
    assert parity["same"] is False and len(parity["differences"]) == len(run.signals)
    assert {d["what"] for d in parity["differences"]} == {"amount or price"}
    assert {d["replayed_amount"] for d in parity["differences"]} == {7}

    # Bad input: one line, exit 2.
    for argv, message in (([str(backtest["portfolio_id"]), "--day", day], "is a backtest"),
                          ([str(live["portfolio_id"]), "--day", "2026-03-05"], "recorded no signals on 2026-03-05")):
        assert main(["backtest", "parity", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
