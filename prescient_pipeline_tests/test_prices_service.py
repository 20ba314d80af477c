"""The price update at service level: marks, exits sold at the bid, settlement and the markets
that must not be settled, against a local server answering in Polymarket's wire format.

Positions are opened at T0 by the real execution path; at T1 (an hour later) the server answers
with new books and Gamma markets, and `update_prices` runs.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from prescient_pipeline.polymarket.client import PolymarketClient
from prescient_pipeline.services import portfolios as svc
from prescient_pipeline.services.execution import execute_portfolio
from prescient_pipeline.services.prices import update_prices
from prescient_pipeline.services.reports import unbalanced_portfolios

from .replay_server import ReplayServer
from .test_execution import T0, add_signals, ledger_state, portfolio, rows, store, wire_market

T1 = T0 + timedelta(hours=1)
LATER = "2026-12-31T00:00:00Z"
ENDS_BEFORE_T1 = (T0 + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")


def opened(engine, markets: dict[str, str], books: dict[str, list[tuple]]) -> dict[str, int]:
    """Store the T0 markets (YES 0.50, book 0.49/0.50; `markets` maps id -> endDate) and open
    the positions `books` lists per portfolio name: (market, side, amount[, config])."""
    store(engine, [wire_market(m, "0.5", "0.5", bid="0.49", ask="0.5", endDate=end) for m, end in markets.items()])
    ids = {}
    for name, (config, positions) in books.items():
        pid = ids[name] = portfolio(engine, name=name, config=config)
        add_signals(engine, pid, positions)
        assert execute_portfolio(engine, pid).executed == len(positions)
    return ids


def book(bid: str | None, ask: str | None, token: str) -> tuple[str, dict]:
    return token, {"market": f"0xc{token[:-2]}", "asset_id": token, "timestamp": "1772442000000",
                   "bids": [{"price": "0.01", "size": "900"}] + ([{"price": bid, "size": "150"}] if bid else []),
                   "asks": [{"price": "0.99", "size": "900"}] + ([{"price": ask, "size": "120"}] if ask else [])}


def run_update(markets: list[dict] = (), books: dict | None = None, engine=None, now: datetime = T1):
    with ReplayServer(markets=markets, books=books or {}, now=now) as server:
        with PolymarketClient(server.url, server.url, retries=0) as client:
            return update_prices(engine, client)


def position(engine, market_id: str, pid: int):
    (row,) = rows(engine, "SELECT * FROM portfolio_positions WHERE market_id = :m AND portfolio_id = :p",
                  m=market_id, p=pid)
    return row


def trade(engine, market_id: str, pid: int, action: str):
    (row,) = rows(engine, "SELECT * FROM trades WHERE market_id = :m AND portfolio_id = :p AND action = :a",
                  m=market_id, p=pid, a=action)
    return row


def test_marks_stop_loss_take_profit_and_holding_time_golden(engine):
    ids = opened(engine, {"7001": LATER, "7101": LATER, "7102": LATER, "7103": LATER}, {
        # Fee 0: 50 buys 100 shares at the ask 0.50.
        "marks": (None, [("7001", "YES", 50)]),
        # Fee per share 0.04 * 0.5 * 0.5 = 0.01, so 51 buys 100 shares: cost basis 51, entry fee 1.
        "exits": ({"fee_rate": 0.04, "stop_loss_percentage": 0.2, "take_profit_percentage": 0.2},
                  [("7101", "YES", 51), ("7102", "YES", 51), ("7103", "YES", 51)]),
        "holding": ({"max_holding_hours": 1}, [("7103", "YES", 50)]),
    })
    books = dict([book("0.58", "0.62", "700101"), book("0.38", "0.40", "710101"),
                  book("0.64", "0.66", "710201"), book("0.52", "0.54", "710301")])

    report = run_update(books=books, engine=engine)

    assert (report.observed_at, report.markets_held, report.books, report.gamma_markets, report.unpriced) == (
        T1, 4, 4, 0, [])
    assert report.exits == Counter({"stop_loss": 1, "take_profit": 1, "max_holding_time": 1})
    assert report.marked == 2 and not report.settlements

    # marks: mid (0.58 + 0.62) / 2 = 0.60; 100 * 0.60 = 60, unrealized 60 - 50 = 10.
    p = position(engine, "7001", ids["marks"])
    assert (p.status, p.current_price, p.market_value, p.unrealized_pnl, p.last_marked_at) == (
        "open", Decimal("0.6"), Decimal(60), Decimal(10), T1)

    # stop loss: at the bid 0.38, (100 * 0.38 - 51) / 51 = -25.5% <= -20%. Sold at the bid with the
    # fee 100 * 0.04 * 0.38 * 0.62 = 0.9424: proceeds 38 - 0.9424 = 37.0576, realized -13.9424.
    t = trade(engine, "7101", ids["exits"], "sell")
    assert (t.price, t.shares, t.amount, t.fee, t.cash_delta, t.realized_pnl, t.reason) == (
        Decimal("0.38"), Decimal(100), Decimal(38), Decimal("0.9424"), Decimal("37.0576"), Decimal("-13.9424"),
        "stop_loss")
    p = position(engine, "7101", ids["exits"])
    assert (p.status, p.close_reason, p.exit_price, p.exit_fee, p.proceeds, p.realized_pnl, p.closed_at) == (
        "closed", "stop_loss", Decimal("0.38"), Decimal("0.9424"), Decimal("37.0576"), Decimal("-13.9424"), T1)
    # take profit: (100 * 0.64 - 51) / 51 = +25.5% >= 20%. Fee 100 * 0.04 * 0.64 * 0.36 = 0.9216:
    # proceeds 64 - 0.9216 = 63.0784, realized 12.0784.
    t = trade(engine, "7102", ids["exits"], "sell")
    assert (t.price, t.fee, t.cash_delta, t.realized_pnl, t.reason) == (
        Decimal("0.64"), Decimal("0.9216"), Decimal("63.0784"), Decimal("12.0784"), "take_profit")
    # flat: (100 * 0.52 - 51) / 51 = +2%: held, marked at the mid 0.53: 53, unrealized 2.
    p = position(engine, "7103", ids["exits"])
    assert (p.status, p.market_value, p.unrealized_pnl) == ("open", Decimal(53), Decimal(2))
    # Cash 1000 - 3 * 51 + 37.0576 + 63.0784 = 947.136; realized -13.9424 + 12.0784 = -1.864;
    # fees 3 (entries) + 0.9424 + 0.9216 = 4.864; total 947.136 + 53 = 1000 - 1.864 + 2.
    pf = svc.get_portfolio(engine, ids["exits"])
    assert (pf["current_balance"], pf["realized_pnl"], pf["unrealized_pnl"], pf["total_fees"]) == (
        Decimal("947.136"), Decimal("-1.864"), Decimal(2), Decimal("4.864"))
    assert (pf["total_winning_trades"], pf["total_losing_trades"], pf["last_price_update"]) == (1, 1, T1)

    # holding: opened at T0, an hour at T1 >= max_holding_hours 1: sold at the bid 0.52, no fee,
    # proceeds 52, realized 2.
    t = trade(engine, "7103", ids["holding"], "sell")
    assert (t.price, t.fee, t.cash_delta, t.realized_pnl, t.reason) == (
        Decimal("0.52"), Decimal(0), Decimal(52), Decimal(2), "max_holding_time")
    assert svc.get_portfolio(engine, ids["holding"])["current_balance"] == Decimal(1002)
    totals = {p.name: p for p in report.portfolios}
    assert totals["exits"].total_value == Decimal("1000.136") and totals["holding"].open_positions == 0
    assert unbalanced_portfolios(engine) == []


def test_settlement_win_lose_and_fifty_fifty_pay_once(engine):
    ends = {m: ENDS_BEFORE_T1 for m in ("7201", "7202", "7203", "7204")}
    (pid,) = opened(engine, ends, {"settle": (None, [
        ("7201", "YES", 50), ("7202", "YES", 50), ("7204", "YES", 50),
        ("7203", "NO", 50),  # NO at 1 - bid 0.49 = 0.51: 50 / 0.51 = 98.03921568 shares
    ])}).values()
    resolved = {"umaResolutionStatus": "resolved", "closedTime": "2026-03-02 09:40:00+00", "acceptingOrders": False,
                "endDate": ENDS_BEFORE_T1}
    gamma = [wire_market("7201", "1", "0", closed=True, **resolved),
             wire_market("7202", "0", "1", closed=True, **resolved),
             wire_market("7203", "0", "1", closed=True, **resolved),
             wire_market("7204", "0.5", "0.5", closed=True, **resolved)]

    report = run_update(gamma, engine=engine)

    # The books are gone and the end dates have passed: Gamma is asked, and says closed.
    assert (report.books, report.gamma_markets, report.unpriced) == (0, 4, [])
    assert report.settlements == Counter({"yes_won": 1, "no_won": 2, "fifty_fifty": 1})
    settled = {r.market_id: r for r in rows(engine, "SELECT * FROM trades WHERE action = 'settle'")}
    # YES won: 100 shares pay $1 each; YES lost: $0; NO won: 98.03921568 * 1; 50-50: 100 * 0.50.
    expect = {"7201": ("1", "100", "50"), "7202": ("0", "0", "-50"),
              "7203": ("1", "98.039216", "48.039216"), "7204": ("0.5", "50", "0")}
    for market, (price, proceeds, realized) in expect.items():
        t = settled[market]
        assert (t.price, t.fee, t.cash_delta, t.realized_pnl) == (
            Decimal(price), Decimal(0), Decimal(proceeds), Decimal(realized)), market
    reasons = {r.market_id: r.close_reason for r in rows(engine, "SELECT * FROM portfolio_positions")}
    assert reasons == {"7201": "settlement_yes_won", "7202": "settlement_no_won", "7203": "settlement_no_won",
                       "7204": "settlement_fifty_fifty"}
    # Cash 1000 - 200 + 100 + 0 + 98.039216 + 50 = 1048.039216.
    assert svc.get_portfolio(engine, pid)["current_balance"] == Decimal("1048.039216")
    assert unbalanced_portfolios(engine) == []

    state = ledger_state(engine)
    again = run_update(gamma, engine=engine, now=T1 + timedelta(minutes=5))
    assert not again.settlements and again.markets_held == 0
    assert ledger_state(engine) == state, "settlement pays once"


LOOKALIKES = {
    # id: (Gamma's answer, the flag that keeps the position open)
    "7301": (dict(yes="0.9995", no="0.0005", closed=False, bid="0.999", ask="1", umaResolutionStatus="resolved"),
             "resolved_but_open"),
    "7302": (dict(yes="0", no="1", closed=True, bid="0", ask="1", umaResolutionStatus="proposed"),
             "resolution_proposed"),
    "7303": (dict(yes="0.9985", no="0.0015", closed=False, bid="0.998", ask="0.999", umaResolutionStatus="disputed"),
             "resolution_disputed"),
    "7304": (dict(yes="0", no="0", closed=True), "no_winner"),
    "7305": (dict(yes="0.000001011082052522541417308141468657552", no="0.9999989889179474774585826918585313",
                  closed=True), "not_final_prices"),
}


def test_markets_that_only_look_resolved_are_not_settled_but_flagged(engine):
    (pid,) = opened(engine, {m: ENDS_BEFORE_T1 for m in LOOKALIKES},
                    {"settle": (None, [(m, "YES", 50) for m in LOOKALIKES])}).values()
    gamma = [wire_market(m, endDate=ENDS_BEFORE_T1, **fields) for m, (fields, _) in LOOKALIKES.items()]
    # The almost-resolved open market still has a book; its passed end date sends it to Gamma.
    books = dict([book("0.999", "1", "730101")])

    report = run_update(gamma, books, engine=engine)

    assert report.gamma_markets == 5 and not report.settlements and not report.exits
    assert report.flags == Counter({flag: 1 for _, flag in LOOKALIKES.values()})
    assert rows(engine, "SELECT * FROM trades WHERE action <> 'buy'") == []
    positions = {r.market_id: r for r in rows(engine, "SELECT * FROM portfolio_positions")}
    for market, (_, flag) in LOOKALIKES.items():
        p = positions[market]
        assert (p.status, p.settlement_flag, p.last_marked_at) == ("open", flag, T1), market
    assert positions["7301"].market_value == Decimal("99.95"), "marked at 0.9995, not paid $1"
    assert svc.get_portfolio(engine, pid)["current_balance"] == Decimal(750)
    assert unbalanced_portfolios(engine) == []


def test_unpriced_market_is_skipped_and_reported_while_the_rest_is_updated(engine):
    (pid,) = opened(engine, {"7001": LATER, "7002": LATER},
                    {"marks": (None, [("7001", "YES", 50), ("7002", "YES", 50)])}).values()
    before = position(engine, "7002", pid)

    # 7002 has no book, and Gamma does not know it (a delisted or mistyped id).
    report = run_update([], dict([book("0.58", "0.62", "700101")]), engine=engine)

    assert report.unpriced == ["7002"] and report.marked == 1
    assert position(engine, "7001", pid).market_value == Decimal(60)
    ghost = position(engine, "7002", pid)
    assert (ghost.status, ghost.current_price, ghost.market_value, ghost.last_marked_at) == (
        "open", before.current_price, before.market_value, T0), "kept at its last mark"
    pf = svc.get_portfolio(engine, pid)
    # Cash 900 + 60 + 49.50 (its last mark: the mid 0.495 of the 0.49/0.50 book at entry):
    # 1009.50; unrealized 10 - 0.50 = 9.50.
    assert before.current_price == Decimal("0.495")
    assert (pf["current_balance"], pf["unrealized_pnl"], pf["last_price_update"]) == (Decimal(900), Decimal("9.5"), T1)
    assert unbalanced_portfolios(engine) == []


@pytest.mark.parametrize("rerun_at", [T1, T1 + timedelta(minutes=5)])
def test_a_repeated_update_changes_nothing_more(engine, rerun_at):
    (pid,) = opened(engine, {"7001": LATER}, {"marks": (None, [("7001", "YES", 50)])}).values()
    books = dict([book("0.58", "0.62", "700101")])
    run_update(books=books, engine=engine)
    first = rows(engine, "SELECT shares, cost_basis, current_price, market_value, unrealized_pnl, status "
                         "FROM portfolio_positions")
    run_update(books=books, engine=engine, now=rerun_at)
    assert rows(engine, "SELECT shares, cost_basis, current_price, market_value, unrealized_pnl, status "
                        "FROM portfolio_positions") == first
    assert svc.get_portfolio(engine, pid)["current_balance"] == Decimal(950)
    assert len(rows(engine, "SELECT * FROM trades")) == 1


def test_an_update_observed_earlier_never_overwrites_a_later_one(engine):
    # Two updates overlapping: the one that observed prices at T1 + 5 min committed first.
    ids = opened(engine, {"7001": LATER, "7101": LATER}, {
        "marks": (None, [("7001", "YES", 50)]),
        "exits": ({"stop_loss_percentage": 0.2}, [("7101", "YES", 50)]),
    })
    later = T1 + timedelta(minutes=5)
    run_update(books=dict([book("0.58", "0.62", "700101"), book("0.48", "0.50", "710101")]),
               engine=engine, now=later)
    after_later = rows(engine, "SELECT * FROM portfolio_positions ORDER BY position_id")

    # The earlier observation saw 7001 at 0.40 and 7101's bid low enough for its stop loss.
    report = run_update(books=dict([book("0.38", "0.42", "700101"), book("0.30", "0.32", "710101")]),
                        engine=engine, now=T1)

    assert sorted(report.superseded) == sorted(ids.values())
    assert report.marked == 0 and not report.exits and report.portfolios == []
    assert rows(engine, "SELECT * FROM portfolio_positions ORDER BY position_id") == after_later
    assert len(rows(engine, "SELECT * FROM trades WHERE action = 'sell'")) == 0
    assert {svc.get_portfolio(engine, pid)["last_price_update"] for pid in ids.values()} == {later}
    # The markets keep the later observation too; the earlier one is only history.
    assert rows(engine, "SELECT market_id, yes_price FROM markets ORDER BY market_id") == [
        ("7001", Decimal("0.6")), ("7101", Decimal("0.49"))]
    assert len(rows(engine, "SELECT * FROM market_snapshots WHERE ts = :t", t=T1)) == 2
    assert unbalanced_portfolios(engine) == []


def test_the_states_an_update_marks_with_are_the_markets_as_stored(engine, monkeypatch):
    """The update overlays what it fetched on the rows it read rather than reading them again;
    the states must equal a re-read: books, Gamma's closed markets and an unpriced one."""
    from prescient_pipeline.domain.accounting import to_price
    from prescient_pipeline.domain.settlement import settlement_for
    from prescient_pipeline.services import prices

    ends = {m: ENDS_BEFORE_T1 for m in LOOKALIKES} | {"7201": ENDS_BEFORE_T1, "7001": LATER, "7002": LATER}
    opened(engine, ends, {"all": (None, [(m, "YES", 10) for m in ends])})
    gamma = [wire_market(m, endDate=ENDS_BEFORE_T1, **fields) for m, (fields, _) in LOOKALIKES.items()]
    gamma.append(wire_market("7201", "1", "0", closed=True, umaResolutionStatus="resolved", endDate=ENDS_BEFORE_T1))
    used = {}

    def keep(held, fetched):
        used.update(states := real(held, fetched))
        return states

    real = prices._market_states
    monkeypatch.setattr(prices, "_market_states", keep)
    report = run_update(gamma, dict([book("0.58", "0.62", "700101"), book("0.999", "1", "730101")]), engine=engine)

    assert report.unpriced == ["7002"] and set(used) == set(ends) - {"7002"}
    stored = {r.market_id: r._asdict() for r in rows(engine, f"SELECT market_id, {', '.join(prices._STATE_COLUMNS)} "
                                                            "FROM markets WHERE market_id = ANY(:ids)", ids=list(used))}
    for market_id, market in used.items():
        for column in prices._STATE_COLUMNS:
            overlaid, reread = market.state[column], stored[market_id][column]
            if column in ("yes_price", "no_price", "best_bid", "best_ask") and overlaid is not None:
                overlaid, reread = to_price(overlaid), to_price(reread)
            assert overlaid == reread, (market_id, column)
        assert market.outcome == settlement_for(stored[market_id]), market_id
