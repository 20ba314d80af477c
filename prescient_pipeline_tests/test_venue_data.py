"""Venue data end to end against the simulator over HTTP: a Protocol V2 market refreshed,
signalled, booked, traded and marked; book depth, market rules and the fee regime stored with
every observation."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from sqlalchemy import text

from prescient_pipeline.polymarket.client import PolymarketClient
from prescient_pipeline.polymarket.simulator import SimulatorServer, Universe
from prescient_pipeline.services import portfolios as svc
from prescient_pipeline.services.books import fetch_books_for, fetch_books_for_pending
from prescient_pipeline.services.execution import execute_portfolio
from prescient_pipeline.services.market_refresh import refresh_markets
from prescient_pipeline.services.market_store import universe_as_of, write_market_updates
from prescient_pipeline.services.prices import update_prices
from prescient_pipeline.services.reports import unbalanced_portfolios
from prescient_pipeline.services.signals import generate_signals

from .test_execution import T0, rows, store, wire_market

START = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def _book_from_wire(book: dict, side: str, best_first_descending: bool) -> list[list[float]]:
    levels = [[float(level["price"]), float(level["size"])] for level in book[side]]
    return sorted(levels, key=lambda level: level[0], reverse=best_first_descending)[:20]


def test_a_v2_market_is_refreshed_signalled_booked_traded_and_marked(engine):
    universe = Universe(seed=7, events=150, start=START)
    with SimulatorServer(universe) as server, PolymarketClient(server.url, server.url, retries=0) as client:
        report = refresh_markets(engine, client)
        assert "unsupported_version" not in report.rejected
        # Every tradable market of the world is stored, V2 ones with their position ids.
        wire = {m["id"]: m for e in universe.gamma_events(limit=100) + universe.gamma_events(limit=100, offset=100)
                for m in e["markets"] if m["active"]}  # placeholders are unpriced: not stored
        stored = {r.market_id: r for r in rows(engine, "SELECT * FROM markets")}
        v2 = [i for i, m in wire.items() if m.get("version") == "v2"]
        assert v2 and all(stored[i].protocol_version == "v2" for i in v2)
        assert all([stored[i].yes_token_id, stored[i].no_token_id] == wire[i]["positionIds"] for i in v2)
        assert {r.protocol_version for r in stored.values()} == {"v1", "v2"}

        pid = svc.create_portfolio(engine, svc.NewPortfolio.parse(
            name="v2 book", strategy="momentum", balance="10000", config=None))["portfolio_id"]
        generate_signals(engine, pid, START.date(), universe.now)
        signalled = {r.market_id for r in rows(engine, "SELECT market_id FROM trading_signals WHERE portfolio_id = :p", p=pid)}
        traded_v2 = sorted(signalled & set(v2))
        assert traded_v2, "momentum signals some V2 markets"

        # Books of the signalled markets, fetched by their selected ids just before execution.
        assert fetch_books_for_pending(engine, client, [pid]) == len(signalled)
        market = traded_v2[0]
        yes_book = universe.book(wire[market]["positionIds"][0])
        (row,) = rows(engine, "SELECT * FROM markets WHERE market_id = :m", m=market)
        assert row.bids == _book_from_wire(yes_book, "bids", True)
        assert row.asks == _book_from_wire(yes_book, "asks", False)
        assert (float(row.tick_size), float(row.min_order_size)) == (float(yes_book["tick_size"]), float(yes_book["min_order_size"]))

        result = execute_portfolio(engine, pid)
        assert result.executed > 0
        (position,) = rows(engine, "SELECT * FROM portfolio_positions WHERE portfolio_id = :p AND market_id = :m",
                           p=pid, m=market)

        universe.advance(5)
        update = update_prices(engine, client)
        # Never read from Gamma yet, the held markets are asked about; their open answers carry
        # the book's prices and depth, stored as one observation.
        assert update.unpriced == [] and update.gamma_asked >= 1
        (marked,) = rows(engine, "SELECT * FROM portfolio_positions WHERE position_id = :i", i=position.position_id)
        bids, asks = universe.book(wire[market]["positionIds"][0])["bids"], universe.book(wire[market]["positionIds"][0])["asks"]
        mid = (float(bids[-1]["price"]) + float(asks[-1]["price"])) / 2
        expected = mid if position.side == "YES" else 1 - mid
        assert marked.last_marked_at == universe.now and abs(float(marked.current_price) - expected) < 1e-9
        (snapshot,) = rows(engine, "SELECT * FROM market_snapshots WHERE market_id = :m "
                                   "AND source IN ('clob', 'gamma_update') AND ts = :t", m=market, t=universe.now)
        assert snapshot.bids[0] == [float(bids[-1]["price"]), float(bids[-1]["size"])]
        assert snapshot.protocol_version == "v2" and snapshot.fees_enabled == wire[market]["feesEnabled"]
    assert unbalanced_portfolios(engine) == []


def test_book_observations_keep_depth_rules_and_the_fee_regime_in_force(engine):
    # A sports market under the 0.03 exponent-1 schedule, then a book observation of it.
    schedule = {"exponent": 1, "rate": 0.03, "rebateRate": 0.25, "takerOnly": True}
    store(engine, [wire_market("8001", "0.5", "0.5", bid="0.49", ask="0.51", feesEnabled=True, feeSchedule=schedule,
                               orderPriceMinTickSize=0.01, orderMinSize=5, version="v2",
                               positionIds=["800101", "800102"])])
    later = T0 + timedelta(minutes=5)
    depth = {"bids": [[0.49, 120.0], [0.48, 300.0]], "asks": [[0.51, 80.0], [0.52, 45.5], [0.53, 900.0]]}
    with engine.begin() as conn:
        written = write_market_updates(conn, [{
            "market_id": "8001", "yes_price": 0.5, "no_price": 0.5, "best_bid": 0.49, "best_ask": 0.51,
            "last_trade_price": 0.5, "tick_size": None, "min_order_size": 15.0, **depth,
        }], later, "clob")
    assert written == 1
    (market,) = rows(engine, "SELECT * FROM markets WHERE market_id = '8001'")
    assert (market.bids, market.asks, float(market.min_order_size)) == (depth["bids"], depth["asks"], 15.0)
    assert float(market.tick_size) == 0.01  # the book stated no tick: the market keeps its own
    assert market.protocol_version == "v2" and market.yes_token_id == "800101"
    history = rows(engine, "SELECT * FROM market_snapshots WHERE market_id = '8001' ORDER BY ts")
    assert [s.source for s in history] == ["gamma", "clob"]
    gamma, clob = history
    assert gamma.bids is None and clob.bids == depth["bids"] and clob.asks == depth["asks"]
    assert float(clob.last_trade_price) == 0.5 and float(clob.tick_size) == 0.01 and float(clob.min_order_size) == 15
    # The fee regime in force is on both observations, so a fill at either time reads it.
    for snapshot in history:
        assert (snapshot.fees_enabled, float(snapshot.fee_rate), float(snapshot.fee_exponent), snapshot.fee_taker_only) == (
            True, 0.03, 1.0, True)
    # A later refresh says fees are off: from then on, the snapshots say so; the past ones do not change.
    store(engine, [wire_market("8001", "0.5", "0.5", bid="0.49", ask="0.51", feesEnabled=False, version="v2",
                               positionIds=["800101", "800102"])], at=T0 + timedelta(minutes=10))
    regimes = [(s.fees_enabled, s.fee_rate) for s in rows(engine, "SELECT * FROM market_snapshots WHERE market_id = '8001' ORDER BY ts")]
    assert [(e, float(r)) for e, r in regimes] == [(True, 0.03), (True, 0.03), (False, 0.0)]
    # A refresh's observation carries no depth: the current state holds none until the next book.
    (market,) = rows(engine, "SELECT bids, asks FROM markets WHERE market_id = '8001'")
    assert (market.bids, market.asks) == (None, None)


def test_the_universe_flags_augmented_events_and_their_other_outcomes(engine):
    named = wire_market("8101", "0.3", "0.7", bid="0.29", ask="0.31", event_id="91", negRisk=True, groupItemTitle="Ada")
    other = wire_market("8102", "0.2", "0.8", bid="0.19", ask="0.21", event_id="91", negRisk=True,
                        groupItemTitle="Other", question="Will another person win?", negRiskOther=True)
    for market in (named, other):
        market["events"] = [{"id": "91", "title": "Who wins?", "negRisk": True, "enableNegRisk": True, "negRiskAugmented": True}]
    plain = wire_market("8201", "0.4", "0.6", bid="0.39", ask="0.41", event_id="92")
    store(engine, [named, other, plain])
    frame = universe_as_of(engine, T0).set_index("market_id")
    assert frame.loc["8101", "neg_risk_augmented"] and not frame.loc["8101", "neg_risk_other"]
    assert frame.loc["8102", "neg_risk_augmented"] and frame.loc["8102", "neg_risk_other"]
    assert not frame.loc["8201", "neg_risk_augmented"] and not frame.loc["8201", "neg_risk_other"]
    assert json.loads(json.dumps(frame["neg_risk_other"].tolist())) == [False, True, False]


def test_books_before_trading_ask_the_clob_for_fees_gamma_did_not_state(engine):
    universe = Universe(seed=7, events=150, start=START)
    with SimulatorServer(universe) as server, PolymarketClient(server.url, server.url, retries=0) as client:
        refresh_markets(engine, client)
        unknown = rows(engine, "SELECT market_id, condition_id FROM markets WHERE fees_enabled AND fee_rate IS NULL "
                               "ORDER BY market_id")
        known = rows(engine, "SELECT market_id FROM markets WHERE fees_enabled AND fee_rate IS NOT NULL "
                             "ORDER BY market_id LIMIT 1")
        assert unknown and known
        universe.advance(5)
        chosen = [unknown[0].market_id, known[0].market_id]
        assert fetch_books_for(engine, client, chosen + ["no-such-market"]) == 2
        stated = universe.clob_market_info(unknown[0].condition_id)["fd"]  # what the CLOB says
    (market,) = rows(engine, "SELECT * FROM markets WHERE market_id = :m", m=unknown[0].market_id)
    assert (market.fees_enabled, float(market.fee_rate), float(market.fee_exponent)) == (True, stated["r"], stated["e"])
    (snapshot,) = rows(engine, "SELECT * FROM market_snapshots WHERE market_id = :m AND source = 'clob'",
                       m=unknown[0].market_id)
    assert (float(snapshot.fee_rate), snapshot.bids is not None) == (stated["r"], True)
    # The market whose schedule Gamma gave keeps it; its book observation carries it over.
    (other,) = rows(engine, "SELECT fee_rate FROM market_snapshots WHERE market_id = :m ORDER BY ts", m=known[0].market_id)[-1:]
    (gamma,) = rows(engine, "SELECT fee_rate FROM market_snapshots WHERE market_id = :m AND source = 'gamma'",
                    m=known[0].market_id)
    assert other.fee_rate == gamma.fee_rate is not None


def test_the_market_frame_takes_the_negrisk_flags_and_defaults_them_to_false():
    from prescient_pipeline.domain.market_frame import as_market_frame, empty_market_frame

    base = empty_market_frame().drop(columns=["neg_risk_augmented", "neg_risk_other"])
    row = {c: None for c in base.columns} | {"market_id": "1", "event_id": "e", "question": "q", "tags": []}
    without = as_market_frame([row])  # a reader that does not know the flags
    for flag in ("neg_risk_augmented", "neg_risk_other"):
        assert without[flag].dtype == bool and without[flag].tolist() == [False]
    flagged = as_market_frame([row | {"neg_risk_augmented": True, "neg_risk_other": 1}])
    assert flagged["neg_risk_augmented"].tolist() == [True] and flagged["neg_risk_other"].tolist() == [True]


def test_a_cycle_fetches_the_books_it_trades_so_fills_walk_depth(engine, monkeypatch):
    """The execution run asks the CLOB for the books of every market about to be traded, in one
    batch, just before it fills: fills walk those levels (evidence depth), with no price update
    needed first."""
    import dagster as dg

    from prescient_pipeline.defs import runner
    from prescient_pipeline.services import portfolios as svc

    from .helpers import simulator

    with simulator(monkeypatch, events=60) as sim, dg.instance_for_test() as instance:
        for kind in ("momentum", "mean_reversion"):
            svc.create_portfolio(engine, svc.NewPortfolio.parse(name=f"depth {kind}", strategy=kind, balance="5000"))
        cycle = runner.run_cycle(instance, engine, sim.universe.now.date(), with_snapshot=False)
        [output] = instance.all_logs(cycle.execution_run, of_type=dg.DagsterEventType.STEP_OUTPUT)
        fresh = output.dagster_event.step_output_data.metadata["fresh_books"].value
    evidence = {r.evidence for r in rows(engine, "SELECT evidence FROM trades WHERE action = 'buy'")}
    assert fresh > 0 and evidence == {"depth"}, (fresh, evidence)
