"""Portfolio lifecycle: archiving waits for open positions to close, deleting a portfolio keeps
the other side's transfer record, and stored totals are right after a crash between fills."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from prescient_pipeline.cli import main
from prescient_pipeline.services import execution
from prescient_pipeline.services import portfolios as svc
from prescient_pipeline.services.reports import unbalanced_portfolios

from .test_execution import add_signals, portfolio, rows, store, wire_market


@pytest.fixture
def cli(engine, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))

    def run(*argv):
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_archiving_with_open_positions_is_refused_in_one_line(engine, cli):
    store(engine, [wire_market("7701", "0.5", "0.5", bid="0.49", ask="0.5")])
    pid = portfolio(engine, name="holder")
    add_signals(engine, pid, [("7701", "YES", 50)])
    assert execution.execute_portfolio(engine, pid).executed == 1
    before = rows(engine, "SELECT * FROM portfolios")

    code, out, err = cli("portfolio", "archive", str(pid))

    assert code == 2 and out == ""
    assert err.strip().splitlines() == [
        f"error: portfolio {pid} has 1 open position; pause it and archive once they are sold or settled"]
    assert rows(engine, "SELECT * FROM portfolios") == before
    # Paused, it keeps being marked and settled; without positions it archives.
    assert cli("portfolio", "pause", str(pid))[0] == 0
    empty = portfolio(engine, name="empty")
    assert svc.set_status(engine, empty, "archived")["status"] == "archived"


def test_deleting_a_portfolio_keeps_the_other_sides_transfer_record(engine, cli):
    giver, taker = portfolio(engine, name="giver"), portfolio(engine, name="taker")
    svc.transfer(engine, giver, taker, "125.5", reason="rebalance")

    code, _, err = cli("portfolio", "delete", str(giver), "--yes")
    assert code == 0, err

    (log,) = rows(engine, "SELECT from_portfolio_id, from_portfolio_name, to_portfolio_id, to_portfolio_name, "
                          "amount, reason FROM portfolio_rebalancing_log")
    assert tuple(log) == (None, "giver", taker, "taker", Decimal("125.5"), "rebalance")
    # The taker's books still explain its cash: 1000 + 125.5 received.
    t = svc.get_portfolio(engine, taker)
    assert (t["current_balance"], t["net_transfers"]) == (Decimal("1125.5"), Decimal("125.5"))
    assert unbalanced_portfolios(engine) == []
    code, out, _ = cli("portfolio", "show", str(taker), "--json")
    (shown,) = json.loads(out)["transfers"]
    assert (shown["direction"], Decimal(str(shown["amount"])), shown["counterparty"], shown["counterparty_id"]) == (
        "in", Decimal("125.5"), "giver", None)
    code, out, _ = cli("portfolio", "show", str(taker))
    assert "giver (deleted)" in out


def test_stored_totals_are_right_after_a_crash_between_fills(engine, monkeypatch):
    store(engine, [wire_market(m, "0.4", "0.6", bid="0.39", ask="0.41") for m in ("7801", "7802", "7803")])
    pid = portfolio(engine, name="crashy")
    add_signals(engine, pid, [("7801", "YES", 41), ("7802", "YES", 41), ("7803", "NO", 61)])
    real = execution._execute_units
    calls = []

    def crash_after_the_first_unit(*args, **kwargs):
        if calls:
            raise SystemExit("killed between fills")
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(execution, "_execute_units", crash_after_the_first_unit)
    with pytest.raises(SystemExit):
        execution.execute_portfolio(engine, pid)

    # The first unit committed: 41 at the ask 0.41 buys 100 shares, marked at 0.40 -> 40,
    # unrealized 40 - 41 = -1. The stored totals say so without any later run.
    p = svc.get_portfolio(engine, pid)
    assert (p["current_balance"], p["total_invested"], p["unrealized_pnl"], p["total_profit_loss"]) == (
        Decimal(959), Decimal(41), Decimal(-1), Decimal(-1))
    assert unbalanced_portfolios(engine) == []

    monkeypatch.setattr(execution, "_execute_units", real)
    assert execution.execute_portfolio(engine, pid).executed == 2
    # 7802 like 7801; 7803 NO at 1 - 0.39 = 0.61: 61 buys 100 shares marked at 0.60 -> 60, -1.
    p = svc.get_portfolio(engine, pid)
    assert (p["current_balance"], p["total_invested"], p["unrealized_pnl"], p["total_profit_loss"]) == (
        Decimal(857), Decimal(143), Decimal(-3), Decimal(-3))


@pytest.mark.slow  # migrates a scratch database from nothing (about ten seconds)
def test_the_migration_names_existing_transfers_and_keeps_them_past_a_deletion(database_url):
    import uuid

    from alembic import command
    from sqlalchemy import create_engine, text

    from prescient_pipeline.db import embedded, migrate
    from prescient_pipeline.db.urls import sqlalchemy_url, with_database

    name = f"prescient_migrate_{uuid.uuid4().hex[:10]}"
    embedded.ensure_database(database_url, name)
    scratch = create_engine(sqlalchemy_url(with_database(database_url, name)))
    try:
        def to(revision: str) -> None:
            with scratch.begin() as conn:
                cfg = migrate._config()
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)

        to("0004")
        with scratch.begin() as conn:
            conn.execute(text("INSERT INTO portfolios (portfolio_id, name, strategy_type, initial_balance, "
                              "current_balance) VALUES (1, 'a', 'momentum', 100, 90), (2, 'b', 'momentum', 100, 110)"))
            conn.execute(text("INSERT INTO portfolio_rebalancing_log (from_portfolio_id, to_portfolio_id, amount) "
                              "VALUES (1, 2, 10)"))
        to("head")
        with scratch.begin() as conn:
            conn.execute(text("DELETE FROM portfolios WHERE portfolio_id = 1"))
            log = conn.execute(text("SELECT from_portfolio_id, from_portfolio_name, to_portfolio_id, "
                                    "to_portfolio_name, amount FROM portfolio_rebalancing_log")).all()
        assert [tuple(r) for r in log] == [(None, "a", 2, "b", Decimal(10))]
    finally:
        scratch.dispose()
        embedded.drop_database(database_url, name)
