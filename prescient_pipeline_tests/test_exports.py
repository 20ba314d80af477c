"""`prescient export`: every table, typed columns, CSV and Parquet, read back and checked."""

import csv
import json
from datetime import date, datetime, timezone
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import insert

from prescient_pipeline.cli import main
from prescient_pipeline.db import schema
from prescient_pipeline.db.history_partitions import ensure_partitions
from prescient_pipeline.services import portfolios as svc

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
T1 = datetime(2026, 3, 3, 9, 0, tzinfo=timezone.utc)
USER_TABLES = {"portfolios", "portfolio_positions", "trades", "trading_signals", "signal_archives",
               "portfolio_history", "portfolio_rebalancing_log", "portfolio_performance_cache", "backtest_days",
               "events", "markets"}


@pytest.fixture
def cli(engine, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))

    def run(*argv):
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def ledger(engine):
    """Two portfolios with a transfer, a market with tags, a signal, a position, a trade, history."""
    a = svc.create_portfolio(engine, svc.NewPortfolio.parse(name="a", strategy="momentum", balance="1000",
                                                            config='{"trade_amount": 25}'))
    b = svc.create_portfolio(engine, svc.NewPortfolio.parse(name="b", strategy="arbitrage", balance="500"))
    svc.transfer(engine, a["portfolio_id"], b["portfolio_id"], "100", "rebalance")
    pid = a["portfolio_id"]
    ensure_partitions(engine, T0, T1)
    with engine.begin() as conn:
        conn.execute(insert(schema.events).values(event_id="e1", title="Event", tags=["politics", "us"]))
        conn.execute(insert(schema.markets).values(
            market_id="m1", event_id="e1", question="Will it?", tags=["politics"], outcomes=["Yes", "No"],
            outcome_prices=["0.6", "0.4"], clob_token_ids=["111", "222"], yes_price=Decimal("0.6"), best_bid=0,
            bids=[[0.59, 100.0]], asks=[[0.61, 50.0]], active=True, closed=False))
        conn.execute(insert(schema.market_snapshots).values(
            market_id="m1", ts=T0, yes_price=Decimal("0.6"), bids=[[0.59, 100.0]]))
        conn.execute(insert(schema.market_snapshots).values(market_id="m1", ts=T1, yes_price=Decimal("0.62")))
        sid = conn.execute(insert(schema.trading_signals).values(
            portfolio_id=pid, strategy_type="momentum", cycle_date=date(2026, 3, 2), as_of=T0, market_id="m1",
            side="YES", amount=Decimal("25"), price_seen=Decimal("0.61"), confidence=Decimal("0.7"),
        ).returning(schema.trading_signals.c.signal_id)).scalar_one()
        conn.execute(insert(schema.trading_signals).values(
            portfolio_id=pid, strategy_type="momentum", cycle_date=date(2026, 3, 2), as_of=T0, market_id="m1",
            side="NO", amount=Decimal("25"), rejection_reason="one position per market"))
        pos = conn.execute(insert(schema.portfolio_positions).values(
            portfolio_id=pid, market_id="m1", side="YES", shares=Decimal("40.98360655"), avg_price=Decimal("0.61"),
            cost_basis=Decimal("25"), opened_at=T0, signal_id=sid,
        ).returning(schema.portfolio_positions.c.position_id)).scalar_one()
        conn.execute(insert(schema.trades).values(
            portfolio_id=pid, signal_id=sid, position_id=pos, market_id="m1", side="YES", action="buy",
            shares=Decimal("40.98360655"), price=Decimal("0.61"), amount=Decimal("25"), cash_delta=Decimal("-25"),
            executed_at=T0, evidence="depth", levels=[[0.61, 40.98360655]]))
        conn.execute(insert(schema.portfolio_history).values(
            portfolio_id=pid, snapshot_date=date(2026, 3, 2), timestamp=T0, cash=875, positions_value=25,
            total_value=900, initial_balance=1000, net_transfers=-100, realized_pnl=0, unrealized_pnl=0, fees=0,
            open_positions=1, trade_count=1, daily_return=0))
        conn.execute(insert(schema.portfolio_performance_cache).values(portfolio_id=pid, days=1, max_drawdown=0))
        conn.execute(insert(schema.signal_archives).values(
            signal_id=99, portfolio_id=pid, strategy_type="momentum", cycle_date=date(2026, 1, 1), as_of=T0,
            market_id="m1", side="YES", amount=Decimal("10"), executed=False, created_at=T0))
    return pid


def _csv(path):
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_csv_export_writes_every_table_with_typed_columns(cli, ledger, tmp_path):
    out = tmp_path / "csv"
    code, stdout, err = cli("export", "--out", str(out), "--json")
    assert code == 0, err
    tables = json.loads(stdout)["tables"]
    assert set(tables) == USER_TABLES  # market_snapshots only on request
    assert {p.name for p in out.iterdir()} == {f"{t}.csv" for t in USER_TABLES}
    assert tables["portfolios"]["rows"] == 2 and tables["trading_signals"]["rows"] == 2

    portfolios = _csv(out / "portfolios.csv")
    assert [p["portfolio_id"] for p in portfolios] == ["1", "2"]  # never "1.0"
    assert json.loads(portfolios[0]["strategy_config"]) == {"trade_amount": 25}  # JSON, not a Python repr
    transfers = _csv(out / "portfolio_rebalancing_log.csv")
    assert [(t["from_portfolio_id"], t["to_portfolio_id"], t["amount"]) for t in transfers] == [("1", "2", "100.000000")]

    signals = _csv(out / "trading_signals.csv")
    # A nullable integer column: a whole number where set, empty where not, in the same file.
    assert [s["trade_id"] for s in signals] == ["", ""] and signals[0]["executed"] == "false"
    assert datetime.fromisoformat(signals[0]["as_of"]) == T0  # ISO 8601 with its offset
    assert signals[0]["as_of"] == "2026-03-02T09:00:00+00:00" and signals[0]["cycle_date"] == "2026-03-02"

    markets = _csv(out / "markets.csv")
    assert json.loads(markets[0]["tags"]) == ["politics"]
    assert json.loads(markets[0]["bids"]) == [[0.59, 100.0]]
    assert json.loads(markets[0]["clob_token_ids"]) == ["111", "222"]
    assert (markets[0]["yes_price"], markets[0]["best_bid"]) == ("0.60000000", "0.00000000")  # never "0E-8"

    trades = pd.read_csv(out / "trades.csv")
    assert trades["trade_id"].dtype == "int64" and trades["position_id"].dtype == "int64"
    assert json.loads(trades["levels"][0]) == [[0.61, 40.98360655]]
    assert _csv(out / "signal_archives.csv")[0]["signal_id"] == "99"


def test_snapshots_on_request_and_by_window(cli, ledger, tmp_path):
    code, stdout, err = cli("export", "--out", str(tmp_path / "all"), "--snapshots", "--json")
    assert code == 0, err
    assert json.loads(stdout)["tables"]["market_snapshots"]["rows"] == 2
    rows = _csv(tmp_path / "all" / "market_snapshots.csv")
    assert json.loads(rows[0]["bids"]) == [[0.59, 100.0]] and rows[1]["bids"] == ""

    code, stdout, _ = cli("export", "--out", str(tmp_path / "day"), "--snapshots", "--since", "2026-03-03",
                          "--until", "2026-03-03", "--json")
    assert code == 0
    assert [r["ts"] for r in _csv(tmp_path / "day" / "market_snapshots.csv")] == ["2026-03-03T09:00:00+00:00"]


@pytest.mark.parametrize("argv", [["--since", "2026-03-01"], ["--snapshots", "--since", "March"],
                                  ["--snapshots", "--since", "2026-03-04", "--until", "2026-03-01"]])
def test_bad_export_input_exits_2_and_writes_nothing(cli, engine, tmp_path, argv):
    out = tmp_path / "nothing"
    code, _, err = cli("export", "--out", str(out), *argv)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert not out.exists()


def test_empty_tables_keep_their_types(cli, engine, tmp_path):
    code, _, err = cli("export", "--out", str(tmp_path), "--format", "parquet")
    assert code == 0, err
    positions = pq.read_table(tmp_path / "portfolio_positions.parquet")
    assert positions.num_rows == 0
    assert positions.schema.field("position_id").type == pa.int64()
    assert positions.schema.field("cost_basis").type == pa.decimal128(20, 6)


def test_parquet_export_keeps_the_schema_types(cli, ledger, engine, tmp_path):
    out = tmp_path / "pq"
    code, stdout, err = cli("export", "--out", str(out), "--format", "parquet", "--snapshots", "--json")
    assert code == 0, err
    assert {p.name for p in out.iterdir()} == {f"{t}.parquet" for t in USER_TABLES | {"market_snapshots"}}

    trades = pq.read_table(out / "trades.parquet")
    assert trades.schema.field("trade_id").type == pa.int64()
    assert trades.schema.field("portfolio_id").type == pa.int32()
    assert trades.schema.field("shares").type == pa.decimal128(24, 8)
    assert trades.schema.field("executed_at").type == pa.timestamp("us", tz="UTC")
    row = trades.to_pylist()[0]
    assert row["shares"] == Decimal("40.98360655") and row["amount"] == Decimal("25.000000")
    assert row["executed_at"] == T0 and json.loads(row["levels"]) == [[0.61, 40.98360655]]

    history = pq.read_table(out / "portfolio_history.parquet")
    assert history.schema.field("snapshot_date").type == pa.date32()
    assert history.to_pylist()[0]["snapshot_date"] == date(2026, 3, 2)

    signals = pq.read_table(out / "trading_signals.parquet").to_pandas()
    assert signals["executed"].tolist() == [False, False]
    markets = pq.read_table(out / "markets.parquet").to_pylist()
    assert json.loads(markets[0]["outcome_prices"]) == ["0.6", "0.4"] and markets[0]["active"] is True
    assert pq.read_table(out / "market_snapshots.parquet").num_rows == 2
