"""The price update: fetch held markets in batches, snapshot them, then per portfolio mark,
exit and settle.

Books come from the CLOB's batch endpoint (one request per chunk of tokens, never one per
position). Gamma, the one place that says a market closed and how it resolved, is asked in
batches too: about every held market whose last Gamma read is an hour old, whatever its book
says, and about any whose book is missing or whose end date has passed (see
`resolution_checks`). A held market neither answers for is flagged missing.

Portfolios are updated in chunks, one transaction per chunk with the chunk's portfolio rows
locked (in id order, as every multi-portfolio lock is taken): each portfolio is still updated
within a single transaction, so it is never half-updated, while its marks and totals are
written with one statement per chunk rather than one per position.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import Engine, and_, exists, or_, select, text

from ..db.history_partitions import ensure_partitions
from ..db.schema import portfolio_positions, portfolios
from ..domain.accounting import ZERO, PositionState, mark, to_money, to_price
from ..domain.execution import ExecutionSettings, FillRejected, OutcomeBook
from ..domain.exits import exit_decision
from ..domain.settlement import (
    MARKET_MISSING,
    NO_WINNER,
    OPEN,
    RESOLUTION_DISPUTED,
    RESOLUTION_PROPOSED,
    RESOLVED_BUT_OPEN,
    NotSettled,
    Settlement,
    payout_per_share,
    settle_position,
    settlement_for,
)
from ..domain.strategies.registry import get_strategy
from ..polymarket.client import PolymarketClient
from ..polymarket.parser import parse_markets
from .books import book_row
from .ledger import Close, book_closes, derived_totals, liquidation_value, mark_price_of, write_derived_totals
from .market_store import write_market_updates
from .resolution_checks import gamma_due, write_resolution_checks

log = logging.getLogger(__name__)

# Portfolios updated per transaction: big enough that statements, not positions, set the pace;
# small enough that execution never waits long for a portfolio lock.
PORTFOLIOS_PER_TRANSACTION = 50

# Flags worth showing a user: the market looks resolved but must not be settled yet.
WATCH_FLAGS = {"resolved_but_open", "resolution_proposed", "resolution_disputed", "no_winner",
               "not_final_prices", "malformed_prices", "missing_prices", "not_binary", MARKET_MISSING}
# A resolution is under way (or the market is gone): exits wait for the settlement, so a stop
# loss never sells a position Gamma says has won.
EXITS_WAIT = {RESOLVED_BUT_OPEN, RESOLUTION_PROPOSED, RESOLUTION_DISPUTED, MARKET_MISSING}


@dataclass
class PortfolioUpdate:
    portfolio_id: int
    name: str
    total_value: Decimal
    cash: Decimal
    positions_value: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    open_positions: int


@dataclass
class PriceUpdateReport:
    observed_at: datetime
    markets_held: int = 0
    books: int = 0
    gamma_markets: int = 0
    gamma_asked: int = 0  # held markets Gamma was asked about
    unpriced: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # held markets neither Gamma nor the CLOB knows
    marked: int = 0
    exits: Counter = field(default_factory=Counter)
    settlements: Counter = field(default_factory=Counter)
    flags: Counter = field(default_factory=Counter)
    portfolios: list[PortfolioUpdate] = field(default_factory=list)
    superseded: list[int] = field(default_factory=list)  # already marked by a later observation
    seconds: dict[str, float] = field(default_factory=dict)  # fetch, write_markets, portfolios


# What settlement, marks and exit sales read of a market.
_STATE_COLUMNS = ("closed", "outcome_prices", "uma_resolution_status", "yes_price", "no_price", "best_bid", "best_ask",
                  "last_trade_price", "bids", "asks", "tick_size", "fees_enabled", "fee_rate", "fee_exponent")


def _held_markets(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(text(
            f"""
            SELECT m.market_id, m.yes_token_id, m.end_date, {', '.join(f'm.{c}' for c in _STATE_COLUMNS)},
                   c.gamma_checked_at, c.missing_since
            FROM markets m LEFT JOIN market_resolution_checks c ON c.market_id = m.market_id
            WHERE m.market_id IN (SELECT DISTINCT pp.market_id FROM portfolio_positions pp
                                  JOIN portfolios p ON p.portfolio_id = pp.portfolio_id
                                  WHERE pp.status = 'open' AND p.mode = 'live')
            """
        ))
        return [dict(r._mapping) for r in rows]


@dataclass
class MarketUpdates:
    """What one price update learned about the held markets."""

    clob_rows: list[dict]  # books of markets Gamma was not asked about (or said nothing of)
    gamma_rows: list[dict]  # Gamma's markets; an open one carries its book's prices when it has one
    unpriced: list[str]  # no price from either
    gamma_asked: list[str]  # every market Gamma was asked about
    missing: list[str]  # known to neither Gamma nor the CLOB
    observed_at: datetime


def fetch_market_updates(client: PolymarketClient, held: list[dict]) -> MarketUpdates:
    tokens = {m["yes_token_id"]: m["market_id"] for m in held if m["yes_token_id"]}
    books = client.fetch_books(list(tokens)) if tokens else {}
    # Due dates by the server's clock as the books were read (the simulator's own, offline).
    now = client.observed_at or datetime.now(timezone.utc)
    by_book = {m["market_id"]: row for m in held if (row := book_row(m["market_id"], books.get(m["yes_token_id"])))}
    asked = [m["market_id"] for m in held if gamma_due(m, m["market_id"] in by_book, now)]
    answered = client.fetch_markets(asked) if asked else []
    known_to_gamma = {str(r.get("id")) for r in answered if isinstance(r, dict)}
    gamma_rows = [_with_book(r, by_book.get(r["market_id"])) for r in parse_markets(answered).markets]
    gamma_ids = {r["market_id"] for r in gamma_rows}
    clob_rows = [r for market_id, r in by_book.items() if market_id not in gamma_ids]
    priced = gamma_ids | set(by_book)
    return MarketUpdates(
        clob_rows=clob_rows, gamma_rows=gamma_rows, gamma_asked=asked,
        unpriced=sorted(m["market_id"] for m in held if m["market_id"] not in priced),
        missing=sorted(m for m in asked if m not in by_book and m not in known_to_gamma),
        observed_at=client.observed_at or now,
    )


def _with_book(gamma_row: dict, book_row: dict | None) -> dict:
    """Gamma's answer, with the book's prices while the market trades normally: Gamma's
    outcome prices lag the book. A market that closed or is resolving takes Gamma's word whole."""
    outcome = settlement_for(gamma_row)
    if book_row is None or not isinstance(outcome, NotSettled) or outcome.flag != OPEN:
        return gamma_row
    return {**gamma_row, **book_row}


def _write_market_rows(conn, rows: list[dict], observed_at: datetime, source: str) -> None:
    """Rows of one source in groups of the same columns (an open market's Gamma row carries
    its book's columns too): a group's missing column must not be written as NULL."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[tuple(sorted(row))].append(row)
    for group in groups.values():
        write_market_updates(conn, group, observed_at, source)


def update_prices(engine: Engine, client: PolymarketClient, logger: logging.Logger = log) -> PriceUpdateReport:
    t0 = time.perf_counter()
    held = _held_markets(engine)
    if not held:
        # Nothing to mark, exit or settle; and no observation to date the portfolios with.
        logger.info("no open positions: nothing to update")
        return PriceUpdateReport(observed_at=client.observed_at or datetime.now(timezone.utc))
    updates = fetch_market_updates(client, held)
    clob_rows, gamma_rows, unpriced = updates.clob_rows, updates.gamma_rows, updates.unpriced
    observed_at = updates.observed_at
    report = PriceUpdateReport(observed_at=observed_at, markets_held=len(held), books=len(clob_rows),
                               gamma_markets=len(gamma_rows), gamma_asked=len(updates.gamma_asked),
                               unpriced=unpriced, missing=updates.missing)
    if unpriced:
        logger.warning("no price for %d held markets (kept at their last mark): %s", len(unpriced), unpriced[:10])
    if updates.missing:
        logger.error("%d held markets are known to neither Gamma nor the CLOB (flagged %s): %s",
                     len(updates.missing), MARKET_MISSING, updates.missing[:10])
    t1 = time.perf_counter()
    ensure_partitions(engine, observed_at)
    with engine.begin() as conn:
        write_market_updates(conn, clob_rows, observed_at, "clob")
        _write_market_rows(conn, gamma_rows, observed_at, "gamma_update")
        write_resolution_checks(conn, held, updates.gamma_asked, updates.missing, observed_at)
    t2 = time.perf_counter()

    with engine.connect() as conn:
        ids = conn.execute(select(portfolios.c.portfolio_id).where(_MARKED_PORTFOLIOS)
                           .order_by(portfolios.c.portfolio_id)).scalars().all()
    states = _market_states(held, clob_rows + gamma_rows)
    states.update(_missing_states(held, updates.missing))
    for start in range(0, len(ids), PORTFOLIOS_PER_TRANSACTION):
        with engine.begin() as conn:
            _update_portfolios(conn, ids[start:start + PORTFOLIOS_PER_TRANSACTION], states, observed_at, report)
    report.seconds = {"fetch": t1 - t0, "write_markets": t2 - t1, "portfolios": time.perf_counter() - t2}
    logger.info("marked %d positions; exits %s; settlements %s", report.marked, dict(report.exits),
                dict(report.settlements))
    if report.superseded:
        logger.info("left %d portfolios alone: a later price update already marked them (%s)",
                    len(report.superseded), report.superseded[:10])
    return report


# Archiving is refused while positions are open; a portfolio archived with open positions
# before that rule still has them marked and settled. A backtest portfolio is marked only by
# its replay.
_MARKED_PORTFOLIOS = and_(portfolios.c.mode == "live", or_(
    portfolios.c.status != "archived",
    exists().where(portfolio_positions.c.portfolio_id == portfolios.c.portfolio_id,
                   portfolio_positions.c.status == "open"),
))


def mark_portfolios_at(conn, portfolio_ids: list[int], states: dict[str, dict],
                       at: datetime) -> PriceUpdateReport:
    """Mark, exit and settle these portfolios' open positions at `at` from market states given
    by the caller (a replay's states as known at `at`), exactly as a price update does, inside
    the caller's transaction."""
    report = PriceUpdateReport(observed_at=at)
    markets_by_id = {market_id: _Market({c: state.get(c) for c in _STATE_COLUMNS} | state, settlement_for(state))
                     for market_id, state in states.items()}
    _update_portfolios(conn, sorted(portfolio_ids), markets_by_id, at, report)
    return report


@dataclass(frozen=True)
class _Market:
    state: dict  # closed, yes/no price, best bid/ask
    outcome: Settlement | NotSettled
    books: dict = field(default_factory=dict)  # side -> OutcomeBook, built once for every holder

    def book(self, side: str) -> OutcomeBook:
        if side not in self.books:
            self.books[side] = OutcomeBook.from_state(side, self.state)
        return self.books[side]


def _missing_states(held: list[dict], missing: list[str]) -> dict[str, _Market]:
    """Held markets nobody knows any more: their stored state, flagged, never settled."""
    gone = set(missing)
    return {m["market_id"]: _Market({c: m[c] for c in _STATE_COLUMNS},
                                    NotSettled(MARKET_MISSING, "known to neither Gamma nor the CLOB"))
            for m in held if m["market_id"] in gone}


def _market_states(held: list[dict], fetched: list[dict]) -> dict[str, _Market]:
    """Every held market with a price, as this update wrote it, and what its resolution fields say.

    The stored row overlaid with what was fetched: what a re-read of `markets` would return.
    """
    by_id = {m["market_id"]: m for m in fetched}
    states = {}
    for market in held:
        update = by_id.get(market["market_id"])
        if update is not None:
            state = {c: update.get(c, market[c]) for c in _STATE_COLUMNS}
            states[market["market_id"]] = _Market(state, settlement_for(state))
    return states


# Every mark of a chunk in one statement.
_WRITE_MARKS = text(
    """
    UPDATE portfolio_positions p
    SET current_price = v.price, market_value = v.value, unrealized_pnl = v.unrealized,
        liquidation_value = v.liquidation, settlement_flag = v.flag, last_marked_at = :now
    FROM unnest(CAST(:ids AS bigint[]), CAST(:prices AS numeric[]), CAST(:values AS numeric[]),
                CAST(:unrealized AS numeric[]), CAST(:liquidation AS numeric[]), CAST(:flags AS text[]))
         AS v(position_id, price, value, unrealized, liquidation, flag)
    WHERE p.position_id = v.position_id
    """
)


# A position waiting on its market's resolution keeps its last mark (and when it was made);
# only its flag changes.
_WRITE_FLAGS = text(
    """
    UPDATE portfolio_positions p SET settlement_flag = v.flag
    FROM unnest(CAST(:ids AS bigint[]), CAST(:flags AS text[])) AS v(position_id, flag)
    WHERE p.position_id = v.position_id
    """
)


@dataclass
class _Mark:
    position_id: int
    price: Decimal
    market_value: Decimal
    unrealized: Decimal
    liquidation: Decimal
    flag: str | None
    fresh: bool = True  # False: the last mark, kept while the market resolves


def _settings(portfolio: dict) -> ExecutionSettings:
    """A portfolio's execution settings, built once per update from its strategy config."""
    return ExecutionSettings.from_config(
        get_strategy(portfolio["strategy_type"]).validate_config(portfolio["strategy_config"]))


def _update_portfolios(conn, ids: list[int], markets_by_id: dict[str, _Market], now: datetime,
                       report: PriceUpdateReport) -> None:
    """Mark, exit and settle these portfolios inside the caller's transaction (rows locked)."""
    locked = [dict(r._mapping) for r in conn.execute(
        select(portfolios).where(portfolios.c.portfolio_id.in_(ids))
        .order_by(portfolios.c.portfolio_id).with_for_update()
    )]
    # Two updates can overlap (a `prescient prices update` beside the schedule's run): the
    # one that observed prices later may lock first. Its marks stand; older ones never
    # overwrite them, nor fire exits on prices that were already superseded.
    superseded = [p["portfolio_id"] for p in locked
                  if p["last_price_update"] is not None and p["last_price_update"] > now]
    if superseded:
        report.superseded += superseded
        locked = [p for p in locked if p["portfolio_id"] not in superseded]
        ids = [p["portfolio_id"] for p in locked]
    held = defaultdict(list)
    for r in conn.execute(
        select(portfolio_positions)
        .where(portfolio_positions.c.portfolio_id.in_(ids), portfolio_positions.c.status == "open")
        .order_by(portfolio_positions.c.position_id)
    ):
        held[r.portfolio_id].append(dict(r._mapping))
    marks: list[_Mark] = []
    closes: list[Close] = []
    still_open = {}
    for portfolio in locked:
        pid = portfolio["portfolio_id"]
        still_open[pid] = _update_portfolio(portfolio, held[pid], markets_by_id, now, report, marks, closes)
    book_closes(conn, closes, now)
    kept = [m for m in marks if not m.fresh]
    marks = [m for m in marks if m.fresh]
    if marks:
        conn.execute(_WRITE_MARKS, {
            "now": now, "ids": [m.position_id for m in marks], "prices": [m.price for m in marks],
            "values": [m.market_value for m in marks], "unrealized": [m.unrealized for m in marks],
            "liquidation": [m.liquidation for m in marks], "flags": [m.flag for m in marks],
        })
        report.marked += len(marks)
    if kept:
        conn.execute(_WRITE_FLAGS, {"ids": [m.position_id for m in kept], "flags": [m.flag for m in kept]})
    if closes:  # they moved cash and realized P&L: read the rows as they are now
        locked = [dict(r._mapping) for r in conn.execute(
            select(portfolios).where(portfolios.c.portfolio_id.in_(ids)).order_by(portfolios.c.portfolio_id)
        )]
    derived = {}
    for portfolio in locked:
        pid = portfolio["portfolio_id"]
        totals, derived[pid] = derived_totals(portfolio, *still_open[pid])
        report.portfolios.append(PortfolioUpdate(
            pid, portfolio["name"], totals.total_value, totals.cash, totals.positions_value,
            totals.realized_pnl, totals.unrealized_pnl, totals.open_positions,
        ))
    write_derived_totals(conn, derived, last_price_update=now)


def _update_portfolio(portfolio: dict, rows: list[dict], markets_by_id: dict[str, _Market], now: datetime,
                      report: PriceUpdateReport, marks: list[_Mark], closes: list[Close],
                      ) -> tuple[list[tuple[PositionState, Decimal | None]], Decimal]:
    """Decide a settlement, an exit or a new mark for each open position (appended to `closes`
    and `marks`); returns the positions still open, each with its mark price, and their value
    at the bid."""
    if not rows:
        return [], ZERO
    settings = _settings(portfolio)
    still_open = []
    at_bid = ZERO
    for row in rows:
        position = PositionState.from_row(row)
        price = position.current_price  # unpriced, or no price to mark at: kept at its last mark
        liquidation = row["liquidation_value"] if row["liquidation_value"] is not None else row["market_value"]
        market = markets_by_id.get(row["market_id"])
        if market is not None:
            close, new_mark, position = _update_position(portfolio["portfolio_id"], row, position, market, settings,
                                                         now, report)
            if close is not None:
                closes.append(close)
            if position is None:
                continue
            if new_mark is not None:
                marks.append(new_mark)
                price, liquidation = new_mark.price, new_mark.liquidation
        still_open.append((position, price))
        at_bid += to_money(liquidation or 0)
    return still_open, at_bid


def _update_position(portfolio_id: int, row: dict, position: PositionState, market: _Market,
                     settings: ExecutionSettings, now: datetime, report: PriceUpdateReport,
                     ) -> tuple[Close | None, _Mark | None, PositionState | None]:
    """The position's settlement or exit sale, and its new mark (None: no price to mark at),
    with the position as it stays open (None: closed). A sale the bids take only part of leaves
    the rest open, marked."""
    outcome, state = market.outcome, market.state
    # Settlement comes before any exit.
    if not isinstance(outcome, NotSettled):
        proceeds, _ = settle_position(position, outcome)
        # The payout per share itself (exactly 1, 0 or 0.5): proceeds / shares would carry the
        # rounding of the proceeds to the cent.
        payout = payout_per_share(outcome, row["side"])
        report.settlements[outcome.kind] += 1
        return Close(portfolio_id, row, "settle", to_price(payout), Decimal(0), proceeds,
                     f"settlement_{outcome.kind}"), None, None
    if outcome.flag in WATCH_FLAGS:
        report.flags[outcome.flag] += 1
    flag = outcome.flag if outcome.flag in WATCH_FLAGS else None

    book = market.book(row["side"])
    shown = book.displayed_price
    close = None
    # A basket leg alone is not a position to manage: the basket pays out at settlement. With
    # no bid there is nothing to sell into (a replayed history point has no book: its sale is
    # priced from the point), and while a resolution is under way exits wait.
    if (settings.has_exits and row["group_id"] is None and not state["closed"] and flag not in EXITS_WAIT
            and (book.best_bid is not None or state.get("source") == "history")):
        decision = exit_decision(position, shown, now, settings.exits, row.get("entry_mark"))
        if decision is not None:
            try:
                fill = settings.sell(row["side"], state, position.shares)
            except FillRejected:
                fill = None
            if fill is not None:
                report.exits[decision.reason] += 1
                close = Close(portfolio_id, row, "sell", fill.price, fill.fee, fill.proceeds, decision.reason,
                              fill.gross, fill)
                if close.whole:
                    return close, None, None
                position = replace(position, shares=position.shares - close.shares,
                                   cost_basis=position.cost_basis - close.cost)
    last = _waiting_mark(position, state, outcome)
    if last is not None:
        market_value, unrealized = mark(position, last)
        kept = row["liquidation_value"] if row["liquidation_value"] is not None else market_value
        return close, _Mark(row["position_id"], last, market_value, unrealized, to_money(kept), flag,
                            fresh=False), position
    if shown is None:
        return close, None, position
    price = mark_price_of(book, shown)
    market_value, unrealized = mark(position, price)
    return close, _Mark(row["position_id"], price, market_value, unrealized,
                        liquidation_value(position, book.best_bid, market_value), flag), position


def _waiting_mark(position: PositionState, state: dict, outcome: NotSettled) -> Decimal | None:
    """The last real mark of a position waiting on its market's resolution, else None.

    A closed market's outcome prices are a resolution, not a price (["0", "0"] would mark the
    position at nothing), and a missing market has no price at all.
    """
    waiting = state["closed"] or outcome.flag in (NO_WINNER, MARKET_MISSING) \
        or (state["yes_price"] == 0 and state["no_price"] == 0)
    if not waiting:
        return None
    return position.current_price if position.current_price is not None else position.avg_price
