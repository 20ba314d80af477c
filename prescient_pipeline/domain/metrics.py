"""Performance metrics of a portfolio, matching quantstats on daily returns (365 periods, rf = 0).

Inputs are the daily snapshots (`portfolio_history`: one total value per day) and the closed
round trips (positions sold or settled, with their realized P&L).

Returns exclude capital transfers: a deposit is not a gain and a withdrawal is not a loss.
With `F_t` the net amount transferred in on day t (taken to arrive at the start of the day)
and the initial balance standing in for the value before the first day,

    r_t = (V_t - F_t) / V_{t-1} - 1.

Ratios and drawdown are computed on these returns, so with no transfers they equal the plain
`V_t / V_{t-1} - 1` figures and the drawdown of the value series with the initial balance as
its first peak.

Every metric is NaN when undefined (fewer than two returns, zero deviation, no losses, ...) and
never raises; `performance` turns NaN into None for the `portfolio_performance_cache` row.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

PERIODS_PER_YEAR = 365
NAN = float("nan")
PERIOD_RETURN_DAYS = {"return_1d": 1, "return_7d": 7, "return_30d": 30}
# Largest magnitude `performance` reports (the cache's NUMERIC(18, 8) ratio columns).
RATIO_LIMIT = 1e10


def _floats(values: Any) -> pd.Series:
    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    return series.astype(float)


def _by_date(series: pd.Series) -> pd.Series:
    series = _floats(series)
    series.index = pd.to_datetime(series.index)
    return series.sort_index()


def daily_returns(values: pd.Series, initial_balance: Any, transfers: pd.Series | None = None) -> pd.Series:
    """Daily returns of a total-value series indexed by date, net of transfer flows.

    `transfers` holds net amounts transferred in (negative: out), indexed by date; a flow on a
    day without a snapshot counts on the next snapshot day. A return after a day valued at zero
    or less is undefined (NaN).
    """
    values = _by_date(values)
    if values.empty:
        return pd.Series(dtype=float, name="daily_return")
    flows = pd.Series(0.0, index=values.index)
    if transfers is not None and len(transfers):
        transfers = _by_date(transfers)
        position = values.index.searchsorted(transfers.index, side="left")
        inside = position < len(values)
        moved = pd.Series(transfers.to_numpy()[inside], index=values.index[position[inside]])
        flows = flows.add(moved.groupby(level=0).sum(), fill_value=0.0)
    previous = values.shift(1)
    previous.iloc[0] = float(initial_balance)
    returns = (values - flows) / previous.where(previous > 0) - 1
    return returns.rename("daily_return")


def _clean(returns: Any) -> pd.Series:
    return _floats(returns).replace([np.inf, -np.inf], np.nan).dropna()


def sharpe(returns: Any, periods: int = PERIODS_PER_YEAR) -> float:
    """mean / std(ddof=1) * sqrt(periods); NaN with fewer than two returns or zero deviation."""
    r = _clean(returns)
    if len(r) < 2:
        return NAN
    std = r.std(ddof=1)
    if not std > 1e-15:
        return NAN
    return float(r.mean() / std * math.sqrt(periods))


def sortino(returns: Any, periods: int = PERIODS_PER_YEAR) -> float:
    """mean / sqrt(sum(min(r, 0)^2) / N) * sqrt(periods): downside over all N returns, as in
    quantstats. NaN with fewer than two returns or no negative return."""
    r = _clean(returns)
    if len(r) < 2:
        return NAN
    downside = math.sqrt(float((r.clip(upper=0.0) ** 2).sum()) / len(r))
    if not downside > 0:
        return NAN
    return float(r.mean() / downside * math.sqrt(periods))


def wealth_index(returns: Any) -> pd.Series:
    """Growth of $1 compounded over the returns (an undefined return counts as 0)."""
    return (1 + _floats(returns).fillna(0.0)).cumprod()


def max_drawdown(values: pd.Series, initial_balance: Any, transfers: pd.Series | None = None) -> float:
    """Worst fall from a running peak, as a negative fraction (0.0 when never under water).

    The initial balance is the first peak, so a loss on the first day counts. Computed on
    transfer-free returns, so a withdrawal is not a drawdown. NaN for an empty series.
    """
    returns = daily_returns(values, initial_balance, transfers)
    if returns.empty:
        return NAN
    return float(min(0.0, drawdown_series(returns).min()))


def drawdown_series(returns: pd.Series) -> pd.Series:
    """Each day's fall from the running peak of wealth (<= 0), with the start (wealth 1) as the
    first peak: the series whose minimum is `max_drawdown`."""
    wealth = wealth_index(returns)
    peak = np.maximum.accumulate(np.concatenate([[1.0], wealth.to_numpy()]))[1:]
    return (wealth / peak - 1).rename("drawdown")


def cagr(start_value: Any, end_value: Any, days: int, periods: int = PERIODS_PER_YEAR) -> float:
    """(end / start) ^ (periods / days) - 1; NaN when days < 1 or the ratio is negative."""
    start_value, end_value = float(start_value), float(end_value)
    if days < 1 or not start_value > 0 or end_value < 0:
        return NAN
    return float((end_value / start_value) ** (periods / days) - 1)


def calmar(cagr_value: float, max_drawdown_value: float) -> float:
    """CAGR / |max drawdown|; NaN when there was no drawdown."""
    if _undefined(cagr_value) or _undefined(max_drawdown_value) or max_drawdown_value == 0:
        return NAN
    return float(cagr_value / abs(max_drawdown_value))


def period_returns(returns: pd.Series) -> dict[str, float]:
    """Compounded returns over the last 1, 7 and 30 calendar days and since the start.

    The day before the first return is the baseline (the initial balance). A window reaching
    back before it is NaN: a 3-day-old portfolio has no 7-day return.
    """
    returns = _by_date(returns)
    if returns.empty:
        return {**{k: NAN for k in PERIOD_RETURN_DAYS}, "return_all_time": NAN}
    baseline = returns.index[0] - pd.Timedelta(days=1)
    wealth = pd.concat([pd.Series([1.0], index=[baseline]), wealth_index(returns)])
    latest_day, latest = wealth.index[-1], wealth.iloc[-1]
    result = {}
    for key, days in PERIOD_RETURN_DAYS.items():
        start = latest_day - pd.Timedelta(days=days)
        result[key] = NAN if start < baseline else float(latest / wealth.asof(start) - 1)
    result["return_all_time"] = float(latest - 1)
    return result


def _streaks(pnls: Sequence[float]) -> tuple[int, int]:
    """Longest runs of winning and of losing trades; a break-even trade ends both runs."""
    best_win = best_loss = win = loss = 0
    for pnl in pnls:
        win = win + 1 if pnl > 0 else 0
        loss = loss + 1 if pnl < 0 else 0
        best_win, best_loss = max(best_win, win), max(best_loss, loss)
    return best_win, best_loss


def trade_metrics(pnls: Iterable[Any]) -> dict[str, Any]:
    """Metrics of closed round trips (sales and settlements), given their realized P&L in the
    order they closed.

    win_rate = wins / all trades (break-even trades count in the total, as in pyfolio).
    profit_factor = sum of wins / |sum of losses|; NaN when there are no losses (unbounded, and
    a NUMERIC column cannot hold infinity), 0.0 with losses but no wins.
    expectancy = win_rate * avg_win + loss_rate * avg_loss (Freqtrade's formula, with avg_loss
    negative): dollars expected per trade, which works out to the average P&L.
    avg_win / avg_loss: mean P&L of winning / losing trades (avg_loss is negative).
    """
    values = [float(p) for p in pnls]
    n = len(values)
    wins = [p for p in values if p > 0]
    losses = [p for p in values if p < 0]
    max_wins, max_losses = _streaks(values)
    avg_win = sum(wins) / len(wins) if wins else NAN
    avg_loss = sum(losses) / len(losses) if losses else NAN
    if n:
        win_rate, loss_rate = len(wins) / n, len(losses) / n
        expectancy = win_rate * (avg_win if wins else 0.0) + loss_rate * (avg_loss if losses else 0.0)
    else:
        win_rate = expectancy = NAN
    return {
        "round_trips": n,
        "win_rate": win_rate,
        "profit_factor": sum(wins) / abs(sum(losses)) if losses else NAN,
        "expectancy": expectancy,
        "avg_trade_pnl": sum(values) / n if n else NAN,
        "avg_win": avg_win,
        "avg_loss": avg_loss,
        "max_consecutive_wins": max_wins,
        "max_consecutive_losses": max_losses,
    }


def signal_execution_rate(signals_total: int, signals_executed: int) -> float:
    return signals_executed / signals_total if signals_total else NAN


def _undefined(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _storable(value: Any) -> bool:
    """Defined, finite and within the ratio columns' range. A CAGR extrapolated from a day or
    two can reach 1e60: meaningless, and more than NUMERIC(18, 8) holds."""
    return not _undefined(value) and (not isinstance(value, float) or abs(value) < RATIO_LIMIT)


def _round_trip_pnls(round_trips: Any) -> list:
    if isinstance(round_trips, pd.DataFrame):
        if "closed_at" in round_trips.columns:
            round_trips = round_trips.sort_values("closed_at", kind="stable")
        return list(round_trips["realized_pnl"])
    return list(round_trips)


def _history_series(history_frame: pd.DataFrame) -> tuple[pd.Series, pd.Series | None]:
    """Total values by date and the day's net transfer flows, from `portfolio_history` rows."""
    frame = history_frame
    if "snapshot_date" in frame.columns:
        frame = frame.set_index("snapshot_date")
    values = frame["total_value"] if len(frame) else pd.Series(dtype=float)
    transfers = None
    if "net_transfers" in frame.columns and len(frame):
        cumulative = _by_date(frame["net_transfers"].fillna(0))
        transfers = cumulative.diff()
        transfers.iloc[0] = cumulative.iloc[0]
    return values, transfers


def history_returns(history_frame: pd.DataFrame, initial_balance: Any) -> pd.Series:
    """The daily returns `performance` computes its ratios from, indexed by snapshot date."""
    values, transfers = _history_series(history_frame)
    return daily_returns(values, initial_balance, transfers)


def performance(
    history_frame: pd.DataFrame,
    round_trips: Any,
    signals_total: int,
    signals_executed: int,
    initial_balance: Any,
) -> dict[str, Any]:
    """Every metric, keyed like `portfolio_performance_cache` columns (undefined or beyond
    RATIO_LIMIT -> None).

    `history_frame`: `portfolio_history` rows with snapshot_date (or a date index), total_value
    and optionally net_transfers (cumulative, as stored; zero before the first day).
    `round_trips`: a frame with realized_pnl (ordered by closed_at when present) or the P&L
    values in closing order.
    """
    values, transfers = _history_series(history_frame)
    returns = daily_returns(values, initial_balance, transfers)
    days = len(returns)

    drawdown = max_drawdown(values, initial_balance, transfers) if days else NAN
    growth = float(wealth_index(returns).iloc[-1]) if days else NAN
    cagr_value = cagr(1.0, growth, days) if days else NAN
    result: dict[str, Any] = {
        "days": days,
        "sharpe_ratio": sharpe(returns),
        "sortino_ratio": sortino(returns),
        "max_drawdown": drawdown,
        "cagr": cagr_value,
        "calmar_ratio": calmar(cagr_value, drawdown),
        **trade_metrics(_round_trip_pnls(round_trips)),
        "signal_execution_rate": signal_execution_rate(signals_total, signals_executed),
        **period_returns(returns),
    }
    return {k: v if _storable(v) else None for k, v in result.items()}


__all__ = [
    "PERIODS_PER_YEAR",
    "daily_returns",
    "sharpe",
    "sortino",
    "wealth_index",
    "max_drawdown",
    "drawdown_series",
    "history_returns",
    "cagr",
    "calmar",
    "period_returns",
    "trade_metrics",
    "signal_execution_rate",
    "performance",
]
