"""Resolution that never misses: Gamma is read about every held market at least hourly whatever
its book says, a resolution settles before any exit and at exactly the payout, a market known
nowhere is flagged (and `prescient status` fails), and positions waiting on a resolution keep
their last real mark."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from prescient_pipeline.cli import main
from prescient_pipeline.polymarket.client import PolymarketClient
from prescient_pipeline.services import portfolios as svc
from prescient_pipeline.services.execution import execute_portfolio
from prescient_pipeline.services.prices import update_prices
from prescient_pipeline.services.reports import unbalanced_portfolios

from .replay_server import ReplayServer
from .test_execution import T0, add_signals, portfolio, rows, store, wire_market
from .test_prices_service import LATER, T1, book, position

STOP_LOSS = {"stop_loss_percentage": 0.2}


def open_position(engine, market_id: str, amount, config=None, name="held", **fields) -> int:
    """Store the market at T0 (YES 0.48, book 0.47/0.49, ends LATER) and buy YES at the ask."""
    store(engine, [wire_market(market_id, "0.48", "0.52", bid="0.47", ask="0.49", endDate=LATER, **fields)])
    pid = portfolio(engine, name=name, config=config)
    add_signals(engine, pid, [(market_id, "YES", amount)])
    assert execute_portfolio(engine, pid).executed == 1
    return pid


class Venue:
    """One replay server for several updates, its answers changed between them."""

    def __init__(self, markets=(), books=None, now=T1):
        self.server = ReplayServer(markets=list(markets), books=books or {}, now=now)

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc):
        self.server.stop()

    def update(self, engine, now=None):
        if now is not None:
            self.server.now = now
        self.server.clear_requests()
        with PolymarketClient(self.server.url, self.server.url, retries=0) as client:
            return update_prices(engine, client)

    def gamma_asked(self) -> list[str]:
        # A batch is asked twice when Gamma hides closed markets by default: once per market here.
        return sorted({i for r in self.server.requests_to("/markets") for i in r.query.get("id", [])})


def test_an_early_resolution_settles_at_exactly_one_before_a_stop_loss_on_a_stale_book(engine):
    # 5 at the ask 0.49 buys 5 / 0.49 = 10.204081632... -> 10.20408163 shares (rounded down).
    pid = open_position(engine, "7601", 5, STOP_LOSS)
    # The market resolved YES long before its end date; the CLOB still answers with a stale book
    # whose bid 0.30 is a 37.5% loss: a stop loss would sell at it.
    won = wire_market("7601", "1", "0", closed=True, umaResolutionStatus="resolved", acceptingOrders=False,
                      endDate=LATER)
    with Venue([won], dict([book("0.30", "0.32", "760101")])) as venue:
        report = venue.update(engine)
        assert venue.gamma_asked() == ["7601"], "asked although the book answers and the end date is far"

    assert report.settlements == Counter({"yes_won": 1}) and not report.exits
    (t,) = rows(engine, "SELECT * FROM trades WHERE action <> 'buy'")
    # $1 a share, recorded at exactly 1 (proceeds / shares = 10.204082 / 10.20408163 would be
    # 1.00000004); proceeds 10.20408163 * 1 rounded to the cent's 6 dp: 10.204082.
    assert (t.action, t.reason, t.shares, t.price, t.cash_delta) == (
        "settle", "settlement_yes_won", Decimal("10.20408163"), Decimal(1), Decimal("10.204082"))
    assert str(t.price).rstrip("0").rstrip(".") == "1"
    p = position(engine, "7601", pid)
    assert (p.status, p.close_reason, p.exit_price) == ("closed", "settlement_yes_won", Decimal(1))
    # Cash 1000 - 5 + 10.204082.
    assert svc.get_portfolio(engine, pid)["current_balance"] == Decimal("1005.204082")
    assert unbalanced_portfolios(engine) == []


def test_gamma_is_read_about_every_held_market_at_least_hourly_and_a_resolution_then_settles(engine):
    pid = open_position(engine, "7602", 49)  # 49 / 0.49 = 100 shares
    still_open = wire_market("7602", "0.6", "0.4", endDate=LATER)
    books = dict([book("0.58", "0.62", "760201")])
    with Venue([still_open], books) as venue:
        first = venue.update(engine)
        assert venue.gamma_asked() == ["7602"] and not first.settlements
        # An open market's marks come from its book, not from Gamma's lagging outcome prices:
        # mid (0.58 + 0.62) / 2 = 0.60, 100 * 0.60 = 60.
        assert position(engine, "7602", pid).market_value == Decimal(60)

        # It resolves NO early, while its book keeps answering. Read 5 minutes ago: not due yet.
        venue.server.markets = [wire_market("7602", "0", "1", closed=True, umaResolutionStatus="resolved",
                                            endDate=LATER)]
        soon = venue.update(engine, now=T1 + timedelta(minutes=5))
        assert venue.gamma_asked() == [] and not soon.settlements

        # An hour after the last read it is asked again, and settles on that update.
        hourly = venue.update(engine, now=T1 + timedelta(minutes=60))
        assert venue.gamma_asked() == ["7602"]
    assert hourly.settlements == Counter({"no_won": 1})
    p = position(engine, "7602", pid)
    assert (p.status, p.close_reason, p.exit_price, p.proceeds) == ("closed", "settlement_no_won", Decimal(0), Decimal(0))
    assert rows(engine, "SELECT gamma_checked_at FROM market_resolution_checks") == [(T1 + timedelta(minutes=60),)]
    assert unbalanced_portfolios(engine) == []


def test_positions_waiting_on_a_resolution_keep_their_last_real_mark(engine):
    pid = open_position(engine, "7603", 49)  # 100 shares
    with Venue([], dict([book("0.58", "0.62", "760301")])) as venue:
        venue.update(engine)
        marked = position(engine, "7603", pid)
        assert (marked.current_price, marked.market_value, marked.unrealized_pnl) == (
            Decimal("0.6"), Decimal(60), Decimal(11))
        # Closed with no winner yet: ["0", "0"] is no price, the position waits at 0.60.
        venue.server.books = {}
        venue.server.markets = [wire_market("7603", "0", "0", closed=True, endDate=LATER)]
        report = venue.update(engine, now=T1 + timedelta(minutes=5))
    assert report.flags == Counter({"no_winner": 1}) and not report.settlements
    p = position(engine, "7603", pid)
    assert (p.status, p.settlement_flag, p.current_price, p.market_value, p.unrealized_pnl, p.last_marked_at) == (
        "open", "no_winner", Decimal("0.6"), Decimal(60), Decimal(11), T1)
    # 1000 - 49 + 60 = 1011 in total; unrealized 60 - 49 = 11.
    assert svc.get_portfolio(engine, pid)["unrealized_pnl"] == Decimal(11)
    assert unbalanced_portfolios(engine) == []


@pytest.fixture
def cli(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))

    def run(*argv):
        code = main([*argv, "--json"])
        out, _ = capsys.readouterr()
        return code, json.loads(out)

    return run


def test_a_market_known_nowhere_is_flagged_shown_and_fails_status(engine, cli, monkeypatch):
    pid = open_position(engine, "7604", 49, STOP_LOSS)
    # Neither Gamma nor the CLOB knows 7604 any more.
    with Venue([], {}) as venue:
        report = venue.update(engine)
        assert report.missing == ["7604"] and not report.exits
        again = venue.update(engine, now=T1 + timedelta(minutes=5))
        assert again.missing == ["7604"] and venue.gamma_asked() == ["7604"], "a missing market is asked every time"
        monkeypatch.setenv("PRESCIENT_GAMMA_URL", venue.server.url)
        monkeypatch.setenv("PRESCIENT_CLOB_URL", venue.server.url)

        p = position(engine, "7604", pid)
        # Kept at its buy mark 0.48 (100 shares: 48), flagged, since the first update that missed it.
        assert (p.status, p.settlement_flag, p.market_value, p.last_marked_at) == ("open", "market_missing", Decimal(48), T0)
        assert rows(engine, "SELECT missing_since FROM market_resolution_checks") == [(T1,)]

        code, status = cli("status")
        assert code == 1
        assert [x for x in status["problems"] if "7604" in x] == [
            f"portfolio {pid} (held): YES position in market 7604 is known to neither Gamma nor the CLOB "
            f"since {T1.isoformat()}; kept at its last mark 0.48000000"]

        code, shown = cli("portfolio", "show", str(pid))
        assert code == 0 and [f["flag"] for f in shown["flagged_positions"]] == ["market_missing"]
        assert shown["positions"][0]["settlement_flag"] == "market_missing"
        code, reported = cli("report")
        assert code == 0 and [(f["market_id"], f["flag"]) for f in reported["flagged_positions"]] == [
            ("7604", "market_missing")]

        # It comes back: the flag and the missing record clear.
        venue.server.books = dict([book("0.50", "0.52", "760401")])
        venue.update(engine, now=T1 + timedelta(minutes=10))
        assert position(engine, "7604", pid).settlement_flag is None
        assert rows(engine, "SELECT missing_since FROM market_resolution_checks") == [(None,)]
        code, status = cli("status")
    assert code == 0, status["problems"]


def test_settlement_flags_show_in_the_cli(engine, cli):
    pid = open_position(engine, "7605", 49)
    disputed = wire_market("7605", "0.99", "0.01", umaResolutionStatus="disputed", endDate=LATER)
    with Venue([disputed], dict([book("0.98", "0.99", "760501")])) as venue:
        venue.update(engine)
    code, shown = cli("portfolio", "show", str(pid))
    assert [f["flag"] for f in shown["flagged_positions"]] == ["resolution_disputed"]
    code, reported = cli("report", "--portfolio", str(pid))
    assert [f["flag"] for f in reported["flagged_positions"]] == ["resolution_disputed"]


def test_a_portfolio_archived_with_open_positions_before_the_rule_still_settles(engine):
    pid = open_position(engine, "7606", 49)  # 100 shares
    with engine.begin() as conn:  # archived by an older version, positions and all
        conn.execute(text("UPDATE portfolios SET status = 'archived' WHERE portfolio_id = :p"), {"p": pid})
    won = wire_market("7606", "1", "0", closed=True, umaResolutionStatus="resolved", endDate=LATER)
    with Venue([won]) as venue:
        report = venue.update(engine)
    assert report.settlements == Counter({"yes_won": 1})
    # 1000 - 49 + 100 * $1: the winnings reach its cash.
    assert svc.get_portfolio(engine, pid)["current_balance"] == Decimal(1051)
    assert unbalanced_portfolios(engine) == []


def test_a_refresh_that_lists_a_held_market_counts_as_its_gamma_read(engine):
    from prescient_pipeline.services.market_refresh import refresh_markets

    pid = open_position(engine, "7607", 49)  # 100 shares
    # At T1 the hourly refresh lists the market's (still active) event, the market in it closed
    # and resolved YES: Gamma's word, read by the refresh.
    won = wire_market("7607", "1", "0", closed=True, umaResolutionStatus="resolved", endDate=LATER)
    event = {"id": "90001", "title": "Event 90001", "active": True, "closed": False, "markets": [won]}
    with ReplayServer(events=[event], now=T1) as server:
        with PolymarketClient(server.url, server.url, retries=0) as client:
            refresh_markets(engine, client)
    assert rows(engine, "SELECT market_id, gamma_checked_at FROM market_resolution_checks") == [("7607", T1)]

    # Five minutes on, the stale book still answers: Gamma is not asked again, and the
    # resolution the refresh stored settles the position.
    with Venue([], dict([book("0.30", "0.32", "760701")]), now=T1 + timedelta(minutes=5)) as venue:
        report = venue.update(engine)
        assert venue.gamma_asked() == []
    assert report.settlements == Counter({"yes_won": 1}) and not report.exits
    assert svc.get_portfolio(engine, pid)["current_balance"] == Decimal(1051)
