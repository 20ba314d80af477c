"""Order books as market observations: a CLOB book becomes a `clob` row of current state and
history (prices, the top levels of each side, the market's rules), for the price update and for
the markets about to be traded.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timezone

from sqlalchemy import Engine, text

from ..polymarket.client import Book, PolymarketClient
from ..polymarket.parser import FEE_COLUMNS, clob_fee_parameters
from .market_store import write_market_updates
from .signals import pending_signals

CLOB = "clob"


def book_row(market_id: str, book: Book | None) -> dict | None:
    """The observation a YES book makes of its market; None without both a bid and an ask."""
    if book is None or book.best_bid is None or book.best_ask is None:
        return None
    mid = (book.best_bid + book.best_ask) / 2
    return {
        "market_id": market_id,
        "yes_price": mid,
        "no_price": 1 - mid,
        "best_bid": book.best_bid,
        "best_ask": book.best_ask,
        "last_trade_price": book.last_trade_price,
        "tick_size": book.tick_size,
        "min_order_size": book.min_order_size,
        "bids": [[price, size] for price, size in book.bids],
        "asks": [[price, size] for price, size in book.asks],
    }


def fetch_books_for(engine: Engine, client: PolymarketClient, market_ids: Iterable[str]) -> int:
    """Fetch the YES books of these markets (one batch POST /books per chunk) and record them, so
    execution walks a fresh book; returns the number of markets observed. Closed or unknown
    markets, and books without both sides, are left as they were.

    A market whose fees are enabled but whose parameters Gamma did not give is asked the CLOB's
    market info (one request each: only the few markets about to be traded), so the fill is
    charged the rate the venue states rather than a default."""
    wanted = sorted(set(market_ids))
    if not wanted:
        return 0
    with engine.connect() as conn:
        markets = conn.execute(text(
            "SELECT market_id, yes_token_id, condition_id, fees_enabled IS TRUE AND fee_rate IS NULL AS fees_unknown "
            "FROM markets WHERE market_id = ANY(:ids) AND yes_token_id IS NOT NULL AND closed IS NOT TRUE"
        ), {"ids": wanted}).all()
    if not markets:
        return 0
    books = client.fetch_books([m.yes_token_id for m in markets])
    observed_at = client.observed_at or datetime.now(timezone.utc)
    rows = []
    for market in markets:
        row = book_row(market.market_id, books.get(market.yes_token_id))
        if row is None:
            continue
        fees = dict.fromkeys(FEE_COLUMNS)  # None: the market keeps what it has
        if market.fees_unknown and market.condition_id:
            stated = clob_fee_parameters(client.fetch_market_info(market.condition_id) or {})
            if stated["fee_rate"] is not None:
                fees = stated
        rows.append({**row, **fees})
    with engine.begin() as conn:
        return write_market_updates(conn, rows, observed_at, CLOB)


def fetch_books_for_pending(engine: Engine, client: PolymarketClient, portfolio_ids: Iterable[int],
                            cycle_date: date | None = None) -> int:
    """fetch_books_for the markets of these portfolios' pending signals: one batch of books just
    before live execution, so its fills walk the book as it stands. Not for backtests, whose fills
    must read observations at or before each signal's as-of."""
    with engine.connect() as conn:
        live = set(conn.execute(text("SELECT portfolio_id FROM portfolios WHERE mode = 'live' "
                                     "AND portfolio_id = ANY(:ids)"), {"ids": list(portfolio_ids)}).scalars())
        market_ids = {signal["market_id"] for portfolio_id in sorted(live)
                      for signal in pending_signals(conn, portfolio_id, cycle_date)}
    return fetch_books_for(engine, client, market_ids)
