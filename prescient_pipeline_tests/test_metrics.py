import math
import statistics
from datetime import date, timedelta
from decimal import Decimal as D

import pandas as pd
import pytest

from prescient_pipeline.db import schema
from prescient_pipeline.domain.metrics import (
    cagr,
    calmar,
    daily_returns,
    max_drawdown,
    performance,
    period_returns,
    sharpe,
    signal_execution_rate,
    sortino,
    trade_metrics,
)

START = date(2025, 1, 1)
VALUES = [1010, 1000, 1030, 1020, 990, 1005, 1040, 1035, 1050, 1045]


def series(values, start=START):
    return pd.Series(values, index=[start + timedelta(days=i) for i in range(len(values))])


def loop_returns(values, initial):
    previous, out = initial, []
    for value in values:
        out.append(value / previous - 1)
        previous = value
    return out


def test_sharpe_and_sortino_on_a_tiny_series_by_hand():
    r = pd.Series([0.01, -0.02, 0.03])
    # mean = 0.02/3; deviations 1/300, -8/300, 7/300 -> sum of squares 114/90000, /(3-1) = 57/90000
    # std = sqrt(57)/300; Sharpe = (2/300) / (sqrt(57)/300) * sqrt(365) = 2 * sqrt(365/57)
    assert sharpe(r) == pytest.approx(2 * math.sqrt(365 / 57))
    assert sharpe(r) == pytest.approx(5.0611, abs=1e-4)
    # downside = sqrt(0.02^2 / 3) = 0.02/sqrt(3); Sortino = (0.02/3) / (0.02/sqrt(3)) * sqrt(365)
    #          = sqrt(365/3)
    assert sortino(r) == pytest.approx(math.sqrt(365 / 3))
    assert sortino(r) == pytest.approx(11.0303, abs=1e-4)


def test_ratios_match_an_independent_computation_on_a_value_series():
    r = loop_returns(VALUES, 1000)
    returns = daily_returns(series(VALUES), 1000)
    assert list(returns) == pytest.approx(r)
    assert returns.iloc[0] == pytest.approx(0.01)  # the first day is against the initial balance

    assert sharpe(returns) == pytest.approx(statistics.mean(r) / statistics.stdev(r) * math.sqrt(365))
    downside = math.sqrt(sum(x * x for x in r if x < 0) / len(r))
    assert sortino(returns) == pytest.approx(statistics.mean(r) / downside * math.sqrt(365))


def test_max_drawdown_uses_the_initial_balance_as_the_first_peak():
    peak, worst = 1000, 0.0
    for value in VALUES:
        peak = max(peak, value)
        worst = min(worst, value / peak - 1)
    # Peak 1030 then 990: 990/1030 - 1 = -0.0388349...
    assert worst == pytest.approx(990 / 1030 - 1)
    assert max_drawdown(series(VALUES), 1000) == pytest.approx(worst)
    # A loss on day one counts against the initial balance: 950/1000 - 1 = -5%.
    assert max_drawdown(series([950, 1100]), 1000) == pytest.approx(-0.05)
    assert max_drawdown(series([1001, 1002]), 1000) == 0.0


def test_cagr_and_calmar():
    # (1045/1000) ^ (365/10) - 1
    assert cagr(1000, 1045, 10) == pytest.approx(1.045**36.5 - 1)
    # (1100/1000) ^ (365/365) - 1 = 10% over a year
    assert cagr(D("1000"), D("1100"), 365) == pytest.approx(0.10)
    assert math.isnan(cagr(1000, 1100, 0))
    assert calmar(0.10, -0.05) == pytest.approx(2.0)
    assert math.isnan(calmar(0.10, 0.0))


def test_period_returns_look_back_calendar_days_from_the_last_snapshot():
    result = period_returns(daily_returns(series(VALUES), 1000))
    assert result["return_1d"] == pytest.approx(1045 / 1050 - 1)
    # Last day is Jan 10; seven days earlier is Jan 3, valued 1030.
    assert result["return_7d"] == pytest.approx(1045 / 1030 - 1)
    assert math.isnan(result["return_30d"])  # only 10 days of history
    assert result["return_all_time"] == pytest.approx(0.045)
    # With exactly 7 days, the 7-day window starts at the initial balance.
    assert period_returns(daily_returns(series(VALUES[:7]), 1000))["return_7d"] == pytest.approx(0.04)


def test_returns_exclude_transfers():
    # Day 2: 500 deposited, value 1600 -> (1600 - 500) / 1000 - 1 = 10%; day 3: 1650/1600 - 1.
    transfers = series([0, 500, 0])
    returns = daily_returns(series([1000, 1600, 1650]), 1000, transfers)
    assert list(returns) == pytest.approx([0.0, 0.10, 1650 / 1600 - 1])
    # A 500 withdrawal is not a drawdown: (600 + 500) / 1100 - 1 = 0.
    assert max_drawdown(series([1100, 600, 610]), 1000, series([0, -500, 0])) == 0.0
    # A transfer on a day without a snapshot counts on the next snapshot day.
    gappy = pd.Series([1000, 1600], index=[date(2025, 1, 1), date(2025, 1, 3)])
    flows = pd.Series([500], index=[date(2025, 1, 2)])
    assert list(daily_returns(gappy, 1000, flows)) == pytest.approx([0.0, 0.10])


def test_undefined_metrics_are_nan_and_never_raise():
    assert math.isnan(sharpe([0.01]))
    assert math.isnan(sharpe([]))
    assert math.isnan(sharpe([0.01, 0.01, 0.01]))  # zero deviation
    assert math.isnan(sortino([0.01, 0.02]))  # nothing below zero
    assert math.isnan(max_drawdown(pd.Series(dtype=float), 1000))
    # A portfolio worth nothing has no return the next day.
    assert math.isnan(daily_returns(series([0, 10]), 1000).iloc[1])


PNLS = [10, 20, -5, 0, 15, -5, -10, -1, 30]


def test_trade_metrics_over_round_trips():
    m = trade_metrics(PNLS)
    # wins 10, 20, 15, 30 (sum 75); losses -5, -5, -10, -1 (sum -21); one break-even; 9 trades
    assert m["round_trips"] == 9
    assert m["win_rate"] == pytest.approx(4 / 9)
    assert m["profit_factor"] == pytest.approx(75 / 21)
    assert m["avg_win"] == pytest.approx(18.75)
    assert m["avg_loss"] == pytest.approx(-5.25)
    # expectancy = 4/9 * 18.75 - 4/9 * 5.25 = (75 - 21) / 9 = 6, the average P&L
    assert m["expectancy"] == pytest.approx(6.0)
    assert m["avg_trade_pnl"] == pytest.approx(54 / 9)
    # runs: W W L 0 W L L L W -> 2 wins in a row, 3 losses in a row
    assert (m["max_consecutive_wins"], m["max_consecutive_losses"]) == (2, 3)


def test_trade_metrics_edge_cases():
    only_wins = trade_metrics([D("1.5"), D("2")])
    assert math.isnan(only_wins["profit_factor"])  # no losses: unbounded, reported as undefined
    assert math.isnan(only_wins["avg_loss"])
    assert only_wins["win_rate"] == 1.0
    assert trade_metrics([-1, -2])["profit_factor"] == 0.0
    none = trade_metrics([])
    assert none["round_trips"] == 0 and math.isnan(none["win_rate"]) and math.isnan(none["expectancy"])
    assert signal_execution_rate(4, 3) == 0.75
    assert math.isnan(signal_execution_rate(0, 0))


def history(values, net_transfers=None):
    return pd.DataFrame(
        {
            "snapshot_date": [START + timedelta(days=i) for i in range(len(values))],
            "total_value": [D(str(v)) for v in values],
            "net_transfers": [D(str(t)) for t in (net_transfers or [0] * len(values))],
        }
    )


CACHE_METRICS = {c.name for c in schema.portfolio_performance_cache.columns} - {
    "portfolio_id",
    "calculated_at",
}


def test_performance_row_matches_the_cache_table_and_the_parts():
    round_trips = pd.DataFrame(
        {"realized_pnl": [D(p) for p in reversed(PNLS)], "closed_at": list(range(9, 0, -1))}
    )  # rows newest first: ordered by closed_at they are PNLS again
    row = performance(history(VALUES), round_trips, 20, 15, D("1000"))
    assert set(row) == CACHE_METRICS
    r = loop_returns(VALUES, 1000)
    assert row["days"] == 10
    assert row["sharpe_ratio"] == pytest.approx(statistics.mean(r) / statistics.stdev(r) * math.sqrt(365))
    assert row["max_drawdown"] == pytest.approx(990 / 1030 - 1)
    assert row["cagr"] == pytest.approx(1.045**36.5 - 1)
    assert row["calmar_ratio"] == pytest.approx((1.045**36.5 - 1) / (1 - 990 / 1030))
    assert row["return_all_time"] == pytest.approx(0.045)
    assert row["return_30d"] is None
    assert row["round_trips"] == 9
    assert (row["max_consecutive_wins"], row["max_consecutive_losses"]) == (2, 3)
    assert row["signal_execution_rate"] == 0.75


def test_performance_takes_transfers_from_the_cumulative_column():
    # Cumulative 0, 500, 500 -> flows 0, +500, 0; returns 0, 10%, 1650/1600 - 1.
    row = performance(history([1000, 1600, 1650], [0, 500, 500]), [], 0, 0, 1000)
    assert row["return_all_time"] == pytest.approx(1.10 * 1650 / 1600 - 1)
    assert row["max_drawdown"] == 0.0
    assert row["calmar_ratio"] is None


def test_performance_of_a_new_portfolio_is_mostly_undefined():
    row = performance(history([]), [], 0, 0, 1000)
    assert set(row) == CACHE_METRICS
    assert row["days"] == 0 and row["round_trips"] == 0
    counts = {"days", "round_trips", "max_consecutive_wins", "max_consecutive_losses"}
    assert all(row[k] is None for k in CACHE_METRICS - counts)


def test_performance_drops_ratios_too_large_to_mean_anything():
    # One day at +50%: CAGR = 1.5^365 - 1, about 1e64; Calmar is undefined without a drawdown.
    row = performance(history([1500]), [], 0, 0, 1000)
    assert row["cagr"] is None
    assert row["return_all_time"] == pytest.approx(0.5)
    assert row["max_drawdown"] == 0.0
