"""Backtests: a portfolio in mode `backtest` replays past days from the stored market history.

Each day D, in order, brings the portfolio's ledger to the end of D with the services live
trading uses, at simulated times and with only what was known then (services/replay_universe):
1. every observation of a market it holds, from midnight up to the cycle time, and every
   recorded resolution time of one: marks, exits and settlement (services.prices, as a price
   update does);
2. at D's cycle time (the portfolio's `cycle_cron`, else the daily cycle's): signals from the
   universe as of then, filled at the prices known then (a book where that observation has one,
   else the history price plus the half-spread: evidence `history`) by services.execution;
3. every later observation of the day, as in 1;
4. one `portfolio_history` row dated D, and the balance check.
A replayed day is recorded in `backtest_days` and never replayed again, so replaying through a
day in any order of requests gives one ledger. Trades carry the simulated time.

Portfolios replaying the same day go through it together (`replay_all_through`): one universe
read, one mark pass per observation time for every holder of a market observed then. What a
portfolio's ledger becomes depends only on its own positions, so it is the same whether it is
replayed alone or beside others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
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
from .portfolios import NewPortfolio, create_portfolio, get_portfolio
from .prices import mark_portfolios_at
from .replay_universe import market_event_times, market_states_at, market_states_at_times, replay_universe_as_of
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


@dataclass
class Replays:
    """What a replay of several portfolios did: each portfolio's replayed days, in order, and
    the error that stopped any of them (the others went on)."""
    days: dict[int, list[DayResult]] = field(default_factory=dict)
    failures: dict[int, Exception] = field(default_factory=dict)


def replay_through(engine: Engine, portfolio_id: int, day: date, progress: Progress | None = None, *,
                   universes: dict[datetime, pd.DataFrame] | None = None) -> list[DayResult]:
    """Bring a backtest portfolio's ledger to the end of `day`: replay, in order, every day from
    its `backtest_from` through `day` not replayed yet (see the module docstring). Returns the
    days replayed by this call (none when `day` was already); raises what stopped it."""
    replays = replay_all_through(engine, [portfolio_id], day,
                                 None if progress is None else (lambda _pid, result: progress(result)),
                                 universes=universes)
    if portfolio_id in replays.failures:
        raise replays.failures[portfolio_id]
    return replays.days[portfolio_id]


def replay_all_through(engine: Engine, portfolio_ids, day: date,
                       progress: Callable[[int, DayResult], None] | None = None, *,
                       universes: dict[datetime, pd.DataFrame] | None = None) -> Replays:
    """`replay_through` for several backtest portfolios at once, day by day: the portfolios
    replaying a day share its universe read, and one mark pass per observation time serves all
    of them. Each portfolio's ledger is the one it gets replayed alone. A portfolio that fails
    (not a backtest, its data missing, its strategy raising) is reported in `failures` and
    left; the others go on. `universes` shares universe reads with other calls (keyed by the
    as-of time)."""
    ids = sorted(set(int(pid) for pid in portfolio_ids))
    replays = Replays(days={pid: [] for pid in ids})
    # One replay of a portfolio at a time (the CLI and Dagster runs of other days may overlap):
    # the second waits, then finds the days done. Taken in id order, so two callers never
    # wait on each other.
    with engine.connect() as lock:
        for pid in ids:
            lock.execute(text("SELECT pg_advisory_lock(hashtext('prescient.backtest'), :p)"), {"p": pid})
        lock.commit()
        try:
            todo = {}
            for pid in ids:
                try:
                    todo[pid] = _days_to_replay(engine, pid, day)
                except (InputError, ReplayInterrupted) as exc:
                    replays.failures[pid] = exc
            for d in sorted({d for days in todo.values() for d in days}):
                group = [pid for pid in todo if d in todo[pid] and pid not in replays.failures]
                # Without a caller's cache, the day's universe reads are kept for the day only.
                shared = universes if universes is not None else {}
                last = {pid for pid in group if todo[pid][-1] == d}
                for pid, outcome in _replay_day(engine, group, d, shared, last).items():
                    if isinstance(outcome, Exception):
                        replays.failures[pid] = outcome
                        continue
                    replays.days[pid].append(outcome)
                    if progress is not None:
                        progress(pid, outcome)
        finally:
            for pid in ids:
                lock.execute(text("SELECT pg_advisory_unlock(hashtext('prescient.backtest'), :p)"), {"p": pid})
            lock.commit()
    return replays


def replayed_days(engine: Engine, portfolio_id: int) -> list[dict]:
    """The `backtest_days` rows of a portfolio, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM backtest_days WHERE portfolio_id = :p ORDER BY day"),
                            {"p": portfolio_id}).mappings().all()
    return [dict(r) for r in rows]


def _days_to_replay(engine: Engine, portfolio_id: int, day: date) -> list[date]:
    """The portfolio's days from its `backtest_from` through `day` not replayed yet, in order."""
    portfolio = get_portfolio(engine, portfolio_id)
    if portfolio["mode"] != BACKTEST:
        raise InputError(f"portfolio {portfolio_id} is a live portfolio: only a backtest portfolio is replayed")
    start = portfolio["backtest_from"]
    if day < start:
        return []
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
    return todo


def _replay_day(engine: Engine, portfolio_ids: list[int], day: date, universes: dict[datetime, pd.DataFrame],
                last: set[int]) -> dict[int, DayResult | Exception]:
    """Replay `day` for these portfolios together: the walk up to each portfolio's cycle time,
    its signals and fills there, the walk to the day's end, and each one's history row (and,
    for those whose replay ends with `day`, their metrics). A portfolio whose step raises drops
    out of the day (its day stays unfinished)."""
    outcomes: dict[int, DayResult | Exception] = {}
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO backtest_days (portfolio_id, day) SELECT unnest(CAST(:p AS bigint[])), :d"),
                     {"p": portfolio_ids, "d": day})
    books = {pid: get_portfolio(engine, pid) for pid in portfolio_ids}
    start, end = day_bounds(day)
    cycles = {pid: cycle_time(books[pid], day) for pid in portfolio_ids}
    # The day cut at every cycle time: each piece is walked for every portfolio still going,
    # after the portfolios whose cycle time opens it have traded.
    cuts = sorted({start, *(at + TICK for at in cycles.values())} | {end})
    for piece_start, piece_end in zip(cuts, cuts[1:]):
        trading = [pid for pid in portfolio_ids if cycles[pid] + TICK == piece_start]
        for pid in trading:
            try:
                _trade(engine, pid, day, cycles[pid], universes)
            except Exception as exc:  # this portfolio's day ends here; the others go on
                outcomes[pid] = exc
        going = [pid for pid in portfolio_ids if pid not in outcomes]
        _walk(engine, going, piece_start, piece_end,
              fresh=set(going) if piece_start == start else set(trading))
    for pid in portfolio_ids:
        if pid in outcomes:
            continue
        try:
            snapshot = snapshot_portfolio(engine, pid, books[pid]["name"], day, end - TICK, with_metrics=pid in last)
            problems = unbalanced_portfolios(engine, pid)
            if problems:
                raise RuntimeError(f"books do not balance after replaying {day}: " + "; ".join(problems))
            outcomes[pid] = _record_day(engine, pid, day, snapshot.totals)
        except Exception as exc:
            outcomes[pid] = exc
    return outcomes


def _trade(engine: Engine, portfolio_id: int, day: date, as_of: datetime,
           universes: dict[datetime, pd.DataFrame]) -> None:
    """Signals from the universe as of the cycle time (read once per as-of time into
    `universes`), filled at the prices known then."""
    if as_of not in universes:
        universes[as_of] = with_derived(replay_universe_as_of(engine, as_of), as_of)
    generate_signals(engine, portfolio_id, day, as_of, universes[as_of])
    execute_portfolio(engine, portfolio_id, day, at=as_of, read_states=market_states_at)


def _walk(engine: Engine, portfolio_ids: list[int], start: datetime, end: datetime, fresh: set[int]) -> None:
    """Every observation in [start, end) of the markets these portfolios hold, in time order:
    at each, the holders of a market observed (or resolving) then are marked, exit and settle,
    all in one pass. A portfolio in `fresh` starts its walk here: a market it holds that
    resolved before `start` settles at once.

    One connection; a transaction per pass (one for the whole walk would make every pass
    re-read the growing chain of row versions the earlier passes left)."""
    with engine.connect() as conn:
        held = _held_markets(conn, portfolio_ids)
        # Holdings only shrink during a walk: what is held now covers every pass.
        markets = set().union(*held.values())
        events = market_event_times(conn, markets, start, end)
        overdue = events.pop(None, set())
        times = sorted(events.keys() | ({start} if overdue else set()))
        states_at = market_states_at_times(conn, markets, times)
        for at in times:
            observed = events.get(at, set())
            due = [pid for pid in sorted(held) if held[pid] & observed
                   or (at == start and pid in fresh and held[pid] & overdue)]
            if not due:
                continue
            wanted = set().union(*(held[pid] for pid in due))
            states = {m: state for m, state in states_at[at].items() if m in wanted}
            if states:
                report = mark_portfolios_at(conn, due, states, at)
                conn.commit()
                if report.exits or report.settlements:  # positions closed: holdings changed
                    held = _held_markets(conn, portfolio_ids)


def _held_markets(conn, portfolio_ids: list[int]) -> dict[int, set[str]]:
    """The markets of each portfolio's open positions (portfolios holding none left out)."""
    held: dict[int, set[str]] = {}
    for pid, market_id in conn.execute(text(
            "SELECT portfolio_id, market_id FROM portfolio_positions WHERE status = 'open' "
            "AND portfolio_id = ANY(:p)"), {"p": list(portfolio_ids)}):
        held.setdefault(pid, set()).add(market_id)
    return held


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
