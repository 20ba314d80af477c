"""The price update: fetch held markets in batches, snapshot them, then per portfolio mark,
exit and settle.

Books come from the CLOB's batch endpoint (one request per chunk of tokens, never one per
position). Gamma is asked, in batches too, only for markets whose book is missing or whose end
date has passed: it is the one place that says a market closed and how it resolved.

Portfolios are updated in chunks, one transaction per chunk with the chunk's portfolio rows
locked (in id order, as every multi-portfolio lock is taken): each portfolio is still updated
within a single transaction, so it is never half-updated, while its marks and totals are
written with one statement per chunk rather than one per position.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import Engine, select, text

from ..db.history_partitions import ensure_partitions
from ..db.schema import portfolio_positions, portfolios
from ..domain.accounting import PositionState, mark, to_price
from ..domain.exits import ExitRules, exit_decision
from ..domain.fills import sell, sell_fill_price
from ..domain.settlement import NotSettled, Settlement, settle_position, settlement_for
from ..domain.strategies.registry import get_strategy
from ..polymarket.client import PolymarketClient
from ..polymarket.parser import parse_markets
from .books import book_row
from .ledger import Close, book_closes, derived_totals, write_derived_totals
from .market_store import write_market_updates

log = logging.getLogger(__name__)

# Portfolios updated per transaction: big enough that statements, not positions, set the pace;
# small enough that execution never waits long for a portfolio lock.
PORTFOLIOS_PER_TRANSACTION = 50

# Flags worth showing a user: the market looks resolved but must not be settled yet.
WATCH_FLAGS = {"resolved_but_open", "resolution_proposed", "resolution_disputed", "no_winner",
               "not_final_prices", "malformed_prices", "missing_prices", "not_binary"}


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
    unpriced: list[str] = field(default_factory=list)
    marked: int = 0
    exits: Counter = field(default_factory=Counter)
    settlements: Counter = field(default_factory=Counter)
    flags: Counter = field(default_factory=Counter)
    portfolios: list[PortfolioUpdate] = field(default_factory=list)
    superseded: list[int] = field(default_factory=list)  # already marked by a later observation
    seconds: dict[str, float] = field(default_factory=dict)  # fetch, write_markets, portfolios


# What settlement and marks read of a market.
_STATE_COLUMNS = ("closed", "outcome_prices", "uma_resolution_status", "yes_price", "no_price", "best_bid", "best_ask")


def _held_markets(engine: Engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(text(
            f"""
            SELECT m.market_id, m.yes_token_id, m.end_date, {', '.join(f'm.{c}' for c in _STATE_COLUMNS)}
            FROM markets m
            WHERE m.market_id IN (SELECT DISTINCT market_id FROM portfolio_positions WHERE status = 'open')
            """
        ))
        return [dict(r._mapping) for r in rows]


def fetch_market_updates(client: PolymarketClient, held: list[dict]) -> tuple[list[dict], list[dict], list[str]]:
    """(clob rows, gamma rows, unpriced market ids) for the held markets."""
    tokens = {m["yes_token_id"]: m["market_id"] for m in held if m["yes_token_id"]}
    books = client.fetch_books(list(tokens)) if tokens else {}
    # "Past its end date" by the server's clock as the books were read (the simulator's own, offline).
    now = client.observed_at or datetime.now(timezone.utc)
    clob_rows, need_gamma = [], []
    for m in held:
        book = books.get(m["yes_token_id"])
        past_end = m["end_date"] is not None and m["end_date"] <= now
        if book is None or book.best_bid is None or book.best_ask is None or past_end:
            need_gamma.append(m["market_id"])
        row = book_row(m["market_id"], book)  # prices, depth and rules of the YES book
        if row is not None:
            clob_rows.append(row)
    gamma_rows = parse_markets(client.fetch_markets(need_gamma)).markets if need_gamma else []
    priced = {r["market_id"] for r in clob_rows} | {r["market_id"] for r in gamma_rows}
    unpriced = sorted(m["market_id"] for m in held if m["market_id"] not in priced)
    # Gamma's answer supersedes the book for markets it returned (closed state, final prices).
    gamma_ids = {r["market_id"] for r in gamma_rows}
    clob_rows = [r for r in clob_rows if r["market_id"] not in gamma_ids]
    return clob_rows, gamma_rows, unpriced


def update_prices(engine: Engine, client: PolymarketClient, logger: logging.Logger = log) -> PriceUpdateReport:
    t0 = time.perf_counter()
    held = _held_markets(engine)
    if not held:
        # Nothing to mark, exit or settle; and no observation to date the portfolios with.
        logger.info("no open positions: nothing to update")
        return PriceUpdateReport(observed_at=client.observed_at or datetime.now(timezone.utc))
    clob_rows, gamma_rows, unpriced = fetch_market_updates(client, held)
    observed_at = client.observed_at or datetime.now(timezone.utc)
    report = PriceUpdateReport(observed_at=observed_at, markets_held=len(held), books=len(clob_rows),
                               gamma_markets=len(gamma_rows), unpriced=unpriced)
    if unpriced:
        logger.warning("no price for %d held markets (kept at their last mark): %s", len(unpriced), unpriced[:10])
    t1 = time.perf_counter()
    ensure_partitions(engine, observed_at)
    with engine.begin() as conn:
        write_market_updates(conn, clob_rows, observed_at, "clob")
        write_market_updates(conn, gamma_rows, observed_at, "gamma_update")
    t2 = time.perf_counter()

    with engine.connect() as conn:
        ids = conn.execute(
            select(portfolios.c.portfolio_id).where(portfolios.c.status != "archived").order_by(portfolios.c.portfolio_id)
        ).scalars().all()
    states = _market_states(held, clob_rows + gamma_rows)
    for start in range(0, len(ids), PORTFOLIOS_PER_TRANSACTION):
        _update_portfolios(engine, ids[start:start + PORTFOLIOS_PER_TRANSACTION], states, observed_at, report)
    report.seconds = {"fetch": t1 - t0, "write_markets": t2 - t1, "portfolios": time.perf_counter() - t2}
    logger.info("marked %d positions; exits %s; settlements %s", report.marked, dict(report.exits),
                dict(report.settlements))
    if report.superseded:
        logger.info("left %d portfolios alone: a later price update already marked them (%s)",
                    len(report.superseded), report.superseded[:10])
    return report


@dataclass(frozen=True)
class _Market:
    state: dict  # closed, yes/no price, best bid/ask
    outcome: Settlement | NotSettled


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
        settlement_flag = v.flag, last_marked_at = :now
    FROM unnest(CAST(:ids AS bigint[]), CAST(:prices AS numeric[]), CAST(:values AS numeric[]),
                CAST(:unrealized AS numeric[]), CAST(:flags AS text[])) AS v(position_id, price, value, unrealized, flag)
    WHERE p.position_id = v.position_id
    """
)


@dataclass
class _Mark:
    position_id: int
    price: Decimal
    market_value: Decimal
    unrealized: Decimal
    flag: str | None


@dataclass(frozen=True)
class _Rules:
    """A portfolio's exit and sale settings, read from its strategy config once."""

    slippage_bps: float
    fee_rate: Decimal
    exits: ExitRules | None  # None: no exit rule is set

    @classmethod
    def of(cls, portfolio: dict) -> "_Rules":
        config = get_strategy(portfolio["strategy_type"]).validate_config(portfolio["strategy_config"])
        exits = ExitRules.from_config(config)
        return cls(float(config.get("slippage_bps") or 0), Decimal(str(config.get("fee_rate") or 0)),
                   exits if exits != ExitRules() else None)


def _update_portfolios(engine: Engine, ids: list[int], markets_by_id: dict[str, _Market], now: datetime,
                       report: PriceUpdateReport) -> None:
    with engine.begin() as conn:
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
        if marks:
            conn.execute(_WRITE_MARKS, {
                "now": now, "ids": [m.position_id for m in marks], "prices": [m.price for m in marks],
                "values": [m.market_value for m in marks], "unrealized": [m.unrealized for m in marks],
                "flags": [m.flag for m in marks],
            })
            report.marked += len(marks)
        if closes:  # they moved cash and realized P&L: read the rows as they are now
            locked = [dict(r._mapping) for r in conn.execute(
                select(portfolios).where(portfolios.c.portfolio_id.in_(ids)).order_by(portfolios.c.portfolio_id)
            )]
        derived = {}
        for portfolio in locked:
            pid = portfolio["portfolio_id"]
            totals, derived[pid] = derived_totals(portfolio, still_open[pid])
            report.portfolios.append(PortfolioUpdate(
                pid, portfolio["name"], totals.total_value, totals.cash, totals.positions_value,
                totals.realized_pnl, totals.unrealized_pnl, totals.open_positions,
            ))
        write_derived_totals(conn, derived, last_price_update=now)


def _update_portfolio(portfolio: dict, rows: list[dict], markets_by_id: dict[str, _Market], now: datetime,
                      report: PriceUpdateReport, marks: list[_Mark], closes: list[Close],
                      ) -> list[tuple[PositionState, Decimal | None]]:
    """Decide a settlement, an exit or a new mark for each open position (appended to `closes`
    and `marks`); returns the positions still open, each with its mark price."""
    if not rows:
        return []
    rules = _Rules.of(portfolio)
    still_open = []
    for row in rows:
        position = PositionState.from_row(row)
        price = position.current_price  # unpriced, or no price to mark at: kept at its last mark
        market = markets_by_id.get(row["market_id"])
        if market is not None:
            outcome = _update_position(portfolio["portfolio_id"], row, position, market, rules, now, report)
            if isinstance(outcome, Close):
                closes.append(outcome)
                continue
            if outcome is not None:
                marks.append(outcome)
                price = outcome.price
        still_open.append((position, price))
    return still_open


def _update_position(portfolio_id: int, row: dict, position: PositionState, market: _Market, rules: _Rules,
                     now: datetime, report: PriceUpdateReport) -> Close | _Mark | None:
    """The position's settlement or exit, else its new mark (None: no price to mark at)."""
    outcome, state = market.outcome, market.state
    if not isinstance(outcome, NotSettled):
        proceeds, _ = settle_position(position, outcome)
        payout = proceeds / position.shares if position.shares else Decimal(0)
        report.settlements[outcome.kind] += 1
        return Close(portfolio_id, row, "settle", to_price(payout), Decimal(0), proceeds, f"settlement_{outcome.kind}")
    if outcome.flag in WATCH_FLAGS:
        report.flags[outcome.flag] += 1
    flag = outcome.flag if outcome.flag in WATCH_FLAGS else None

    # A basket leg alone is not a position to manage: the basket pays out at settlement.
    if rules.exits is not None and row["group_id"] is None and not state["closed"]:
        bid = sell_fill_price(row["side"], state, rules.slippage_bps)
        decision = exit_decision(position, bid, now, rules.exits) if bid is not None else None
        if decision is not None:
            fill = sell(position.shares, decision.bid_price, rules.fee_rate)
            report.exits[decision.reason] += 1
            return Close(portfolio_id, row, "sell", fill.price, fill.fee, fill.proceeds, decision.reason, fill.gross)
    price = state["yes_price"] if row["side"] == "YES" else state["no_price"]
    if price is None:
        return None
    market_value, unrealized = mark(position, price)
    return _Mark(row["position_id"], to_price(price), market_value, unrealized, flag)
