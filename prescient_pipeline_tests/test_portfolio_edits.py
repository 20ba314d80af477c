"""`portfolio update --config` merges, `show` prints the config, and a metric shown in two places agrees."""

import json
from datetime import date, datetime, timezone

import pytest
from sqlalchemy import insert

from prescient_pipeline.cli import main
from prescient_pipeline.db import schema
from prescient_pipeline.services.history import snapshot_portfolios


@pytest.fixture
def cli(engine, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))

    def run(*argv):
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _create(cli, config):
    code, out, err = cli("portfolio", "create", "--name", "p", "--strategy", "momentum", "--balance", "1000",
                         "--config", json.dumps(config), "--json")
    assert code == 0, err
    return str(json.loads(out)["portfolio_id"])


def _stored(cli, pid):
    return json.loads(cli("portfolio", "show", pid, "--json")[1])["strategy_config"]


def test_update_config_merges_keys_and_empty_changes_nothing(cli, engine):
    pid = _create(cli, {"trade_amount": 25, "stop_loss_percentage": 0.2})
    code, out, err = cli("portfolio", "update", pid, "--config", '{"take_profit_percentage": 0.5}', "--json")
    assert code == 0, err
    assert json.loads(out)["strategy_config"] == {"trade_amount": 25, "stop_loss_percentage": 0.2,
                                                  "take_profit_percentage": 0.5}
    # A key given again takes the new value; the others stay.
    cli("portfolio", "update", pid, "--config", '{"trade_amount": 40}')
    assert _stored(cli, pid) == {"trade_amount": 40, "stop_loss_percentage": 0.2, "take_profit_percentage": 0.5}
    # '{}' used to wipe the config silently; merged, it changes nothing.
    assert cli("portfolio", "update", pid, "--config", "{}")[0] == 0
    assert _stored(cli, pid) == {"trade_amount": 40, "stop_loss_percentage": 0.2, "take_profit_percentage": 0.5}


def test_replace_config_replaces_whole(cli, engine):
    pid = _create(cli, {"trade_amount": 25, "stop_loss_percentage": 0.2})
    assert cli("portfolio", "update", pid, "--config", '{"trade_amount": 10}', "--replace-config")[0] == 0
    assert _stored(cli, pid) == {"trade_amount": 10}
    assert cli("portfolio", "update", pid, "--config", "{}", "--replace-config")[0] == 0
    assert _stored(cli, pid) == {}
    code, _, err = cli("portfolio", "update", pid, "--replace-config", "--name", "x")
    assert code == 2 and "--replace-config needs --config" in err


def test_merged_config_is_validated_and_a_bad_key_writes_nothing(cli, engine):
    pid = _create(cli, {"market_min_conviction": 0.3})
    # 0.2 as the maximum is below the stored minimum: the merged config is invalid as a whole.
    code, _, err = cli("portfolio", "update", pid, "--config", '{"market_max_conviction": 0.2}')
    assert code == 2 and "market_min_conviction" in err
    assert _stored(cli, pid) == {"market_min_conviction": 0.3}


def test_show_prints_the_config(cli, engine):
    pid = _create(cli, {"trade_amount": 25})
    code, out, _ = cli("portfolio", "show", pid)
    assert code == 0
    assert 'strategy config (set on this portfolio): {"trade_amount": 25}' in out
    assert "  trade_amount: 25" in out and "  sizing_mode: \"fixed\"" in out  # the defaults in effect too
    shown = json.loads(cli("portfolio", "show", pid, "--json")[1])
    assert shown["strategy_config"] == {"trade_amount": 25}
    assert shown["effective_config"]["trade_amount"] == 25
    assert shown["effective_config"]["sizing_mode"] == "fixed"


def test_list_and_report_show_the_same_max_drawdown(cli, engine):
    pid = int(_create(cli, {}))
    at = datetime(2026, 3, 4, 23, 55, tzinfo=timezone.utc)
    with engine.begin() as conn:
        for day, value in ((date(2026, 3, 2), 1100), (date(2026, 3, 3), 990)):
            conn.execute(insert(schema.portfolio_history).values(
                portfolio_id=pid, snapshot_date=day, timestamp=at, cash=value, positions_value=0, total_value=value,
                initial_balance=1000, net_transfers=0, realized_pnl=value - 1000, unrealized_pnl=0, fees=0,
                open_positions=0, trade_count=0))
    snapshot_portfolios(engine, date(2026, 3, 4))  # day 3: total value 1000 (cash, nothing held)
    listed = json.loads(cli("portfolio", "list", "--json")[1])["portfolios"][0]
    reported = json.loads(cli("report", "--json")[1])["portfolios"][0]
    # Values 1000 (start) -> 1100 -> 990 -> 1000: the worst fall from a peak is 990 / 1100 - 1 = -10%.
    assert float(listed["max_drawdown"]) == pytest.approx(-0.1)
    assert float(reported["max_drawdown"]) == pytest.approx(-0.1)
