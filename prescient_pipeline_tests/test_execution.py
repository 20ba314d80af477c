"""Execution of pending signals against the real database: fills, risk rejections, all-or-none
baskets, re-runs, concurrent runs and a crash in the middle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import text

from prescient_pipeline.db.schema import trading_signals
from prescient_pipeline.polymarket.parser import parse_markets
from prescient_pipeline.services import portfolios as svc
from prescient_pipeline.services.execution import execute_portfolio
from prescient_pipeline.services.market_store import write_refresh
from prescient_pipeline.services.reports import unbalanced_portfolios

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
DAY = T0.date()


def wire_market(market_id: str, yes: str, no: str, *, bid=None, ask=None, closed=False,
                accepting=True, event_id: str = "90001", **fields) -> dict:
    """A Gamma /markets object in the wire format (JSON lists inside strings); `fields`
    override or add wire keys (endDate, umaResolutionStatus, ...)."""
    return {
        "id": market_id, "question": f"Question {market_id}?", "conditionId": f"0xc{market_id}",
        "slug": f"q-{market_id}", "outcomes": '["Yes", "No"]', "outcomePrices": json.dumps([yes, no]),
        "clobTokenIds": json.dumps([f"{market_id}01", f"{market_id}02"]),
        "bestBid": bid, "bestAsk": ask, "active": True, "closed": closed, "acceptingOrders": accepting,
        "liquidityNum": 5000, "volumeNum": 20000, "endDate": "2026-06-30T00:00:00Z",
        "events": [{"id": event_id, "title": f"Event {event_id}", "active": True, "closed": False}],
        **fields,
    }


def store(engine, wire: list[dict], at: datetime = T0) -> None:
    """Write markets as a refresh would: the markets table plus one snapshot each (the clock)."""
    parsed = parse_markets(wire)
    assert not parsed.rejected, parsed.rejected
    write_refresh(engine, parsed.events, parsed.markets, at)


def portfolio(engine, name="book", strategy="momentum", balance="1000", config=None, **limits) -> int:
    return svc.create_portfolio(engine, svc.NewPortfolio.parse(
        name=name, strategy=strategy, balance=balance, config=config, **limits))["portfolio_id"]


def add_signals(engine, pid: int, specs: list[tuple], *, as_of: datetime = T0, group_id=None,
                strategy="momentum", cycle_date: date = DAY) -> list[int]:
    """specs: (market_id, side, amount[, price_seen]); returns the signal ids in order."""
    rows = [{
        "portfolio_id": pid, "strategy_type": strategy, "cycle_date": cycle_date, "as_of": as_of,
        "market_id": m, "side": side, "amount": Decimal(str(amount)),
        "price_seen": Decimal(str(rest[0])) if rest else None, "group_id": group_id, "reason": "test",
    } for m, side, amount, *rest in specs]
    with engine.begin() as conn:
        return list(conn.execute(trading_signals.insert().returning(trading_signals.c.signal_id), rows).scalars())


def one(engine, sql: str, **params):
    with engine.connect() as conn:
        return conn.execute(text(sql), params).one()


def rows(engine, sql: str, **params) -> list:
    with engine.connect() as conn:
        return conn.execute(text(sql), params).all()


def ledger_state(engine) -> dict:
    """Everything execution may write, except signal rows."""
    return {
        "trades": rows(engine, "SELECT * FROM trades ORDER BY trade_id"),
        "positions": rows(engine, "SELECT * FROM portfolio_positions ORDER BY position_id"),
        "portfolios": rows(engine, "SELECT portfolio_id, current_balance, total_fees, trade_count, realized_pnl "
                                   "FROM portfolios ORDER BY portfolio_id"),
    }


# --- golden fills ------------------------------------------------------------------------------

def test_golden_fills_yes_at_ask_fallback_with_slippage_and_no_at_one_minus_bid(engine):
    store(engine, [
        wire_market("1001", "0.49", "0.51", bid="0.48", ask="0.5"),   # a book: YES fills at the ask
        wire_market("1002", "0.395", "0.605"),                        # no book: outcome price + slippage
        wire_market("1003", "0.76", "0.24", bid="0.75", ask="0.77"),  # NO fills at 1 - best bid
    ])
    pid = portfolio(engine, config={"fee_rate": 0.04, "slippage_bps": 50})
    a, b, c = add_signals(engine, pid, [("1001", "YES", 100, "0.5"), ("1002", "YES", "40.96", "0.4"),
                                        ("1003", "NO", "25.75", "0.25")])

    report = execute_portfolio(engine, pid)
    assert (report.executed, report.rejected, report.skipped) == (3, 0, 0)

    trades = {r.signal_id: r for r in rows(engine, "SELECT * FROM trades ORDER BY trade_id")}
    # 1001 YES at the ask 0.50 (a top of book, no depth). The portfolio's fee_rate 0.04 overrides
    # the market's schedule: per share 0.04 * 0.5 * 0.5 = 0.01, so a share costs 0.51:
    # 100 / 0.51 = 196.07843137 shares, notional 98.039216, fee 1.9607843 -> 1.9608 (4 dp):
    # 100.000016 is past the amount, so shares are given back: 0.000016 / 0.51 -> 3138 quanta,
    # 196.07839999 shares, notional 98.0391999995 -> 98.0392, fee 1.96078400 -> 1.9608:
    # exactly 100.
    t = trades[a]
    assert (t.action, t.side, t.price, t.shares) == ("buy", "YES", Decimal("0.5"), Decimal("196.07839999"))
    assert (t.amount, t.fee, t.cash_delta, t.price_seen) == (
        Decimal(100), Decimal("1.9608"), Decimal(-100), Decimal("0.5"))
    # mid (0.48 + 0.50) / 2 = 0.49: slippage 98.0392 - 196.07839999 * 0.49 (96.078416) = 1.960784
    assert (t.evidence, t.mid_price, t.slippage, t.requested_amount) == (
        "top_of_book", Decimal("0.49"), Decimal("1.960784"), Decimal(100))
    assert t.levels == [["0.50000000", "196.07839999"]]
    # 1002 has no book: 0.395 + the 50 bps half-spread = 0.40 (evidence history). Fee per share
    # 0.04 * 0.4 * 0.6 = 0.0096, a share costs 0.4096, so 40.96 buys exactly 100 shares and the
    # fee is 0.96.
    t = trades[b]
    assert (t.price, t.shares, t.fee, t.cash_delta, t.evidence, t.mid_price) == (
        Decimal("0.4"), Decimal(100), Decimal("0.96"), Decimal("-40.96"), "history", None)
    # 1003 NO at 1 - 0.75 = 0.25. Fee per share 0.04 * 0.25 * 0.75 = 0.0075, a share costs
    # 0.2575: 25.75 buys 100 shares, fee 0.75.
    t = trades[c]
    assert (t.side, t.price, t.shares, t.fee, t.cash_delta) == (
        "NO", Decimal("0.25"), Decimal(100), Decimal("0.75"), Decimal("-25.75"))
    assert all(t.executed_at == T0 for t in trades.values()), "ledger time is market time"

    positions = {r.signal_id: r for r in rows(engine, "SELECT * FROM portfolio_positions")}
    p = positions[a]
    # Cost basis is the whole amount paid, fee included. Marked at the displayed price, the mid
    # 0.49, which is also its entry mark: 196.07839999 * 0.49 = 96.0784159951 -> 96.078416;
    # unrealized 96.078416 - 100 = -3.921584. At the bid 0.48: 94.117632 (94.1176319952).
    assert (p.status, p.shares, p.avg_price, p.cost_basis, p.entry_fee) == (
        "open", Decimal("196.07839999"), Decimal("0.5"), Decimal(100), Decimal("1.9608"))
    assert (p.current_price, p.entry_mark, p.market_value, p.unrealized_pnl, p.liquidation_value) == (
        Decimal("0.49"), Decimal("0.49"), Decimal("96.078416"), Decimal("-3.921584"), Decimal("94.117632"))
    # NO is marked at 1 - the YES mid (0.75 + 0.77) / 2 = 0.24: 100 * 0.24 = 24, unrealized
    # 24 - 25.75 = -1.75; at its bid 1 - 0.77 = 0.23: 23.
    p = positions[c]
    assert (p.side, p.cost_basis, p.market_value, p.unrealized_pnl, p.liquidation_value) == (
        "NO", Decimal("25.75"), Decimal(24), Decimal("-1.75"), Decimal(23))
    assert positions[b].cost_basis == Decimal("40.96")
    assert {p.position_id for p in positions.values()} == {t.position_id for t in trades.values()}

    # Cash 1000 - 100 - 40.96 - 25.75 = 833.29; fees 1.9608 + 0.96 + 0.75 = 3.6708.
    pf = svc.get_portfolio(engine, pid)
    assert (pf["current_balance"], pf["total_fees"], pf["trade_count"]) == (Decimal("833.29"), Decimal("3.6708"), 3)
    assert pf["total_invested"] == Decimal("166.71")

    for sid in (a, b, c):
        s = one(engine, "SELECT executed, executed_at, trade_id, rejection_reason FROM trading_signals "
                        "WHERE signal_id = :s", s=sid)
        assert (s.executed, s.executed_at, s.trade_id, s.rejection_reason) == (True, T0, trades[sid].trade_id, None)
    assert unbalanced_portfolios(engine) == []


# --- risk rejections ---------------------------------------------------------------------------

# (portfolio settings, signals executed first, the signal under test, expected reason)
REJECTIONS = {
    "insufficient cash": (dict(balance="50"), [], ("2001", "YES", 100), "insufficient cash: need 100, have 50"),
    "max_position_size": (dict(max_position_size="60"), [], ("2001", "YES", 100),
                          "amount 100 exceeds max_position_size 60"),
    "max_total_exposure": (dict(max_total_exposure="150"), [("2002", "YES", 100)], ("2001", "YES", 100),
                           "exposure 200 would exceed max_total_exposure 150"),
    "max_positions": (dict(max_positions="1"), [("2002", "YES", 10)], ("2001", "YES", 10),
                      "already at max_positions 1"),
    "already holds market": (dict(), [("2001", "YES", 10)], ("2001", "NO", 10), "already holds market 2001"),
    "paused portfolio": (dict(paused=True), [], ("2001", "YES", 10), "portfolio paused"),
    "market closed": (dict(), [], ("2003", "YES", 10), "2003: market closed"),
    "not accepting orders": (dict(), [], ("2004", "YES", 10), "2004: market not accepting orders"),
    "stale signal": (dict(as_of=T0 - timedelta(hours=24, minutes=1)), [], ("2001", "YES", 10), "stale signal: as of"),
}


@pytest.mark.parametrize("case", list(REJECTIONS))
def test_each_rejection_is_stored_on_the_signal_and_nothing_else_is_written(engine, case):
    settings, before, under_test, reason = REJECTIONS[case]
    store(engine, [
        wire_market("2001", "0.5", "0.5", bid="0.49", ask="0.51"),
        wire_market("2002", "0.5", "0.5", bid="0.49", ask="0.51"),
        wire_market("2003", "0.5", "0.5", bid="0.49", ask="0.51", closed=True),
        wire_market("2004", "0.5", "0.5", bid="0.49", ask="0.51", accepting=False),
    ])
    settings = dict(settings)
    paused, as_of = settings.pop("paused", False), settings.pop("as_of", T0)
    pid = portfolio(engine, balance=settings.pop("balance", "1000"), **settings)
    if before:
        add_signals(engine, pid, before)
        assert execute_portfolio(engine, pid).executed == len(before)
    if paused:
        svc.set_status(engine, pid, "paused", "test")
    state = ledger_state(engine)
    (sid,) = add_signals(engine, pid, [under_test], as_of=as_of)

    report = execute_portfolio(engine, pid)

    assert (report.executed, report.rejected) == (0, 1)
    s = one(engine, "SELECT executed, executed_at, trade_id, rejection_reason FROM trading_signals WHERE signal_id = :s",
            s=sid)
    assert (s.executed, s.executed_at, s.trade_id) == (False, None, None)
    assert reason in s.rejection_reason
    assert ledger_state(engine) == state, "a rejection writes nothing but the reason"
    assert execute_portfolio(engine, pid).rejected == 0, "a rejected signal is not tried again"


# --- arbitrage baskets -------------------------------------------------------------------------

@pytest.mark.parametrize("failing", ["cash", "closed market"])
def test_basket_whose_last_leg_fails_fills_no_leg_and_every_leg_carries_the_reason(engine, failing):
    store(engine, [wire_market(m, "0.3", "0.7", bid="0.29", ask="0.3", event_id="91000",
                               closed=(failing == "closed market" and m == "3003"))
                   for m in ("3001", "3002", "3003")])
    pid = portfolio(engine, strategy="arbitrage", balance="250" if failing == "cash" else "1000")
    legs = add_signals(engine, pid, [("3001", "YES", 100), ("3002", "YES", 100), ("3003", "YES", 100)],
                       group_id="basket-1", strategy="arbitrage")
    state = ledger_state(engine)

    report = execute_portfolio(engine, pid)

    reasons = {r.signal_id: r for r in rows(engine, "SELECT signal_id, executed, rejection_reason FROM trading_signals")}
    expected = ("leg 3/3 (3003 YES): insufficient cash: need 100, have 50" if failing == "cash"
                else "3003: market closed")
    assert (report.executed, report.rejected) == (0, 3)
    assert all(not reasons[s].executed and reasons[s].rejection_reason == expected for s in legs)
    assert ledger_state(engine) == state


def test_basket_that_passes_fills_every_leg_in_one_go(engine):
    store(engine, [wire_market(m, "0.3", "0.7", bid="0.29", ask="0.3", event_id="91000") for m in ("3001", "3002")])
    pid = portfolio(engine, strategy="arbitrage")
    legs = add_signals(engine, pid, [("3001", "YES", 30), ("3002", "YES", 30), ("3002", "NO", 70)],
                       group_id="basket-2", strategy="arbitrage")
    assert execute_portfolio(engine, pid).executed == 3
    # Arbitrage may hold both sides of one market: one position per market side.
    held = rows(engine, "SELECT market_id, side FROM portfolio_positions ORDER BY market_id, side")
    assert [tuple(r) for r in held] == [("3001", "YES"), ("3002", "NO"), ("3002", "YES")]
    assert one(engine, "SELECT count(*) AS n FROM trading_signals WHERE executed AND signal_id = ANY(:ids)",
               ids=legs).n == 3


# --- re-runs, concurrency, crashes -------------------------------------------------------------

def test_rerunning_execution_fills_nothing_twice(engine):
    store(engine, [wire_market(str(4000 + i), "0.5", "0.5", bid="0.49", ask="0.5") for i in range(5)])
    pid = portfolio(engine)
    add_signals(engine, pid, [(str(4000 + i), "YES", 10) for i in range(5)])
    assert execute_portfolio(engine, pid).executed == 5
    state = ledger_state(engine)
    for _ in range(2):
        again = execute_portfolio(engine, pid)
        assert (again.executed, again.rejected) == (0, 0)
    assert ledger_state(engine) == state


def test_two_concurrent_executions_fill_each_signal_once_and_one_position_per_market(engine):
    markets = [str(5000 + i) for i in range(40)]
    store(engine, [wire_market(m, "0.5", "0.5", bid="0.49", ask="0.5") for m in markets])
    pid = portfolio(engine, balance="100000", max_positions="1000")
    # Every market twice (YES then NO), interleaved, so both runs contend for every market.
    ids = add_signals(engine, pid, [(m, side, 10) for m in markets for side in ("YES", "NO")])

    barrier = threading.Barrier(2)
    reports, errors = [], []

    def run():
        try:
            barrier.wait()
            reports.append(execute_portfolio(engine, pid))
        except Exception as exc:  # surfaced below; a thread's exception would otherwise vanish
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert sum(r.executed for r in reports) == 40 and sum(r.rejected for r in reports) == 40
    assert one(engine, "SELECT count(*) AS n FROM (SELECT signal_id FROM trades WHERE action = 'buy' "
                       "GROUP BY signal_id HAVING count(*) > 1) d").n == 0
    assert one(engine, "SELECT count(*) AS n FROM (SELECT market_id FROM portfolio_positions WHERE status = 'open' "
                       "GROUP BY portfolio_id, market_id HAVING count(*) > 1) d").n == 0
    # The outcome is the sequential one: the first signal of each market (YES) fills.
    executed = {r.signal_id for r in rows(engine, "SELECT signal_id FROM trading_signals WHERE executed")}
    assert executed == set(ids[0::2])
    assert all("already holds market" in r.rejection_reason
               for r in rows(engine, "SELECT rejection_reason FROM trading_signals WHERE NOT executed"))
    assert svc.get_portfolio(engine, pid)["current_balance"] == Decimal(100000 - 40 * 10)
    assert unbalanced_portfolios(engine) == []


CRASH_SIGNALS = 300
EXECUTE = "\n".join([
    "import sys",
    "from prescient_pipeline.db.engine import get_engine",
    "from prescient_pipeline.services.execution import execute_portfolio",
    "execute_portfolio(get_engine(), int(sys.argv[1]))",
])


def _executed(engine) -> int:
    return one(engine, "SELECT count(*) AS n FROM trading_signals WHERE executed").n


def _wait_for_backend_gone(engine, app_name: str, timeout: float = 10.0) -> None:
    """The killed client's server backend rolls back its open transaction when it notices."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if one(engine, "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = :a", a=app_name).n == 0:
            return
        time.sleep(0.05)
    raise AssertionError(f"the killed process' database session ({app_name}) did not end")


def test_sigkill_mid_execution_leaves_whole_fills_only_and_a_rerun_completes(engine, database_url):
    markets = [str(600000 + i) for i in range(CRASH_SIGNALS)]
    store(engine, [wire_market(m, "0.5", "0.5", bid="0.49", ask="0.5") for m in markets])
    initial = Decimal(1_000_000)
    pid = portfolio(engine, balance=str(initial), max_positions=str(CRASH_SIGNALS))
    ids = add_signals(engine, pid, [(m, "YES", 10 + i % 7) for i, m in enumerate(markets)])

    app_name = f"crash-test-{os.getpid()}"
    env = {**os.environ, "PRESCIENT_DATABASE_URL": database_url, "PGAPPNAME": app_name}
    proc = subprocess.Popen([sys.executable, "-c", EXECUTE, str(pid)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while _executed(engine) < CRASH_SIGNALS // 10:
            assert proc.poll() is None, f"execution ended before it could be killed: {proc.stderr.read()!r}"
            assert time.monotonic() < deadline, "execution did not get going"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
        proc.stderr.close()
    _wait_for_backend_gone(engine, app_name)

    done = _executed(engine)
    assert 0 < done < CRASH_SIGNALS, "killed midway"
    per_signal = rows(engine, """
        SELECT s.signal_id, s.executed, s.trade_id, s.rejection_reason, s.amount,
               (SELECT count(*) FROM trades t WHERE t.signal_id = s.signal_id AND t.action = 'buy') AS buys,
               (SELECT min(t.trade_id) FROM trades t WHERE t.signal_id = s.signal_id) AS first_trade,
               (SELECT count(*) FROM portfolio_positions p WHERE p.signal_id = s.signal_id) AS positions
        FROM trading_signals s ORDER BY s.signal_id""")
    for s in per_signal:
        assert s.rejection_reason is None
        if s.executed:
            assert (s.buys, s.positions, s.trade_id) == (1, 1, s.first_trade), s
        else:
            assert (s.buys, s.positions, s.trade_id) == (0, 0, None), s
    spent = sum((s.amount for s in per_signal if s.executed), Decimal(0))
    assert one(engine, "SELECT count(*) AS n FROM trades").n == done
    assert svc.get_portfolio(engine, pid)["current_balance"] == initial - spent
    assert unbalanced_portfolios(engine) == []

    report = execute_portfolio(engine, pid)
    assert (report.executed, report.rejected) == (CRASH_SIGNALS - done, 0)
    assert one(engine, "SELECT count(*) AS n FROM trades WHERE action = 'buy'").n == CRASH_SIGNALS
    assert one(engine, "SELECT count(DISTINCT signal_id) AS n FROM trades").n == CRASH_SIGNALS
    assert one(engine, "SELECT count(*) AS n FROM portfolio_positions WHERE status = 'open'").n == CRASH_SIGNALS
    assert _executed(engine) == len(ids)
    total = one(engine, "SELECT sum(amount) AS s FROM trading_signals").s
    assert svc.get_portfolio(engine, pid)["current_balance"] == initial - total
    assert unbalanced_portfolios(engine) == []
