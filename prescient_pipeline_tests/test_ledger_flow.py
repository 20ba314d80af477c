"""The whole ledger through the production Dagster jobs, against the simulator.

Four portfolios (one per strategy) trade a 300-event simulated universe; prices are updated
every six simulated hours for three days; the books must balance after every update.
"""

from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest
from sqlalchemy import text

from prescient_pipeline.defs import runner
from prescient_pipeline.services import portfolios as svc
from prescient_pipeline.services.reports import unbalanced_portfolios

from .helpers import simulator

STRATEGIES = ("momentum", "mean_reversion", "arbitrage", "hybrid")


def make_portfolios(engine, **config):
    ids = {}
    for s in STRATEGIES:
        row = svc.create_portfolio(engine, svc.NewPortfolio.parse(
            name=f"{s} book", strategy=s, balance="10000", config=config.get(s)))
        ids[s] = row["portfolio_id"]
    return ids


def signals_by_portfolio(engine):
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT portfolio_id, strategy_type, market_id, side, amount, group_id FROM trading_signals "
            "ORDER BY portfolio_id, market_id, side"
        )).all()
    out = {}
    for r in rows:
        out.setdefault(r.portfolio_id, []).append(tuple(r))
    return out


@pytest.fixture
def start_three_days_ago():
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    return now.replace(hour=0) - timedelta(days=3)


def test_todays_partition_signals_for_every_strategy_and_rerun_is_stable(engine, monkeypatch):
    with simulator(monkeypatch, start=datetime.now(timezone.utc)), dg.instance_for_test() as instance:
        ids = make_portfolios(engine)
        runner.refresh(instance)
        today = datetime.now(timezone.utc).date()
        for pid in ids.values():
            runner.signals(instance, today, pid)
        first = signals_by_portfolio(engine)
        for s in ("momentum", "mean_reversion", "arbitrage"):
            assert first.get(ids[s]), f"{s} produced no signals with default config"
        for pid, rows in first.items():
            assert {r[1] for r in rows} == {next(k for k, v in ids.items() if v == pid)}, "no signal belongs to another portfolio"
        arb_groups = {r[5] for r in first[ids["arbitrage"]]}
        assert None not in arb_groups, "arbitrage legs are linked"

        for pid in ids.values():
            runner.signals(instance, today, pid)
        assert signals_by_portfolio(engine) == first, "re-materializing leaves the same signals"
        mat = instance.get_latest_materialization_event(dg.AssetKey("portfolio_signals")).asset_materialization
        assert mat.metadata["signals"].value >= 0 and "markets_after_universe" in mat.metadata


def test_paused_portfolio_produces_no_signals(engine, monkeypatch):
    with simulator(monkeypatch), dg.instance_for_test() as instance:
        pid = make_portfolios(engine)["momentum"]
        svc.set_status(engine, pid, "paused", "test")
        runner.refresh(instance)
        runner.signals(instance, datetime.now(timezone.utc).date(), pid)
        mat = instance.get_latest_materialization_event(dg.AssetKey("portfolio_signals")).asset_materialization
    assert signals_by_portfolio(engine) == {}
    assert "paused" in mat.metadata["skipped"].value


@pytest.mark.slow
def test_three_days_of_trading_balance_after_every_update(engine, monkeypatch, start_three_days_ago):
    exits = {"momentum": {"stop_loss_percentage": 0.05, "take_profit_percentage": 0.05}}
    with simulator(monkeypatch, start=start_three_days_ago) as sim, dg.instance_for_test() as instance:
        ids = make_portfolios(engine, **exits)
        for day in range(3):
            sim.universe.advance(9 * 60 if day == 0 else 0)
            cycle = runner.run_cycle(instance, engine, sim.universe.now.date())
            assert set(cycle.portfolio_ids) == set(ids.values())
            for _ in range(4):
                sim.universe.advance(6 * 60)
                runner.update_prices(instance)
                assert unbalanced_portfolios(engine) == []
        runner.snapshot(instance)
        values = instance.get_latest_materialization_event(dg.AssetKey("portfolio_values"))
    with engine.connect() as conn:
        trades = dict(conn.execute(text("SELECT portfolio_id, count(*) FROM trades GROUP BY portfolio_id")).all())
        closes = dict(conn.execute(text(
            "SELECT close_reason, count(*) FROM portfolio_positions WHERE status = 'closed' GROUP BY close_reason")).all())
        history = conn.execute(text(
            "SELECT portfolio_id, count(*), count(DISTINCT snapshot_date) FROM portfolio_history GROUP BY portfolio_id")).all()
        executed_twice = conn.execute(text(
            "SELECT count(*) FROM (SELECT signal_id FROM trades WHERE action = 'buy' GROUP BY signal_id HAVING count(*) > 1) d")).scalar()
    assert all(trades.get(ids[s], 0) > 0 for s in ("momentum", "mean_reversion", "arbitrage"))
    assert closes, "positions closed by exits or settlement"
    assert any(k.startswith("settlement_") for k in closes) or any(k in ("stop_loss", "take_profit") for k in closes)
    assert len(history) == 4 and all(n == d for _, n, d in history), "one history row per portfolio per day"
    assert {h[0] for h in history} == set(ids.values())
    assert executed_twice == 0
    assert values is not None and "total_value" in values.asset_materialization.metadata
