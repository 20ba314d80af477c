"""Backtest metrics: Brier score and calibration of entries, return per capital-day, fees and
slippage against the mid, book vs history evidence. Golden numbers computed by hand below."""

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from prescient_pipeline.domain.backtest_metrics import (
    Entry, Fill, Holding, backtest_metrics, brier_score, calibration, capital_days, execution_costs,
    return_per_capital_day,
)
from prescient_pipeline.services.reports import backtest_metrics as report_metrics

T0 = datetime(2026, 11, 1, 9, tzinfo=timezone.utc)


def test_brier_score_by_hand():
    # (0.8 - 1)^2 = 0.04; (0.3 - 0)^2 = 0.09; (0.6 - 0.5)^2 = 0.01; mean = 0.14 / 3
    entries = [Entry(0.8, 1), Entry(0.3, 0), Entry(0.6, 0.5)]
    assert brier_score(entries) == pytest.approx(0.14 / 3)
    assert brier_score([]) is None
    # a coin-flip forecaster scores 0.25 whatever happens
    assert brier_score([Entry(0.5, 1), Entry(0.5, 0)]) == pytest.approx(0.25)


def test_calibration_buckets_by_hand():
    # 0.82 and 0.88 -> [0.8, 0.9): mean forecast 0.85, outcomes 1 and 0 -> realized 0.5
    # 0.15 -> [0.1, 0.2): forecast 0.15, realized 0; 1.0 -> the last bucket [0.9, 1.0]
    entries = [Entry(0.82, 1), Entry(0.88, 0), Entry(0.15, 0), Entry(1.0, 1)]
    buckets = calibration(entries)
    assert [(b["bucket_low"], b["count"]) for b in buckets] == [(0.1, 1), (0.8, 2), (0.9, 1)]
    assert buckets[0]["mean_forecast"] == pytest.approx(0.15) and buckets[0]["realized"] == 0
    assert buckets[1]["mean_forecast"] == pytest.approx(0.85) and buckets[1]["realized"] == pytest.approx(0.5)
    assert buckets[2]["mean_forecast"] == 1.0 and buckets[2]["realized"] == 1


def test_return_per_capital_day_by_hand():
    # A: $100 held 2 days, +$4  -> 200 capital-days
    # B: $50 held 12 hours, -$1 ->  25 capital-days
    # C: $30 open since day 1, held until T0 + 3 days: 2 days -> 60 capital-days, +$2.5
    # P&L 4 - 1 + 2.5 = 5.5 over 285 capital-days = 0.019298...
    until = T0 + timedelta(days=3)
    holdings = [
        Holding(100, T0, T0 + timedelta(days=2), 4),
        Holding(50, T0, T0 + timedelta(hours=12), -1),
        Holding(30, T0 + timedelta(days=1), None, 2.5),
    ]
    assert capital_days(holdings, until) == pytest.approx(285)
    assert return_per_capital_day(holdings, until) == pytest.approx(5.5 / 285)
    assert return_per_capital_day([], until) is None


def test_execution_costs_by_hand():
    # notional 100 + 50 + 40 + 10 = 200; fees 1 + 0.5 + 0 + 0.1 = 1.6; slippage 0.4 + 0.2 + 0.6 = 1.2
    # (the unknown one is not counted); cost 2.8 = 140 bps of 200; 2 from a book, 1 from history,
    # 1 unknown: book share 2/3
    fills = [Fill(100, 1, 0.4, "depth"), Fill(50, 0.5, 0.2, "top_of_book"), Fill(40, 0, 0.6, "history"),
             Fill(10, 0.1, None, None)]
    costs = execution_costs(fills)
    assert costs["traded_notional"] == 200
    assert costs["fees_paid"] == pytest.approx(1.6) and costs["slippage_paid"] == pytest.approx(1.2)
    assert costs["execution_cost_bps"] == pytest.approx(140)
    assert costs["fees_bps"] == pytest.approx(80) and costs["slippage_bps"] == pytest.approx(60)
    assert (costs["fills_from_book"], costs["fills_from_history"], costs["fills_unknown_evidence"]) == (2, 1, 1)
    assert costs["book_fill_share"] == pytest.approx(2 / 3) and costs["history_fill_share"] == pytest.approx(1 / 3)
    empty = execution_costs([])
    assert empty["fees_bps"] is None and empty["book_fill_share"] is None


def _portfolio(conn, name="metrics"):
    return conn.execute(text(
        "INSERT INTO portfolios (name, strategy_type, initial_balance, current_balance) "
        "VALUES (:n, 'momentum', 1000, 1000) RETURNING portfolio_id"), {"n": name}).scalar_one()


def _position(conn, pid, market, side, shares, price, cost, opened, closed=None, realized=0, unrealized=0):
    return conn.execute(text(
        "INSERT INTO portfolio_positions (portfolio_id, market_id, side, shares, avg_price, cost_basis, status, "
        "opened_at, closed_at, last_marked_at, realized_pnl, unrealized_pnl) VALUES (:pid, :m, :side, :shares, "
        ":price, :cost, :status, :opened, :closed, coalesce(:closed, :opened), :realized, :unrealized) "
        "RETURNING position_id"),
        dict(pid=pid, m=market, side=side, shares=shares, price=price, cost=cost, opened=opened, closed=closed,
             status="closed" if closed else "open", realized=realized, unrealized=unrealized)).scalar_one()


def _trade(conn, pid, pos, market, action, shares, price, amount, fee, at, evidence=None, slippage=None, pnl=None):
    conn.execute(text(
        "INSERT INTO trades (portfolio_id, position_id, market_id, side, action, shares, price, amount, fee, "
        "cash_delta, executed_at, evidence, slippage, realized_pnl) VALUES (:pid, :pos, :m, 'YES', :action, "
        ":shares, :price, :amount, :fee, 0, :at, :evidence, :slippage, :pnl)"),
        dict(pid=pid, pos=pos, m=market, action=action, shares=shares, price=price, amount=amount, fee=fee, at=at,
             evidence=evidence, slippage=slippage, pnl=pnl))


def test_report_metrics_from_the_ledger(engine):
    # Position A: 100 shares at 0.40 for $40 + $0.50 fee = $40.50, book fill, slippage $0.20;
    #   settled a winner 2 days later: outcome 1, realized 100 - 40.50 = 59.50.
    # Position B: 50 shares at 0.70, $35 + $0 fee, history fill, slippage $0.35; sold after 1 day for
    #   $30 with a $0.30 fee (book fill, slippage $0.15): realized 29.70 - 35 = -5.30; not settled, not scored.
    # Position C: 20 shares at 0.25, $5, history fill, slippage $0.05, open since day 1 with
    #   unrealized +$1; the ledger's latest time is A's settlement (day 2) -> held 1 day.
    # Brier: only A: (0.40 - 1)^2 = 0.36.
    # Capital-days: 40.5 x 2 + 35 x 1 + 5 x 1 = 121; P&L 59.5 - 5.3 + 1 = 55.2 -> 55.2 / 121.
    # Fills (buys and sales): notional 40.5 + 35 + 30 + 5 = 110.5; fees 0.5 + 0.3 = 0.8;
    #   slippage 0.2 + 0.35 + 0.15 + 0.05 = 0.75; 2 from a book, 2 from history.
    d1, d2 = T0 + timedelta(days=1), T0 + timedelta(days=2)
    with engine.begin() as conn:
        pid = _portfolio(conn)
        other = _portfolio(conn, "other")
        a = _position(conn, pid, "A", "YES", 100, 0.40, 40.50, T0, d2, realized=59.50)
        _trade(conn, pid, a, "A", "buy", 100, 0.40, 40.50, 0.50, T0, "depth", 0.20)
        _trade(conn, pid, a, "A", "settle", 100, 1, 100, 0, d2, pnl=59.50)
        b = _position(conn, pid, "B", "YES", 50, 0.70, 35, T0, d1, realized=-5.30)
        _trade(conn, pid, b, "B", "buy", 50, 0.70, 35, 0, T0, "history", 0.35)
        _trade(conn, pid, b, "B", "sell", 50, 0.60, 30, 0.30, d1, "top_of_book", 0.15, pnl=-5.30)
        c = _position(conn, pid, "C", "YES", 20, 0.25, 5, d1, unrealized=1)
        _trade(conn, pid, c, "C", "buy", 20, 0.25, 5, 0, d1, "history", 0.05)
        # another portfolio's trades never count
        o = _position(conn, other, "A", "YES", 10, 0.9, 9, T0, d2)
        _trade(conn, other, o, "A", "settle", 10, 0, 0, 0, d2)
    m = report_metrics(engine, pid)
    assert m["settled_entries"] == 1 and m["brier_score"] == pytest.approx(0.36)
    assert m["calibration"] == [{"bucket_low": 0.4, "bucket_high": 0.5, "count": 1, "mean_forecast": 0.4, "realized": 1.0}]
    assert m["capital_days"] == pytest.approx(121)
    assert m["return_per_capital_day"] == pytest.approx(55.2 / 121)
    assert m["traded_notional"] == pytest.approx(110.5)
    assert m["fees_paid"] == pytest.approx(0.8) and m["slippage_paid"] == pytest.approx(0.75)
    assert (m["fills_from_book"], m["fills_from_history"]) == (2, 2) and m["book_fill_share"] == 0.5


def test_backtest_metrics_of_an_empty_portfolio_are_undefined_not_errors():
    m = backtest_metrics([], [], [], T0)
    assert m["brier_score"] is None and m["return_per_capital_day"] is None and m["calibration"] == []


def test_report_json_and_text_carry_the_metrics(engine, capsys, tmp_path, monkeypatch):
    import json

    from prescient_pipeline.cli import main

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    # one history fill of $20 with $0.10 slippage, settled a loser: Brier (0.2 - 0)^2 = 0.04
    with engine.begin() as conn:
        pid = _portfolio(conn)
        a = _position(conn, pid, "A", "YES", 100, 0.20, 20, T0, T0 + timedelta(days=1), realized=-20)
        _trade(conn, pid, a, "A", "buy", 100, 0.20, 20, 0, T0, "history", 0.10)
        _trade(conn, pid, a, "A", "settle", 100, 0, 0, 0, T0 + timedelta(days=1), pnl=-20)
    assert main(["report", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)["backtest_metrics"][str(pid)]
    assert metrics["brier_score"] == pytest.approx(0.04) and metrics["history_fill_share"] == 1.0
    # P&L -20 over 20 x 1 capital-day: -100% per capital-day
    assert metrics["return_per_capital_day"] == pytest.approx(-1.0)
    assert main(["report", "--portfolio", str(pid)]) == 0
    out = capsys.readouterr().out
    assert "Brier score 0.0400" in out and "return per capital-day -100.0000%" in out
    assert "from history only 1" in out
