"""Backtests: a portfolio in mode `backtest` replays imported history day by day.

Real PostgreSQL; the history is imported by the import service over real HTTP from the replay
server, which hands back every point of a token whatever window was asked (a later point is
always on offer and must never be used).
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pandas as pd
import pytest
from sqlalchemy import text

from prescient_pipeline.errors import InputError
from prescient_pipeline.polymarket.client import PolymarketClient
from prescient_pipeline.services.backtest import create_backtest, replay_all_through, replay_through, replayed_days
from prescient_pipeline.services.market_history import import_history
from prescient_pipeline.services.portfolios import NewPortfolio, create_portfolio
from prescient_pipeline.services.reports import unbalanced_portfolios

from .replay_server import ReplayServer

DAY1, DAY2 = date(2026, 11, 10), date(2026, 11, 11)
LISTED_AT = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
UNLIMITED = {"gamma": 100_000, "clob": 100_000}
# History has no liquidity and no book: a backtest on it turns those filters off.
CONFIG = {"market_min_liquidity": 0, "max_spread": None, "trade_amount": 100, "cycle_cron": "0 9 * * *"}


def at(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=timezone.utc)


def ts(day: date, hh: int, mm: int = 0) -> int:
    return int(at(day, hh, mm).timestamp())


def gamma_market(market_id: int, *, closed: bool = False, closed_time: str | None = None,
                 prices=("0.5", "0.5"), uma: str | None = None) -> dict:
    market = {
        "id": str(market_id), "conditionId": f"0xc{market_id}", "question": f"Market {market_id}?",
        "slug": f"m-{market_id}", "outcomes": '["Yes", "No"]', "outcomePrices": json.dumps(list(prices)),
        "clobTokenIds": json.dumps([f"{market_id}-yes", f"{market_id}-no"]), "active": True, "closed": closed,
        "archived": False, "startDate": "2026-11-01T00:00:00Z", "endDate": "2026-11-30T00:00:00Z",
        "volumeNum": 5000.0, "volume": "5000",
        "events": [{"id": str(market_id * 10), "title": f"Event {market_id}", "slug": f"e-{market_id}"}],
    }
    if closed_time:
        market["closedTime"] = closed_time
    if uma:
        market["umaResolutionStatus"] = uma
    return market


MARKETS = [
    # The favourite at 0.70 when day 1's cycle runs; resolved YES on day 2 at 14:30.
    gamma_market(201, closed=True, closed_time="2026-11-11 14:30:00+00", prices=("1", "0"), uma="resolved"),
    # A coin flip at day 1's cycle (no favourite); it moves to 0.70 at 09:30, after the cycle.
    gamma_market(202),
]
HISTORY = {
    "201-yes": [{"t": ts(DAY1 - timedelta(days=1), 20), "p": 0.70}, {"t": ts(DAY1, 11, 30), "p": 0.75},
                {"t": ts(DAY2, 10, 30), "p": 0.80}, {"t": ts(DAY2, 15, 10), "p": 0.99}],
    "202-yes": [{"t": ts(DAY1 - timedelta(days=1), 20), "p": 0.50}, {"t": ts(DAY1, 9, 30), "p": 0.70}],
}


@pytest.fixture
def history(engine):
    with ReplayServer(markets=MARKETS, price_history=HISTORY, now=LISTED_AT) as server:
        client = PolymarketClient(server.url, server.url, timeout=(1, 2), retries=1, backoff_factor=0.01,
                                  backoff_max=0.05, requests_per_10s=UNLIMITED)
        with client:
            import_history(engine, client, DAY1, DAY2, 60)
    return engine


def trades(engine, portfolio_id: int) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(text(
            "SELECT t.action, t.market_id, t.side, t.shares, t.price, t.amount, t.fee, t.cash_delta, t.reason, "
            "t.executed_at, t.evidence, t.observed_at, s.as_of AS signal_as_of FROM trades t "
            "LEFT JOIN trading_signals s ON s.signal_id = t.signal_id "
            "WHERE t.portfolio_id = :p ORDER BY t.executed_at, t.trade_id"), {"p": portfolio_id})]


def history_rows(engine, portfolio_id: int) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT snapshot_date, timestamp, cash, positions_value, total_value FROM portfolio_history "
            "WHERE portfolio_id = :p ORDER BY snapshot_date"), {"p": portfolio_id})]


def ledger(engine, portfolio_id: int) -> tuple:
    """Everything a replay writes for a portfolio, without ids or wall-clock columns."""
    with engine.connect() as conn:
        positions = [tuple(r) for r in conn.execute(text(
            "SELECT market_id, side, shares, avg_price, cost_basis, entry_mark, current_price, market_value, status, "
            "close_reason, opened_at, closed_at, realized_pnl FROM portfolio_positions WHERE portfolio_id = :p "
            "ORDER BY opened_at, market_id"), {"p": portfolio_id})]
        signals = [tuple(r) for r in conn.execute(text(
            "SELECT cycle_date, as_of, market_id, side, amount, price_seen, executed, rejection_reason "
            "FROM trading_signals WHERE portfolio_id = :p ORDER BY cycle_date, market_id"), {"p": portfolio_id})]
    trade_rows = [tuple(v for k, v in t.items()) for t in trades(engine, portfolio_id)]
    return trade_rows, positions, signals, history_rows(engine, portfolio_id)


# Hand-computed replay of momentum (band 0.55-0.85, $100 a trade, half-spread 50 bps = 0.005,
# no fee schedule on these markets), cycle 09:00, hourly history:
# Day 1, 09:00: 201 YES is 0.70 (the grid's 09:00 row: the 20:00 point of the day before), 202 is
#   0.50/0.50 (no favourite). Buy 201 YES at 0.70 + 0.005 = 0.705: 100 / 0.705 = 141.84397163
#   shares (8 places), cost $100, evidence `history`, marked at the history price 0.70.
#   12:00 (first grid time after the 11:30 point): marked 0.75. End of day: cash 900,
#   positions 141.84397163 * 0.75 = 106.382979 (6 places), total 1006.382979, P&L +6.382979.
# Day 2, 09:00: 202 YES is 0.70 (its 09:30 point of day 1): buy it as above, 141.84397163 shares.
#   201 settles YES at its recorded close, 14:30 (not at the 14:00 or 15:00 grid times):
#   141.84397163 * $1 = 141.843972. End of day: cash 900 - 100 + 141.843972 = 941.843972,
#   202 at 0.70: 99.290780, total 1041.134752, P&L 1041.134752 - 1006.382979 = 34.751773.
SHARES = Decimal("141.84397163")
GOLDEN_DAYS = [
    (DAY1, Decimal("1006.382979"), Decimal("6.382979"), 1, Decimal(0), 0, 0),
    (DAY2, Decimal("1041.134752"), Decimal("34.751773"), 1, Decimal(0), 1, 0),
]


def test_a_small_replay_matches_the_hand_computed_ledger(history):
    engine = history
    portfolio = create_backtest(engine, "momentum", CONFIG, 1000, DAY1, DAY2)
    assert portfolio["mode"] == "backtest"
    seen = []
    days = replay_through(engine, portfolio["portfolio_id"], DAY2, progress=seen.append)

    assert [(d.day, d.total_value, d.pnl, d.fills, d.fees, d.settlements, d.exits) for d in days] == GOLDEN_DAYS
    assert seen == days
    rows = trades(engine, portfolio["portfolio_id"])
    assert [(t["action"], t["market_id"], t["shares"], t["price"], t["cash_delta"], t["executed_at"], t["evidence"])
            for t in rows] == [
        ("buy", "201", SHARES, Decimal("0.705"), Decimal(-100), at(DAY1, 9), "history"),
        ("buy", "202", SHARES, Decimal("0.705"), Decimal(-100), at(DAY2, 9), "history"),
        ("settle", "201", SHARES, Decimal(1), Decimal("141.843972"), at(DAY2, 14, 30), None),
    ]
    assert history_rows(engine, portfolio["portfolio_id"]) == [
        (DAY1, at(DAY1, 23, 59) + timedelta(seconds=59, microseconds=999999), Decimal(900), Decimal("106.382979"),
         Decimal("1006.382979")),
        (DAY2, at(DAY2, 23, 59) + timedelta(seconds=59, microseconds=999999), Decimal("941.843972"),
         Decimal("99.290780"), Decimal("1041.134752")),
    ]
    assert unbalanced_portfolios(engine) == []
    assert [(r["day"], r["total_value"], r["replayed_at"] is not None) for r in replayed_days(
        engine, portfolio["portfolio_id"])] == [(DAY1, Decimal("1006.382979"), True), (DAY2, Decimal("1041.134752"), True)]


def test_a_replayed_day_is_never_redone_and_any_order_gives_one_ledger(history):
    engine = history
    first = create_backtest(engine, "momentum", CONFIG, 1000, DAY1, DAY2, name="in order")
    assert [d.day for d in replay_through(engine, first["portfolio_id"], DAY1)] == [DAY1]
    assert [d.day for d in replay_through(engine, first["portfolio_id"], DAY2)] == [DAY2]
    before = ledger(engine, first["portfolio_id"])
    assert replay_through(engine, first["portfolio_id"], DAY1) == []
    assert replay_through(engine, first["portfolio_id"], DAY2) == []
    assert ledger(engine, first["portfolio_id"]) == before

    # Day 2 asked first (a backfill run out of order) replays day 1 before it; day 1 then is done.
    second = create_backtest(engine, "momentum", CONFIG, 1000, DAY1, DAY2, name="out of order")
    assert [d.day for d in replay_through(engine, second["portfolio_id"], DAY2)] == [DAY1, DAY2]
    assert replay_through(engine, second["portfolio_id"], DAY1) == []
    assert ledger(engine, second["portfolio_id"]) == before, "deterministic: the same inputs, the same ledger"


def test_portfolios_replayed_together_get_the_ledgers_they_get_alone(history):
    """The batch path (one mark pass per observation time for all holders, cycles at different
    times of the day) writes, for each portfolio, exactly what replaying it alone writes."""
    engine = history
    configs = [
        CONFIG,
        {**CONFIG, "cycle_cron": "0 13 * * *", "trade_amount": 40},  # trades after day 1's 11:30-12:00 move
        {**CONFIG, "max_holding_hours": 3},  # time-based exits: they must fire at the same observations
        {**CONFIG, "stop_loss_percentage": 0.01, "take_profit_percentage": 0.05},
    ]
    alone = [create_backtest(engine, "momentum", c, 1000, DAY1, DAY2, name=f"alone {n}")["portfolio_id"]
             for n, c in enumerate(configs)]
    together = [create_backtest(engine, "momentum", c, 1000, DAY1, DAY2, name=f"together {n}")["portfolio_id"]
                for n, c in enumerate(configs)]
    for pid in alone:
        replay_through(engine, pid, DAY2)
    seen = []
    replays = replay_all_through(engine, together, DAY2, progress=lambda pid, day: seen.append((pid, day.day)))

    assert replays.failures == {}
    assert seen == [(pid, day) for day in (DAY1, DAY2) for pid in together], "day by day, every portfolio"
    for one, other in zip(alone, together):
        assert ledger(engine, other) == ledger(engine, one)
        assert [d.total_value for d in replays.days[other]] == [r["total_value"] for r in replayed_days(engine, one)]
    exits = {t["reason"] for pid in together for t in trades(engine, pid) if t["action"] == "sell"}
    assert exits, "some configs exited, so the exit timing is compared too"
    assert unbalanced_portfolios(engine) == []


def test_one_portfolio_failing_leaves_the_others_replaying(history):
    engine = history
    good = create_backtest(engine, "momentum", CONFIG, 1000, DAY1, DAY2, name="good")["portfolio_id"]
    live = create_portfolio(engine, NewPortfolio.parse(name="live", strategy="momentum", balance=1000))
    replays = replay_all_through(engine, [good, live["portfolio_id"]], DAY2)

    assert [d.day for d in replays.days[good]] == [DAY1, DAY2]
    assert [d.total_value for d in replays.days[good]] == [GOLDEN_DAYS[0][1], GOLDEN_DAYS[1][1]]
    assert str(replays.failures[live["portfolio_id"]]).endswith("only a backtest portfolio is replayed")


def test_no_look_ahead_a_later_observation_never_reaches_a_past_cycle(history):
    engine = history
    # Planted after the import: a live book observation of 202 one second after day 1's cycle,
    # with 202 the favourite at 0.70. Had the 09:00 read seen it, day 1 would buy 202.
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO market_snapshots (market_id, ts, yes_price, no_price, best_bid, best_ask, active, closed, "
            "source) VALUES ('202', :ts, 0.70, 0.30, 0.69, 0.71, true, false, 'clob')"), {"ts": at(DAY1, 9, 0) + timedelta(seconds=1)})
    portfolio = create_backtest(engine, "momentum", CONFIG, 1000, DAY1, DAY2)
    days = replay_through(engine, portfolio["portfolio_id"], DAY1)
    assert [t["market_id"] for t in trades(engine, portfolio["portfolio_id"])] == ["201"], \
        "day 1 bought only what 09:00 showed"
    with engine.connect() as conn:
        day1_signals = conn.execute(text("SELECT market_id FROM trading_signals WHERE portfolio_id = :p"),
                                    {"p": portfolio["portfolio_id"]}).scalars().all()
    assert day1_signals == ["201"]
    # The same observation, once it is in the past, does change a signal: day 2 buys 202.
    replay_through(engine, portfolio["portfolio_id"], DAY2)
    assert [t["market_id"] for t in trades(engine, portfolio["portfolio_id"]) if t["action"] == "buy"] == ["201", "202"]
    assert days[0].total_value == GOLDEN_DAYS[0][1]


def test_fills_use_no_later_observation_and_settlement_waits_for_the_recorded_close(history):
    engine = history
    portfolio = create_backtest(engine, "momentum", CONFIG, 1000, DAY1, DAY2)
    replay_through(engine, portfolio["portfolio_id"], DAY2)
    rows = trades(engine, portfolio["portfolio_id"])
    buys = [t for t in rows if t["action"] == "buy"]
    assert buys and all(t["observed_at"] <= t["signal_as_of"] == t["executed_at"] for t in buys)
    with engine.connect() as conn:
        closed_time = conn.execute(text("SELECT closed_time FROM market_resolutions WHERE market_id = '201'")).scalar()
        last_mark = conn.execute(text(
            "SELECT max(t.executed_at) FROM trades t WHERE t.portfolio_id = :p AND t.action = 'settle'"),
            {"p": portfolio["portfolio_id"]}).scalar()
    settle = [t for t in rows if t["action"] == "settle"]
    assert closed_time == at(DAY2, 14, 30)
    assert [t["executed_at"] for t in settle] == [closed_time] == [last_mark]


def test_an_exit_sells_at_the_history_price_less_the_half_spread(history):
    engine = history
    # Take profit at 5% against the entry mark 0.70: the 12:00 mark 0.75 is +7.1%. The sale is
    # priced from the history point: 0.75 - 0.005 = 0.745; 141.84397163 * 0.745 = 105.673759.
    # Day 1 ends with cash 900 + 105.673759 = 1005.673759 and nothing open.
    portfolio = create_backtest(engine, "momentum", {**CONFIG, "take_profit_percentage": 0.05}, 1000, DAY1, DAY1)
    [day] = replay_through(engine, portfolio["portfolio_id"], DAY1)
    sale = [t for t in trades(engine, portfolio["portfolio_id"]) if t["action"] == "sell"]
    assert [(t["price"], t["cash_delta"], t["executed_at"], t["evidence"]) for t in sale] == [
        (Decimal("0.745"), Decimal("105.673759"), at(DAY1, 12), "history")]
    assert (day.total_value, day.fills, day.exits) == (Decimal("1005.673759"), 2, 1)
    assert unbalanced_portfolios(engine) == []


def test_bad_input_is_refused_with_nothing_written(engine):
    with pytest.raises(InputError, match="is after"):
        create_backtest(engine, "momentum", CONFIG, 1000, DAY2, DAY1)
    with pytest.raises(InputError, match="prescient history import"):
        create_backtest(engine, "momentum", CONFIG, 1000, DAY1, DAY2)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM portfolios")).scalar() == 0


def test_the_command_line(history, capsys):
    from prescient_pipeline.cli import main

    argv = ["backtest", "run", "--strategy", "momentum", "--config", json.dumps(CONFIG), "--from", "2026-11-10",
            "--to", "2026-11-11", "--balance", "1000"]
    assert main([*argv, "--json"]) == 0
    out = capsys.readouterr()
    data = json.loads(out.out)
    assert [(d["day"], d["total_value"], d["pnl"], d["fills"], d["settlements"]) for d in data["days"]] == [
        ("2026-11-10", 1006.382979, 6.382979, 1, 0), ("2026-11-11", 1041.134752, 34.751773, 1, 1)]
    assert (data["report"]["portfolio_id"], data["report"]["mode"], data["report"]["total_value"]) == (
        data["portfolio_id"], "backtest", 1041.134752)
    assert "2026-11-11: total 1041.13" in out.err, "progress per day"

    assert main([*argv, "--name", "second"]) == 0
    text = capsys.readouterr().out
    assert "backtest" in text and "1041.13" in text and "2026-11-11" in text and "settlements" in text
    assert main(["portfolio", "list", "--json"]) == 0
    assert [p["mode"] for p in json.loads(capsys.readouterr().out)["portfolios"]] == ["backtest", "backtest"]


@pytest.mark.parametrize("argv, message", [
    (["--from", "2026-11-11", "--to", "2026-11-10"], "is after"),
    (["--from", "2026-10-01", "--to", "2026-10-02"], "prescient history import"),
    (["--from", "2026-11-10", "--to", "2026-11-11", "--strategy", "nope"], "nope"),
    (["--from", "yesterday", "--to", "2026-11-11"], "--from must be a date"),
    (["--from", "2026-11-10", "--to", "2026-11-11", "--balance", "-5"], "balance"),
    (["--from", "2026-11-10", "--to", "2026-11-11", "--config", "{bad"], "config"),
])
def test_bad_input_on_the_command_line_is_one_line_exit_2(history, capsys, argv, message):
    from prescient_pipeline.cli import main

    base = {"--strategy": "momentum", "--balance": "1000"}
    given = dict(zip(argv[::2], argv[1::2]))
    assert main(["backtest", "run", *[x for k, v in {**base, **given}.items() for x in (k, v)]]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err
    with history.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM portfolios")).scalar() == 0


def test_live_jobs_leave_a_backtest_alone_and_a_backtest_leaves_live_ones_alone(history):
    from prescient_pipeline.services.execution import execute_portfolio
    from prescient_pipeline.services.history import snapshot_portfolios
    from prescient_pipeline.services.portfolio_keys import active_portfolios, live_portfolio_ids
    from prescient_pipeline.services.portfolios import NewPortfolio, create_portfolio
    from prescient_pipeline.services.prices import update_prices
    from prescient_pipeline.domain.market_frame import with_derived
    from prescient_pipeline.services.replay_universe import replay_universe_as_of
    from prescient_pipeline.services.signals import generate_signals

    engine = history
    live = create_portfolio(engine, NewPortfolio.parse(name="live", strategy="momentum", balance=1000, config=CONFIG))
    with engine.connect() as conn:
        live_before = dict(conn.execute(text("SELECT * FROM portfolios WHERE portfolio_id = :p"),
                                        {"p": live["portfolio_id"]}).one()._mapping)
    backtest = create_backtest(engine, "momentum", CONFIG, 1000, DAY1, DAY2)
    bid = backtest["portfolio_id"]
    replay_through(engine, bid, DAY1)
    with engine.connect() as conn:
        live_after = dict(conn.execute(text("SELECT * FROM portfolios WHERE portfolio_id = :p"),
                                       {"p": live["portfolio_id"]}).one()._mapping)
    assert live_after == live_before, "the replay never touched the live portfolio"

    assert [p["portfolio_id"] for p in active_portfolios(engine)] == [live["portfolio_id"]], "cycle and sensors"
    assert live_portfolio_ids(engine) == [live["portfolio_id"], bid], "both have Dagster partitions"
    # The backtest holds 201; a live price update sees no held market and asks no server.
    report = update_prices(engine, PolymarketClient("http://127.0.0.1:9", "http://127.0.0.1:9"))
    assert (report.markets_held, report.portfolios) == (0, [])
    # A live snapshot writes the live portfolio's row only.
    assert [s.portfolio_id for s in snapshot_portfolios(engine, DAY2)] == [live["portfolio_id"]]
    # Live execution leaves a backtest's pending signals pending.
    generate_signals(engine, bid, DAY2, at(DAY2, 9), with_derived(replay_universe_as_of(engine, at(DAY2, 9)), at(DAY2, 9)))
    assert execute_portfolio(engine, bid, DAY2).executed == 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM trading_signals WHERE portfolio_id = :p AND cycle_date = :d "
                                 "AND NOT executed AND rejection_reason IS NULL"), {"p": bid, "d": DAY2}).scalar() > 0
    with pytest.raises(InputError, match="live portfolio"):
        replay_through(engine, live["portfolio_id"], DAY1)


def test_the_readme_commands_run_as_written(engine, monkeypatch, capsys):
    """The commands of README's "Backtests and replay", run in order against the replay server."""
    import re
    import shlex
    from pathlib import Path

    from prescient_pipeline.cli import main

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme[readme.index("## Backtests and replay"):]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    commands = [shlex.split(line)[1:] for line in block.splitlines() if line.startswith("prescient ")]
    assert [c[:2] for c in commands] == [["history", "import"], ["backtest", "run"]]
    with ReplayServer(markets=MARKETS, price_history=HISTORY, now=LISTED_AT) as server:
        monkeypatch.setenv("PRESCIENT_GAMMA_URL", server.url)
        monkeypatch.setenv("PRESCIENT_CLOB_URL", server.url)
        for argv in commands:
            assert main([*argv, "--json"]) == 0, capsys.readouterr().err
    with engine.connect() as conn:
        mode, trades_count, days = conn.execute(text(
            "SELECT p.mode, (SELECT count(*) FROM trades t WHERE t.portfolio_id = p.portfolio_id), "
            "(SELECT count(*) FROM portfolio_history h WHERE h.portfolio_id = p.portfolio_id) FROM portfolios p")).one()
    # The README's config keeps momentum's default $100 trades and band: the same two buys and
    # one settlement as the hand-computed replay above, one history row per day.
    assert (mode, trades_count, days) == ("backtest", 3, 2)


def test_a_live_observation_wins_over_a_history_point_of_the_same_time(history):
    from prescient_pipeline.services.replay_universe import replay_universe_as_of

    engine = history
    # A live refresh at day 1's 09:00, the same time as a history grid point: 201 with a book.
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO market_snapshots (market_id, ts, yes_price, no_price, best_bid, best_ask, active, closed, "
            "bids, asks, source) VALUES ('201', :ts, 0.72, 0.28, 0.71, 0.73, true, false, "
            "'[[0.71, 1000]]', '[[0.73, 1000]]', 'gamma')"), {"ts": at(DAY1, 9)})
        conn.execute(text("INSERT INTO market_refreshes (ts, source, markets) VALUES (:ts, 'gamma', 1)"),
                     {"ts": at(DAY1, 9)})
    frame = replay_universe_as_of(engine, at(DAY1, 9)).set_index("market_id")
    assert sorted(frame.index) == ["201", "202"], "the grid's markets, live and history alike"
    assert (frame.loc["201", "yes_price"], frame.loc["201", "best_ask"]) == (0.72, 0.73)
    assert (frame.loc["202", "yes_price"], pd.isna(frame.loc["202", "best_ask"])) == (0.50, True)

    # The fill walks that book: 100 / 0.73 = 136.98630136 shares at 0.73 (evidence `depth`),
    # marked at the mid 0.72.
    portfolio = create_backtest(engine, "momentum", CONFIG, 1000, DAY1, DAY1)
    replay_through(engine, portfolio["portfolio_id"], DAY1)
    [buy] = [t for t in trades(engine, portfolio["portfolio_id"]) if t["action"] == "buy"]
    assert (buy["price"], buy["shares"], buy["evidence"], buy["observed_at"]) == (
        Decimal("0.73"), Decimal("136.98630136"), "depth", at(DAY1, 9))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT entry_mark FROM portfolio_positions WHERE portfolio_id = :p"),
                            {"p": portfolio["portfolio_id"]}).scalar() == Decimal("0.72")


def test_a_day_without_market_data_is_not_replayed(history):
    engine = history
    portfolio = create_backtest(engine, "momentum", CONFIG, 1000, DAY1, DAY2)
    # Day 3 was never imported: replaying through it would record an empty day for good.
    with pytest.raises(InputError, match="prescient history import --from 2026-11-12"):
        replay_through(engine, portfolio["portfolio_id"], DAY2 + timedelta(days=1))
    assert replayed_days(engine, portfolio["portfolio_id"]) == []
    assert [d.day for d in replay_through(engine, portfolio["portfolio_id"], DAY2)] == [DAY1, DAY2]


def test_a_day_interrupted_halfway_is_not_replayed_again(history):
    from prescient_pipeline.services.backtest import ReplayInterrupted

    engine = history
    portfolio = create_backtest(engine, "momentum", CONFIG, 1000, DAY1, DAY2)
    replay_through(engine, portfolio["portfolio_id"], DAY1)
    # Day 2 started (its marker row written) and never finished: part of it may be booked.
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO backtest_days (portfolio_id, day) VALUES (:p, :d)"),
                     {"p": portfolio["portfolio_id"], "d": DAY2})
    before = ledger(engine, portfolio["portfolio_id"])
    with pytest.raises(ReplayInterrupted, match="2026-11-11 was interrupted"):
        replay_through(engine, portfolio["portfolio_id"], DAY2)
    assert ledger(engine, portfolio["portfolio_id"]) == before


def test_the_states_of_many_times_read_at_once_are_those_read_one_time_at_a_time(history):
    from prescient_pipeline.services.replay_universe import market_states_at, market_states_at_times

    # Around 201's recorded close (day 2, 14:30), and long after the last observation of 202
    # (beyond the 7-day lookback: 202 has no state then; 201, resolved, has its final one).
    times = [at(DAY1, 8), at(DAY1, 12), at(DAY2, 14), at(DAY2, 14, 30), at(DAY2, 15), at(DAY2 + timedelta(days=10), 0)]
    with history.connect() as conn:
        together = market_states_at_times(conn, ["201", "202"], times)
        one_by_one = {t: market_states_at(conn, ["201", "202"], t) for t in times}
    assert together == one_by_one
    assert (together[at(DAY2, 14)]["201"]["closed"], together[at(DAY2, 14)]["201"]["yes_price"]) == (False, Decimal("0.8"))
    resolved = together[at(DAY2, 14, 30)]["201"]
    assert (resolved["closed"], resolved["resolved_at"], resolved["outcome_prices"]) == (True, at(DAY2, 14, 30), ["1", "0"])
    assert sorted(together[at(DAY2 + timedelta(days=10), 0)]) == ["201"]
