"""Execution and price updates against the real database with book depth, market rules and
per-market fees in the market rows: golden numbers by hand, the books balanced after each step."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import text

from prescient_pipeline.cli import main as cli_main
from prescient_pipeline.services import portfolios as svc
from prescient_pipeline.services.execution import execute_portfolio
from prescient_pipeline.services.reports import report, unbalanced_portfolios

from .test_execution import T0, add_signals, one, portfolio, rows, store, wire_market
from .test_prices_service import LATER, T1, book, run_update


def set_market(engine, market_id: str, **columns) -> None:
    """Set market columns as a refresh from the venue would (levels as [[price, size], ...])."""
    values = {k: json.dumps(v) if k in ("bids", "asks") else v for k, v in columns.items()}
    assignments = ", ".join(f"{k} = CAST(:{k} AS jsonb)" if k in ("bids", "asks") else f"{k} = :{k}" for k in values)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE markets SET {assignments} WHERE market_id = :m"), {**values, "m": market_id})


def trade_of(engine, signal_id: int):
    return one(engine, "SELECT * FROM trades WHERE signal_id = :s", s=signal_id)


def signal_of(engine, signal_id: int):
    return one(engine, "SELECT executed, rejection_reason FROM trading_signals WHERE signal_id = :s", s=signal_id)


def test_a_buy_walks_three_levels_and_a_thin_book_fills_partially(engine):
    store(engine, [wire_market("4001", "0.49", "0.51", bid="0.48", ask="0.5"),
                   wire_market("4002", "0.39", "0.61", bid="0.38", ask="0.4")])
    set_market(engine, "4001", bids=[["0.48", "100"]], asks=[["0.50", "100"], ["0.52", "100"], ["0.55", "200"]],
               tick_size="0.01", min_order_size="5", fees_enabled=False)
    set_market(engine, "4002", bids=[["0.38", "10"]], asks=[["0.40", "50"], ["0.41", "30"], ["0.60", "1000"]],
               tick_size="0.01", min_order_size="5", fees_enabled=False)
    pid = portfolio(engine, config={"max_slippage_bps": 500})
    deep, thin = add_signals(engine, pid, [("4001", "YES", 150, "0.5"), ("4002", "YES", 100, "0.4")])

    report_ = execute_portfolio(engine, pid)
    assert (report_.executed, report_.partial) == (2, 1)

    t = trade_of(engine, deep)
    # Limit 0.50 + 5% = 0.55. 100 @ 0.50 = 50, 100 @ 0.52 = 52, the 48 left buys
    # 48 / 0.55 = 87.27272727 shares @ 0.55 (47.9999999985): 287.27272727 shares for 150.
    assert t.levels == [["0.50000000", "100.00000000"], ["0.52000000", "100.00000000"],
                        ["0.55000000", "87.27272727"]]
    assert (t.evidence, t.shares, t.amount, t.requested_amount, t.fee) == (
        "depth", Decimal("287.27272727"), Decimal(150), Decimal(150), Decimal(0))
    # average 150 / 287.27272727 = 0.52215190; mid 0.49; slippage 150 - 140.763636 = 9.236364
    assert (t.price, t.mid_price, t.slippage) == (Decimal("0.5221519"), Decimal("0.49"), Decimal("9.236364"))

    t = trade_of(engine, thin)
    # Limit 0.40 + 5% = 0.45: 50 @ 0.40 = 20 and 30 @ 0.41 = 12.30 fill, the 0.60 level is past
    # the limit: 80 shares for 32.30 of the 100 asked; the rest is cancelled.
    assert (t.shares, t.amount, t.requested_amount, t.cash_delta) == (
        Decimal(80), Decimal("32.3"), Decimal(100), Decimal("-32.3"))
    # Cash falls by what was spent: 1000 - 150 - 32.30 = 817.70.
    assert svc.get_portfolio(engine, pid)["current_balance"] == Decimal("817.7")
    assert unbalanced_portfolios(engine) == []


def test_a_buy_below_the_minimum_order_size_is_rejected_with_that_reason(engine):
    store(engine, [wire_market("4101", "0.49", "0.51", bid="0.48", ask="0.5")])
    set_market(engine, "4101", min_order_size="5")
    pid = portfolio(engine)
    (sid,) = add_signals(engine, pid, [("4101", "YES", 2, "0.5")])
    assert execute_portfolio(engine, pid).rejections == {"below minimum order size": 1}
    # $2 at 0.50 is 4 shares, under the market's minimum of 5; nothing is written.
    assert signal_of(engine, sid) == (False, "4101: below minimum order size: 4 shares < 5")
    assert rows(engine, "SELECT * FROM trades") == []
    assert svc.get_portfolio(engine, pid)["current_balance"] == Decimal(1000)


def test_each_market_charges_its_own_fee_schedule_unless_the_portfolio_overrides_it(engine):
    store(engine, [wire_market(m, "0.495", "0.505", bid="0.49", ask="0.5") for m in ("4201", "4202", "4203")])
    set_market(engine, "4201", fees_enabled=True, fee_rate="0.05", fee_exponent="1")
    set_market(engine, "4202", fees_enabled=True, fee_rate="0.25", fee_exponent="2")
    set_market(engine, "4203", fees_enabled=False, fee_rate="0.05")
    pid = portfolio(engine)
    e1, e2, free = add_signals(engine, pid, [("4201", "YES", "10.25", "0.5"), ("4202", "YES", "10.3125", "0.5"),
                                             ("4203", "YES", 10, "0.5")])
    execute_portfolio(engine, pid)
    # exponent 1: 0.05 * 0.5 * 0.5 = 0.0125 a share, 0.5125 all in: 20 shares, fee 0.25
    assert (trade_of(engine, e1).shares, trade_of(engine, e1).fee) == (Decimal(20), Decimal("0.25"))
    # exponent 2: 0.25 * (0.25) ** 2 = 0.015625 a share, 0.515625 all in: 20 shares, fee 0.3125
    assert (trade_of(engine, e2).shares, trade_of(engine, e2).fee) == (Decimal(20), Decimal("0.3125"))
    # fee-free: 20 shares, no fee
    assert (trade_of(engine, free).shares, trade_of(engine, free).fee) == (Decimal(20), Decimal(0))
    assert svc.get_portfolio(engine, pid)["total_fees"] == Decimal("0.5625")

    override = portfolio(engine, name="what-if", config={"fee_rate": 0})
    (sid,) = add_signals(engine, override, [("4201", "YES", "10.25", "0.5")])
    execute_portfolio(engine, override)
    # the override (no fees) wins: 10.25 / 0.5 = 20.5 shares
    assert (trade_of(engine, sid).shares, trade_of(engine, sid).fee) == (Decimal("20.5"), Decimal(0))
    assert unbalanced_portfolios(engine) == []


def test_an_arbitrage_basket_buys_equal_shares_on_every_leg(engine):
    store(engine, [wire_market("4301", "0.39", "0.61", bid="0.38", ask="0.4", event_id="95"),
                   wire_market("4302", "0.54", "0.46", bid="0.53", ask="0.55", event_id="95")])
    set_market(engine, "4301", bids=[["0.38", "500"]], asks=[["0.40", "30"], ["0.50", "1000"]])
    set_market(engine, "4302", bids=[["0.53", "500"]], asks=[["0.55", "1000"]])
    pid = portfolio(engine, strategy="arbitrage")
    # The strategy sized 100 sets at the asks seen: 40 + 55 (equal shares at those prices).
    legs = add_signals(engine, pid, [("4301", "YES", 40, "0.40"), ("4302", "YES", 55, "0.55")],
                       group_id="arb-event-95", strategy="arbitrage")
    assert execute_portfolio(engine, pid).executed == 2
    first, second = (trade_of(engine, s) for s in legs)
    # 4301's book holds 30 shares within the limit 0.40 + 2% = 0.42 (the 0.50 level is past it),
    # so every leg buys 30: 30 @ 0.40 = 12 and 30 @ 0.55 = 16.50, one set of 30 shares for 28.50
    # that pays 30 whichever outcome wins. Equal dollars would have bought 30 and 100.
    assert (first.shares, first.amount) == (Decimal(30), Decimal(12))
    assert (second.shares, second.amount, second.requested_amount) == (Decimal(30), Decimal("16.5"), Decimal(55))
    assert unbalanced_portfolios(engine) == []


def test_a_buy_at_the_ask_in_an_unchanged_market_is_not_stopped_out_and_reports_show_liquidation(engine, capsys):
    # Book 0.40 / 0.50: bought at the ask 0.50 with the displayed price (the mid) 0.45.
    store(engine, [wire_market("4401", "0.45", "0.55", bid="0.4", ask="0.5", endDate=LATER)])
    pid = portfolio(engine, strategy="hybrid", config={"stop_loss_percentage": 0.15})
    add_signals(engine, pid, [("4401", "YES", 50, "0.5")], strategy="hybrid")
    execute_portfolio(engine, pid)
    p = one(engine, "SELECT * FROM portfolio_positions")
    # 100 shares; entry mark 0.45 (market value 45), at the bid 0.40: 40.
    assert (p.shares, p.entry_mark, p.market_value, p.liquidation_value) == (
        Decimal(100), Decimal("0.45"), Decimal(45), Decimal(40))

    # Five minutes later the same book. Judged at the bid against the cost, the position is
    # (40 - 50) / 50 = -20%, past the 15% stop; judged by the market it has not moved.
    update = run_update(books=dict([book("0.4", "0.5", "440101")]), engine=engine)
    assert not update.exits and update.marked == 1
    pf = svc.get_portfolio(engine, pid)
    # cash 950; marked 950 + 45 = 995, at the bid 950 + 40 = 990
    assert (pf["current_balance"], pf["liquidation_value"]) == (Decimal(950), Decimal(990))
    (row,) = report(engine, pid)
    assert (row["total_value"], row["liquidation_value"]) == (Decimal(995), Decimal(990))
    assert cli_main(["report", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["portfolios"][0]["liquidation_value"] in (990, "990", "990.000000")
    assert cli_main(["portfolio", "show", str(pid)]) == 0
    shown = capsys.readouterr().out
    assert "liquidation_value" in shown and "990" in shown

    # The market falls: book 0.30 / 0.40, mid 0.35; 0.35 / 0.45 - 1 = -22% <= -15%: stop loss,
    # sold at the bid 0.30: 100 * 0.30 = 30, realized 30 - 50 = -20. The update stored the book's
    # levels (150 shares bid at 0.30), so the sale walked them: its evidence is depth.
    update = run_update(books=dict([book("0.3", "0.4", "440101")]), engine=engine, now=T1 + timedelta(hours=1))
    assert dict(update.exits) == {"stop_loss": 1}
    sale = one(engine, "SELECT * FROM trades WHERE action = 'sell'")
    assert (sale.price, sale.cash_delta, sale.realized_pnl, sale.evidence) == (
        Decimal("0.3"), Decimal(30), Decimal(-20), "depth")
    assert unbalanced_portfolios(engine) == []


# A book of market 4501's YES token whose bids hold 60 shares at 0.30 and nothing below.
THIN_BOOK = {"450101": {"market": "0xc4501", "asset_id": "450101", "timestamp": "1772442000000",
                        "bids": [{"price": "0.30", "size": "60"}], "asks": [{"price": "0.40", "size": "500"}]}}


def test_an_exit_the_bids_cannot_take_whole_sells_what_they_hold_and_keeps_the_rest(engine):
    store(engine, [wire_market("4501", "0.45", "0.55", bid="0.4", ask="0.5", endDate=LATER)])
    pid = portfolio(engine, config={"stop_loss_percentage": 0.15})
    add_signals(engine, pid, [("4501", "YES", 50, "0.5")])
    execute_portfolio(engine, pid)  # 100 shares for 50, entry mark 0.45
    # The market falls to 0.30 / 0.40 (mid 0.35, -22%) and the book's bids hold only 60 shares.
    run_update(books=THIN_BOOK, engine=engine)  # at T1

    sale = one(engine, "SELECT * FROM trades WHERE action = 'sell'")
    # 60 @ 0.30 = 18 (evidence depth); the 60 take 60/100 of the cost basis 50 = 30: realized -12.
    assert (sale.shares, sale.amount, sale.realized_pnl, sale.evidence, sale.levels) == (
        Decimal(60), Decimal(18), Decimal(-12), "depth", [["0.30000000", "60.00000000"]])
    p = one(engine, "SELECT * FROM portfolio_positions")
    # 40 shares stay open with cost basis 20, marked at the mid 0.35: 14, unrealized -6; at the bid 12.
    assert (p.status, p.shares, p.cost_basis, p.market_value, p.unrealized_pnl, p.liquidation_value, p.realized_pnl) == (
        "open", Decimal(40), Decimal(20), Decimal(14), Decimal(-6), Decimal(12), Decimal(-12))
    pf = svc.get_portfolio(engine, pid)
    # cash 950 + 18 = 968; total 968 + 14 = 982 = 1000 - 12 - 6; no round trip closed yet
    assert (pf["current_balance"], pf["realized_pnl"], pf["unrealized_pnl"], pf["liquidation_value"]) == (
        Decimal(968), Decimal(-12), Decimal(-6), Decimal(980))
    assert (pf["total_winning_trades"], pf["total_losing_trades"], pf["trade_count"]) == (0, 0, 2)
    assert unbalanced_portfolios(engine) == []

    # The next update sells the other 40 @ 0.30 = 12 (cost 20, realized -8): the position closes,
    # its round trip realized -20, one losing trade.
    run_update(books=THIN_BOOK, engine=engine, now=T1 + timedelta(hours=1))
    p = one(engine, "SELECT * FROM portfolio_positions")
    assert (p.status, p.realized_pnl, p.proceeds, p.close_reason) == ("closed", Decimal(-20), Decimal(30), "stop_loss")
    pf = svc.get_portfolio(engine, pid)
    assert (pf["current_balance"], pf["realized_pnl"], pf["total_losing_trades"]) == (Decimal(980), Decimal(-20), 1)
    assert unbalanced_portfolios(engine) == []
