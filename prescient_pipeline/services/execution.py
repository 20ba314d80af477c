"""Execute a portfolio's pending signals: risk checks, fills, ledger rows.

Units (a lone signal, or every leg of a linked group) are handled in order under the portfolio's
row lock, one transaction per filled unit; the rejections before it share its transaction. A
unit re-reads its signals under the lock and skips any another run already handled, so
retries, concurrent runs and a crash between units can neither fill a signal twice nor leave
half a unit written. Partial unique indexes in the schema back this up.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import Engine, bindparam, func, select, update

from ..db.schema import markets, portfolio_positions, portfolios, trading_signals
from ..domain.accounting import PositionState, to_money
from ..domain.execution import ExecutionSettings, Fill, FillRejected
from ..domain.risk import Buy, check_group
from ..domain.strategies.registry import get_strategy
from .ledger import book_buy, lock_portfolio, market_clock, open_position_rows, portfolio_state, refresh_totals
from .signals import pending_signals

log = logging.getLogger(__name__)

MAX_SIGNAL_AGE = timedelta(hours=24)


@dataclass
class ExecutionReport:
    portfolio_id: int
    executed: int = 0
    rejected: int = 0
    skipped: int = 0  # already handled by another run
    spent: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    partial: int = 0  # fills that took less than their amount (the rest was cancelled)
    rejections: dict[str, int] = field(default_factory=dict)


def _units(signals: list[dict]) -> list[list[int]]:
    """Signal ids grouped into all-or-none units, in signal order."""
    units: OrderedDict[str, list[int]] = OrderedDict()
    for s in signals:
        key = s["group_id"] or f"single-{s['signal_id']}"
        units.setdefault(key, []).append(s["signal_id"])
    return list(units.values())


# Reads market states for a replay: (conn, market ids, time) -> {market id: state}.
StateReader = Callable[[object, list[str], datetime], dict[str, dict]]


def execute_portfolio(engine: Engine, portfolio_id: int, cycle_date: date | None = None,
                      market_exposure_cap: Decimal | None = None, *, at: datetime | None = None,
                      read_states: StateReader | None = None) -> ExecutionReport:
    """Fill a portfolio's pending signals. Live (the default): at the market clock, from the
    markets' current state; a live run leaves a backtest portfolio alone. A replay passes its
    simulated time `at` and `read_states`, the market states as known then."""
    report = ExecutionReport(portfolio_id)
    with engine.connect() as conn:
        if read_states is None and conn.execute(
                select(portfolios.c.mode).where(portfolios.c.portfolio_id == portfolio_id)).scalar() == "backtest":
            return report
        pending = pending_signals(conn, portfolio_id, cycle_date)
        market_ids = sorted({s["market_id"] for s in pending})
        if read_states is not None:
            states = read_states(conn, market_ids, at) if pending else {}
        else:
            # Read once per run, like the clock: only a refresh moves them, and a unit's
            # transaction does not lock market rows either.
            at = market_clock(conn) or datetime.now(timezone.utc)
            states = _market_states(conn, market_ids) if pending else {}
    units = _units(pending)
    while units:
        units = units[_execute_units(engine, portfolio_id, units, at, states, report, market_exposure_cap):]
    return report


# What tradability checks, fills (book, market rules, fee regime) and the first mark read.
_STATE_COLUMNS = [markets.c[c] for c in (
    "market_id", "closed", "accepting_orders", "yes_price", "no_price", "best_bid", "best_ask", "last_trade_price",
    "bids", "asks", "tick_size", "min_order_size", "fees_enabled", "fee_rate", "fee_exponent")]


def _market_states(conn, market_ids: list[str]) -> dict[str, dict]:
    rows = conn.execute(select(*_STATE_COLUMNS).where(markets.c.market_id.in_(market_ids)))
    return {r.market_id: dict(r._mapping) for r in rows}


def _all_portfolios_exposure(conn, market_ids: list[str]) -> dict[str, Decimal]:
    rows = conn.execute(
        select(portfolio_positions.c.market_id, func.sum(portfolio_positions.c.cost_basis))
        .join(portfolios, portfolios.c.portfolio_id == portfolio_positions.c.portfolio_id)
        .where(portfolio_positions.c.market_id.in_(market_ids), portfolio_positions.c.status == "open",
               portfolios.c.mode == "live")  # a backtest's positions are not live exposure
        .group_by(portfolio_positions.c.market_id)
    )
    return {m: v for m, v in rows}


def _reject(conn, signal_ids: list[int], reason: str) -> None:
    conn.execute(update(trading_signals).where(trading_signals.c.signal_id.in_(signal_ids))
                 .values(rejection_reason=reason))


# Built once: statements run for every signal are cheaper without rebuilding them each time.
_PENDING_LEGS = (
    select(trading_signals)
    .where(trading_signals.c.signal_id.in_(bindparam("ids", expanding=True)),
           trading_signals.c.executed.is_(False), trading_signals.c.rejection_reason.is_(None))
    .order_by(trading_signals.c.signal_id)
)
_MARK_EXECUTED = (
    update(trading_signals).where(trading_signals.c.signal_id == bindparam("signal"))
    .values(executed=True, executed_at=bindparam("at"), trade_id=bindparam("trade"))
)


def _why_not_tradable(market: dict | None) -> str | None:
    if market is None:
        return "market unknown"
    if market["closed"]:
        return "market closed"
    if market["accepting_orders"] is False:
        return "market not accepting orders"
    return None


def _execute_units(engine: Engine, portfolio_id: int, units: list[list[int]], at: datetime,
                   states: dict[str, dict], report: ExecutionReport, market_exposure_cap: Decimal | None) -> int:
    """Handle units in order, in one transaction under the portfolio's lock, up to and including
    the first that fills; returns how many were handled. A rejection changes neither cash nor
    positions, so the units after it see what they would see in a transaction of their own."""
    with engine.begin() as conn:
        portfolio = lock_portfolio(conn, portfolio_id)
        strategy = get_strategy(portfolio["strategy_type"])
        settings = ExecutionSettings.from_config(strategy.validate_config(portfolio["strategy_config"]))
        positions = None  # read when a unit first needs them
        for handled, unit in enumerate(units, start=1):
            legs = [dict(r._mapping) for r in conn.execute(_PENDING_LEGS, {"ids": unit})]
            if len(legs) != len(unit):
                report.skipped += len(unit)  # another run got here first
                continue
            market_ids = sorted({leg["market_id"] for leg in legs})
            reason = next((f"{leg['market_id']}: {r}" for leg in legs
                           if (r := _why_not_tradable(states.get(leg["market_id"])))), None)
            oldest = min(leg["as_of"] for leg in legs)
            if at - oldest > MAX_SIGNAL_AGE:
                # A replayed past day's signals show what the strategy would have done; they are
                # not filled at today's prices.
                reason = f"stale signal: as of {oldest.isoformat()}, market time {at.isoformat()}"
            fills: dict[int, Fill] = {}
            if reason is None:
                try:
                    fills = _fill_unit(settings, legs, states)
                except _LegRejected as rejected:
                    reason = str(rejected)
            if reason is None:
                if positions is None:
                    positions = [PositionState.from_row(p) for p in open_position_rows(conn, portfolio_id)]
                reason = check_group(
                    portfolio_state(portfolio), positions,
                    [Buy(leg["market_id"], leg["side"], to_money(leg["amount"])) for leg in legs],
                    allows_multiple_positions_per_market=strategy.allows_multiple_positions_per_market,
                    market_exposure_cap=market_exposure_cap,
                    all_portfolios_market_exposure=(_all_portfolios_exposure(conn, market_ids)
                                                    if market_exposure_cap else None),
                )
            if reason is not None:
                _reject(conn, unit, reason)
                report.rejected += len(unit)
                head, _, rest = reason.partition(": ")
                # Count by what went wrong, not by which leg or market it was.
                key = rest.split(":")[0] if rest and (reason.startswith("leg ") or head in market_ids) else head
                report.rejections[key] = report.rejections.get(key, 0) + len(unit)
                continue

            for leg in legs:
                fill = fills[leg["signal_id"]]
                trade_id = book_buy(conn, portfolio_id, signal=leg, fill=fill, at=at,
                                    price_seen=leg["price_seen"], market_state=states[leg["market_id"]])
                conn.execute(_MARK_EXECUTED, {"signal": leg["signal_id"], "at": at, "trade": trade_id})
                report.executed += 1
                report.spent += fill.cost
                report.fees += fill.fee
                report.partial += fill.partial
            # The stored totals move in the fills' own transaction: a crash between units leaves
            # them right for every unit committed.
            refresh_totals(conn, portfolio_id)
            return handled
        return len(units)


class _LegRejected(Exception):
    pass


def _fill_unit(settings: ExecutionSettings, legs: list[dict], states: dict[str, dict]) -> dict[int, Fill]:
    """Each leg's fill (FillRejected of any leg rejects the unit). A basket's legs buy equal
    shares: each leg's amount first says how many shares the book gives it, then every leg buys
    the smallest of those counts, so one share set pays $1 whichever leg wins."""
    def fill(leg: dict, max_shares=None) -> Fill:
        try:
            return settings.buy(leg["side"], states[leg["market_id"]], leg["amount"], leg["price_seen"], max_shares)
        except FillRejected as e:
            raise _LegRejected(f"{leg['market_id']}: {e}") from None

    fills = {leg["signal_id"]: fill(leg) for leg in legs}
    if len(legs) > 1 and legs[0]["group_id"] is not None:
        shares = min(f.shares for f in fills.values())
        fills = {leg["signal_id"]: fills[leg["signal_id"]] if fills[leg["signal_id"]].shares == shares
                 else fill(leg, shares) for leg in legs}
        if len({f.shares for f in fills.values()}) > 1:
            raise _LegRejected(f"basket legs cannot buy equal shares ({shares})")
    return fills
