"""Backtests: a portfolio in mode `backtest` replays past days from the stored market history.

Each day D, in order, brings the portfolio's ledger to the end of D with the services live
trading uses, at simulated times and with only what was known then (services/replay_universe):
1. every observation of its held markets from midnight up to the cycle time: marks, exits and
   settlement at the recorded resolution time (services.prices, as a price update does);
2. at D's cycle time (the portfolio's `cycle_cron`, else the daily cycle's): signals from the
   universe as of then, filled at the prices known then (a book where that observation has one,
   else the history price plus the half-spread: evidence `history`) by services.execution;
3. every later observation of the day, as in 1;
4. one `portfolio_history` row dated D, and the balance check.
A replayed day is recorded in `backtest_days` and never replayed again, so replaying through a
day in any order of requests gives one ledger. Trades carry the simulated time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import pandas as pd
from sqlalchemy import Engine, select, text

from ..db.schema import portfolio_history, portfolios
from ..domain.history_grid import day_bounds
from ..domain.market_frame import with_derived
from ..errors import InputError
from .execution import execute_portfolio
from .history import snapshot_portfolio
from .ledger import open_position_rows
from .portfolios import NewPortfolio, create_portfolio, get_portfolio
from .prices import mark_portfolios_at
from .replay_universe import market_states_at, observation_times, replay_universe_as_of
from .reports import unbalanced_portfolios
from .signals import cycle_time_of_day, generate_signals

BACKTEST = "backtest"
TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class DayResult:
    day: date
    total_value: Decimal
    pnl: Decimal  # the day's change in total value, net of transfers
    fills: int  # buys and exit sales filled that day
    fees: Decimal
    settlements: int
    exits: int

    def as_dict(self) -> dict:
        return {**asdict(self), "day": self.day.isoformat()}


Progress = Callable[[DayResult], None]


class ReplayInterrupted(RuntimeError):
    """A day's replay started and did not finish: replaying it again could book it twice."""


def days_between(day_from: date, day_to: date) -> list[date]:
    return [day_from + timedelta(days=n) for n in range((day_to - day_from).days + 1)]


def replayable_days(engine: Engine, day_from: date, day_to: date) -> set[date]:
    """Days of the window with market data to replay: a completed history import, or a live
    refresh on a day before the latest observation's."""
    with engine.connect() as conn:
        imported = set(conn.execute(text(
            "SELECT day FROM history_imports WHERE day BETWEEN :a AND :b AND completed_at IS NOT NULL"
        ), {"a": day_from, "b": day_to}).scalars())
        live = set(conn.execute(text(
            "SELECT DISTINCT (ts AT TIME ZONE 'UTC')::date FROM market_refreshes WHERE source = 'gamma' "
            "AND ts >= :start AND ts < :end AND (ts AT TIME ZONE 'UTC')::date < "
            "(SELECT (max(ts) AT TIME ZONE 'UTC')::date FROM market_snapshots)"
        ), {"start": day_bounds(day_from)[0], "end": day_bounds(day_to)[1]}).scalars())
    return imported | live


def _missing_history(engine: Engine, day_from: date, day_to: date) -> str | None:
    have = replayable_days(engine, day_from, day_to)
    missing = [d for d in days_between(day_from, day_to) if d not in have]
    if not missing:
        return None
    span = f"{missing[0]}" if len(missing) == 1 else f"{len(missing)} days from {missing[0]} to {missing[-1]}"
    return (f"no imported market history for {span}: run `prescient history import --from {missing[0]} "
            f"--to {missing[-1]}` first")


def _free_name(engine: Engine, base: str) -> str:
    with engine.connect() as conn:
        taken = set(conn.execute(select(portfolios.c.name).where(portfolios.c.name.like(base + "%"))).scalars())
    n = 1
    name = base
    while name in taken:
        n += 1
        name = f"{base} ({n})"
    return name


def create_backtest(engine: Engine, strategy: str, config, balance, day_from: date, day_to: date,
                    name: str | None = None) -> dict:
    """A new portfolio in mode `backtest` for replaying `day_from`..`day_to`; validated as
    `portfolio create` is, plus the window (InputError: one line, nothing written)."""
    if day_from > day_to:
        raise InputError(f"--from {day_from} is after --to {day_to}")
    new = NewPortfolio.parse(name=name or f"{strategy} backtest {day_from}..{day_to}", strategy=strategy,
                             balance=balance, config=config)
    missing = _missing_history(engine, day_from, day_to)
    if missing:
        raise InputError(missing)
    if name is None:
        new = NewPortfolio(**{**asdict(new), "name": _free_name(engine, new.name)})
    return create_portfolio(engine, new, mode=BACKTEST, backtest_from=day_from, backtest_to=day_to)


def cycle_time(portfolio: dict, day: date) -> datetime:
    """The portfolio's cycle time on `day`: its `cycle_cron`, else the daily cycle's."""
    cron = (portfolio.get("strategy_config") or {}).get("cycle_cron")
    return datetime.combine(day, cycle_time_of_day(cron))


def replay_through(engine: Engine, portfolio_id: int, day: date, progress: Progress | None = None, *,
                   universes: dict[datetime, pd.DataFrame] | None = None) -> list[DayResult]:
    """Bring a backtest portfolio's ledger to the end of `day`: replay, in order, every day from
    its `backtest_from` through `day` not replayed yet (see the module docstring). Returns the
    days replayed by this call (none when `day` was already). `universes` shares universe reads
    among portfolios replaying the same days (keyed by the as-of time)."""
    portfolio = get_portfolio(engine, portfolio_id)
    if portfolio["mode"] != BACKTEST:
        raise InputError(f"portfolio {portfolio_id} is a live portfolio: only a backtest portfolio is replayed")
    start = portfolio["backtest_from"]
    if day < start:
        return []
    # One replay of a portfolio at a time (the CLI and Dagster runs of other days may overlap):
    # the second waits, then finds the days done.
    with engine.connect() as lock:
        lock.execute(text("SELECT pg_advisory_lock(hashtext('prescient.backtest'), :p)"), {"p": portfolio_id})
        lock.commit()
        try:
            return _replay_days(engine, portfolio_id, start, day, progress, universes)
        finally:
            lock.execute(text("SELECT pg_advisory_unlock(hashtext('prescient.backtest'), :p)"), {"p": portfolio_id})
            lock.commit()


def replayed_days(engine: Engine, portfolio_id: int) -> list[dict]:
    """The `backtest_days` rows of a portfolio, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM backtest_days WHERE portfolio_id = :p ORDER BY day"),
                            {"p": portfolio_id}).mappings().all()
    return [dict(r) for r in rows]


def _replay_days(engine, portfolio_id, start, day, progress, universes) -> list[DayResult]:
    rows = replayed_days(engine, portfolio_id)
    unfinished = [r["day"] for r in rows if r["replayed_at"] is None]
    if unfinished:
        raise ReplayInterrupted(f"portfolio {portfolio_id}: the replay of {unfinished[0]} was interrupted; "
                                "its ledger may hold part of that day, so it is not replayed again "
                                "(run the backtest again as a new portfolio)")
    done = {r["day"] for r in rows}
    todo = [d for d in days_between(start, day) if d not in done]
    # A day without its market data would be recorded as replayed, empty, for good.
    missing = _missing_history(engine, todo[0], todo[-1]) if todo else None
    if missing:
        raise InputError(f"portfolio {portfolio_id}: {missing}")
    results = []
    for d in todo:
        result = _replay_day(engine, portfolio_id, d, universes)
        results.append(result)
        if progress is not None:
            progress(result)
    return results


def _replay_day(engine: Engine, portfolio_id: int, day: date,
                universes: dict[datetime, pd.DataFrame] | None) -> DayResult:
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO backtest_days (portfolio_id, day) VALUES (:p, :d)"),
                     {"p": portfolio_id, "d": day})
    portfolio = get_portfolio(engine, portfolio_id)
    start, end = day_bounds(day)
    as_of = cycle_time(portfolio, day)

    _walk(engine, portfolio_id, start, as_of + TICK)
    if universes is None or as_of not in universes:
        universe = with_derived(replay_universe_as_of(engine, as_of), as_of)
        if universes is not None:
            universes[as_of] = universe
    else:
        universe = universes[as_of]
    generate_signals(engine, portfolio_id, day, as_of, universe)
    execute_portfolio(engine, portfolio_id, day, at=as_of, read_states=market_states_at)
    _walk(engine, portfolio_id, as_of + TICK, end)

    snapshot = snapshot_portfolio(engine, portfolio_id, portfolio["name"], day, end - TICK)
    problems = unbalanced_portfolios(engine, portfolio_id)
    if problems:
        raise RuntimeError(f"books do not balance after replaying {day}: " + "; ".join(problems))
    return _record_day(engine, portfolio_id, day, snapshot.totals)


def _walk(engine: Engine, portfolio_id: int, start: datetime, end: datetime) -> None:
    """Every observation in [start, end) of the markets the portfolio holds, in time order:
    marks, exits and settlements at each."""
    with engine.connect() as conn:
        held = sorted({p["market_id"] for p in open_position_rows(conn, portfolio_id)})
        times = observation_times(conn, held, start, end)
    for at in times:
        with engine.connect() as conn:
            held = sorted({p["market_id"] for p in open_position_rows(conn, portfolio_id)})
            if not held:
                return
            states = market_states_at(conn, held, at)
        if states:
            mark_portfolios_at(engine, [portfolio_id], states, at)


def _record_day(engine: Engine, portfolio_id: int, day: date, totals) -> DayResult:
    start, end = day_bounds(day)
    with engine.begin() as conn:
        fills, fees, settlements, exits = conn.execute(text(
            "SELECT count(*) FILTER (WHERE action IN ('buy', 'sell')), coalesce(sum(fee), 0), "
            "count(*) FILTER (WHERE action = 'settle'), count(*) FILTER (WHERE action = 'sell') "
            "FROM trades WHERE portfolio_id = :p AND executed_at >= :start AND executed_at < :end"
        ), {"p": portfolio_id, "start": start, "end": end}).one()
        previous = conn.execute(
            select(portfolio_history.c.total_value, portfolio_history.c.net_transfers)
            .where(portfolio_history.c.portfolio_id == portfolio_id, portfolio_history.c.snapshot_date < day)
            .order_by(portfolio_history.c.snapshot_date.desc()).limit(1)
        ).first()
        prev_value, prev_transfers = previous if previous else (totals.initial_balance, Decimal(0))
        pnl = (totals.total_value - totals.net_transfers) - (prev_value - prev_transfers)
        result = DayResult(day, totals.total_value, pnl, fills, Decimal(fees), settlements, exits)
        conn.execute(text(
            "UPDATE backtest_days SET replayed_at = now(), total_value = :tv, pnl = :pnl, fills = :fills, "
            "fees = :fees, settlements = :settlements, exits = :exits WHERE portfolio_id = :p AND day = :d"
        ), {"tv": result.total_value, "pnl": pnl, "fills": fills, "fees": result.fees,
            "settlements": settlements, "exits": exits, "p": portfolio_id, "d": day})
    return result
