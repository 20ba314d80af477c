"""Backtests through Dagster: `portfolio_signals` partitions of a backtest portfolio replay its
days, in whatever order they run, to the ledger `replay_through` writes; the execute sensor leaves
them alone; the no-look-ahead checks pass on a replay and fail on a planted look-ahead.

History: three days imported over real HTTP from the replay server (which offers every point of
a token, later ones included).
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone

import dagster as dg
import pytest
from sqlalchemy import text

from prescient_pipeline.defs import runner
from prescient_pipeline.defs.ledger import execute_signals_sensor
from prescient_pipeline.defs.strategy import NO_EARLY_SETTLEMENTS, NO_LOOKAHEAD_FILLS, signals_partition_key
from prescient_pipeline.polymarket.client import PolymarketClient
from prescient_pipeline.services.backtest import create_backtest, replay_through
from prescient_pipeline.services.market_history import import_history
from prescient_pipeline.services.reports import unbalanced_portfolios

from .helpers import run_job
from .replay_server import ReplayServer
from .test_sensors import tick

DAY1, DAY2, DAY3 = date(2026, 11, 10), date(2026, 11, 11), date(2026, 11, 12)
LISTED_AT = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
UNLIMITED = {"gamma": 100_000, "clob": 100_000}
CONFIG = {"market_min_liquidity": 0, "max_spread": None, "trade_amount": 100, "cycle_cron": "0 9 * * *"}


def ts(day: date, hh: int, mm: int = 0) -> int:
    return int(datetime(day.year, day.month, day.day, hh, mm, tzinfo=timezone.utc).timestamp())


def gamma_market(market_id: int, *, closed_time: str | None = None, prices=("0.5", "0.5")) -> dict:
    market = {
        "id": str(market_id), "conditionId": f"0xc{market_id}", "question": f"Market {market_id}?",
        "slug": f"m-{market_id}", "outcomes": '["Yes", "No"]', "outcomePrices": json.dumps(list(prices)),
        "clobTokenIds": json.dumps([f"{market_id}-yes", f"{market_id}-no"]), "active": True,
        "closed": closed_time is not None, "archived": False, "startDate": "2026-11-01T00:00:00Z",
        "endDate": "2026-11-30T00:00:00Z", "volumeNum": 5000.0, "volume": "5000",
        "events": [{"id": str(market_id * 10), "title": f"Event {market_id}", "slug": f"e-{market_id}"}],
    }
    if closed_time:
        market.update(closedTime=closed_time, umaResolutionStatus="resolved")
    return market


MARKETS = [
    # favourite at 0.70 at day 1's cycle: bought; resolves YES on day 2 at 14:30
    gamma_market(201, closed_time="2026-11-11 14:30:00+00", prices=("1", "0")),
    # a coin flip at day 1's cycle, the favourite at 0.70 from 09:30: bought on day 2
    gamma_market(202),
    # the favourite at 0.62 throughout
    gamma_market(203),
]
HISTORY = {
    "201-yes": [{"t": ts(DAY1 - timedelta(days=1), 20), "p": 0.70}, {"t": ts(DAY1, 11, 30), "p": 0.75},
                {"t": ts(DAY2, 10, 30), "p": 0.80}, {"t": ts(DAY2, 15, 10), "p": 0.99}],
    "202-yes": [{"t": ts(DAY1 - timedelta(days=1), 20), "p": 0.50}, {"t": ts(DAY1, 9, 30), "p": 0.70},
                {"t": ts(DAY3, 12), "p": 0.64}],
    "203-yes": [{"t": ts(DAY1 - timedelta(days=1), 20), "p": 0.62}, {"t": ts(DAY3, 18), "p": 0.66}],
}


@pytest.fixture
def history(engine):
    with ReplayServer(markets=MARKETS, price_history=HISTORY, now=LISTED_AT) as server:
        client = PolymarketClient(server.url, server.url, timeout=(1, 2), retries=1, backoff_factor=0.01,
                                  backoff_max=0.05, requests_per_10s=UNLIMITED)
        with client:
            import_history(engine, client, DAY1, DAY3, 60)
    return engine


def ledger(engine, portfolio_id: int) -> tuple[list[tuple], list[tuple]]:
    """Trades and daily history rows, without the ids that differ between portfolios."""
    with engine.connect() as conn:
        trades = [tuple(r) for r in conn.execute(text(
            "SELECT action, market_id, side, shares, price, amount, fee, cash_delta, realized_pnl, reason, "
            "executed_at, evidence, observed_at FROM trades WHERE portfolio_id = :p ORDER BY executed_at, trade_id"),
            {"p": portfolio_id})]
        history = [tuple(r) for r in conn.execute(text(
            "SELECT snapshot_date, cash, positions_value, total_value, realized_pnl, fees, open_positions "
            "FROM portfolio_history WHERE portfolio_id = :p ORDER BY snapshot_date"), {"p": portfolio_id})]
    return trades, history


def partition_metadata(instance, run_id: str) -> dict:
    records = instance.fetch_materializations(dg.AssetKey("portfolio_signals"), limit=1000).records
    return {r.partition_key: {k: v.value for k, v in r.asset_materialization.metadata.items()}
            for r in records if r.run_id == run_id}


def check_results(instance, run_id: str) -> dict[str, bool]:
    events = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    return {e.dagster_event.event_specific_data.check_name: e.dagster_event.event_specific_data.passed
            for e in events}


@pytest.mark.slow
def test_out_of_order_backfill_gives_the_cli_ledger(history):
    engine = history
    ui = create_backtest(engine, "momentum", CONFIG, 1000, DAY1, DAY3, name="through dagster")["portfolio_id"]
    cli = create_backtest(engine, "momentum", CONFIG, 1000, DAY1, DAY3, name="through replay")["portfolio_id"]
    with dg.instance_for_test() as instance:
        runs = {day: runner.signals(instance, day, ui) for day in (DAY3, DAY1, DAY2)}
        replay_through(engine, cli, DAY3)

        trades, days = ledger(engine, ui)
        assert (trades, days) == ledger(engine, cli)
        assert {t[0] for t in trades} >= {"buy", "settle"}, "the window has fills and a settlement"
        assert [d[0] for d in days] == [DAY1, DAY2, DAY3], "one history row per replayed day"
        assert not unbalanced_portfolios(engine)

        # Day 3's run replayed days 1-3 in order; the later runs of days 1 and 2 found them done
        # and report the recorded figures.
        meta = {day: partition_metadata(instance, run)[str(signals_partition_key(day, ui))]
                for day, run in runs.items()}
        assert [meta[d]["days_replayed_now"] for d in (DAY3, DAY1, DAY2)] == [3, 0, 0]
        for d, row in zip((DAY1, DAY2, DAY3), days):
            assert meta[d]["mode"] == "backtest"
            assert meta[d]["total_value"] == pytest.approx(float(row[3]))
        assert meta[DAY1]["fills"] == sum(1 for t in trades if t[0] in ("buy", "sell") and t[10].date() == DAY1)
        assert meta[DAY2]["fees"] == pytest.approx(float(sum(t[6] for t in trades if t[10].date() == DAY2)))
        for run in runs.values():
            assert check_results(instance, run) == {
                "every_portfolio_signalled": True, NO_LOOKAHEAD_FILLS: True, NO_EARLY_SETTLEMENTS: True}

        # Re-running a replayed day changes nothing.
        runner.signals(instance, DAY2, ui)
        assert ledger(engine, ui) == (trades, days)

        # The replay filled its own signals: live execution is never requested for them.
        assert tick(execute_signals_sensor, instance).run_requests == []


@pytest.mark.slow
def test_one_run_over_several_backtests_gives_each_its_cli_ledger(history):
    """A backfill run over many backtest partitions replays a day's portfolios together; each
    ends with the ledger its own CLI replay gives (one fails alone: the others still replay)."""
    engine = history
    configs = [CONFIG, {**CONFIG, "cycle_cron": "0 13 * * *", "trade_amount": 40}, {**CONFIG, "max_holding_hours": 20}]
    ui = [create_backtest(engine, "momentum", c, 1000, DAY1, DAY3, name=f"ui {n}")["portfolio_id"]
          for n, c in enumerate(configs)]
    cli = [create_backtest(engine, "momentum", c, 1000, DAY1, DAY3, name=f"cli {n}")["portfolio_id"]
           for n, c in enumerate(configs)]
    broken = create_backtest(engine, "momentum", CONFIG, 1000, DAY1, DAY3, name="broken")["portfolio_id"]
    with engine.begin() as conn:  # a config its strategy refuses: this portfolio fails on its own
        conn.execute(text("UPDATE portfolios SET strategy_config = '{\"trade_amount\": -5}' WHERE portfolio_id = :p"),
                     {"p": broken})
    with dg.instance_for_test() as instance:
        run = runner.signals(instance, DAY3, [*ui, broken])
        assert check_results(instance, run)["every_portfolio_signalled"] is False
        meta = partition_metadata(instance, run)
        assert "trade_amount" in meta[str(signals_partition_key(DAY3, broken))]["error"]
        assert [meta[str(signals_partition_key(DAY3, pid))]["days_replayed_now"] for pid in ui] == [3, 3, 3]
    for pid in cli:
        replay_through(engine, pid, DAY3)
    for one, other in zip(ui, cli):
        assert ledger(engine, one) == ledger(engine, other)
        assert [d[0] for d in ledger(engine, one)[1]] == [DAY1, DAY2, DAY3]
    assert ledger(engine, ui[0]) != ledger(engine, ui[1]), "the configs trade differently"
    assert ledger(engine, broken) == ([], [])
    assert not unbalanced_portfolios(engine)


def test_lookahead_checks_fail_on_a_planted_lookahead(history):
    engine = history
    pid = create_backtest(engine, "momentum", CONFIG, 1000, DAY1, DAY3, name="planted")["portfolio_id"]
    replay_through(engine, pid, DAY3)
    with engine.begin() as conn:
        # a buy priced from an observation an hour after its signal, and a settlement an hour
        # before the market's recorded resolution time
        planted_buy = conn.execute(text(
            "UPDATE trades t SET observed_at = s.as_of + interval '1 hour' FROM trading_signals s "
            "WHERE s.signal_id = t.signal_id AND t.portfolio_id = :p AND t.action = 'buy' AND t.market_id = '201' "
            "RETURNING t.trade_id"), {"p": pid}).scalar_one()
        planted_settle = conn.execute(text(
            "UPDATE trades t SET executed_at = r.closed_time - interval '1 hour' FROM market_resolutions r "
            "WHERE r.market_id = t.market_id AND t.portfolio_id = :p AND t.action = 'settle' "
            "RETURNING t.trade_id"), {"p": pid}).scalar_one()
    with dg.instance_for_test() as instance:
        from prescient_pipeline.dagster_home import register_portfolio

        register_portfolio(instance, pid)
        result = run_job("portfolio_signals_job", instance, partition_key=signals_partition_key(DAY3, pid))
        assert not result.success, "blocking checks fail the run loudly"
        evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
        assert not evaluations[NO_LOOKAHEAD_FILLS].passed and not evaluations[NO_EARLY_SETTLEMENTS].passed
        assert [f["trade_id"] for f in evaluations[NO_LOOKAHEAD_FILLS].metadata["fills"].value] == [planted_buy]
        assert [s["trade_id"] for s in evaluations[NO_EARLY_SETTLEMENTS].metadata["settlements"].value] == [planted_settle]


def test_a_backtests_partitions_start_at_its_first_day(history, monkeypatch):
    from prescient_pipeline.defs.strategy import partitions_start

    monkeypatch.delenv("PRESCIENT_PARTITIONS_START")
    create_backtest(history, "momentum", CONFIG, 1000, DAY2, DAY3, name="later")
    # created today (after DAY3), replaying from DAY2: the grid starts at DAY2 so its days can be backfilled
    assert partitions_start() == DAY2.isoformat()


def test_replayed_days_rewrite_the_html_report_on_the_replayed_timeline(history, tmp_path):
    from prescient_pipeline.defs.ledger import backtest_report_sensor, portfolio_report_job
    from prescient_pipeline.services.html_report import load_pages

    engine = history
    pid = create_backtest(engine, "momentum", CONFIG, 1000, DAY1, DAY3, name="reported")["portfolio_id"]
    with dg.instance_for_test() as instance:
        assert tick(backtest_report_sensor, instance).run_requests == [], "nothing replayed yet"
        run = runner.signals(instance, DAY3, pid)
        first = tick(backtest_report_sensor, instance)
        assert [(r.run_key, r.job_name) for r in first.run_requests] == [(f"report-after-{run}", None)]
        assert backtest_report_sensor.job_name == portfolio_report_job.name
        assert tick(backtest_report_sensor, instance, first.cursor).run_requests == [], "once per replay"
        assert runner.report(instance, str(tmp_path)).success
    assert (tmp_path / f"portfolio-{pid}.html").exists()
    (page,) = load_pages(engine, pid)
    curve = page.equity_curve()
    # the equity curve runs on the replayed days (DAY1 09:00 .. end of DAY3), not on the wall clock
    times = [t.to_pydatetime() if hasattr(t, "to_pydatetime") else t for t in curve["time"]]
    assert min(times).date() == DAY1 and max(times).date() == DAY3
    assert curve["total_value"].iloc[-1] == pytest.approx(float(page.summary["total_value"]))
