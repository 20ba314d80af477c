"""`prescient portfolio ...` end to end against the real database."""

import json

import pytest
from sqlalchemy import text

from prescient_pipeline.cli import main


@pytest.fixture
def cli(engine, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))

    def run(*argv):
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def table_dump(engine):
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT * FROM portfolios ORDER BY portfolio_id"))], \
            conn.execute(text("SELECT count(*) FROM portfolio_rebalancing_log")).scalar()


def create(cli, name, strategy="momentum", balance="1000", *extra):
    code, out, err = cli("portfolio", "create", "--name", name, "--strategy", strategy, "--balance", balance, "--json", *extra)
    assert code == 0, err
    return json.loads(out)


def test_four_portfolios_one_per_strategy(cli, engine):
    ids = [create(cli, f"p-{s}", s)["portfolio_id"] for s in ("momentum", "mean_reversion", "arbitrage", "hybrid")]
    assert len(set(ids)) == 4
    code, out, _ = cli("portfolio", "list", "--json")
    listed = json.loads(out)["portfolios"]
    assert [p["strategy_type"] for p in listed] == ["momentum", "mean_reversion", "arbitrage", "hybrid"]
    assert all(float(p["current_balance"]) == 1000 for p in listed)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--strategy", "nope", "--balance", "100"], "nope"),
        (["--strategy", "momentum", "--balance", "-5"], "balance"),
        (["--strategy", "momentum", "--balance", "0"], "balance"),
        (["--strategy", "momentum", "--balance", "abc"], "balance"),
        (["--strategy", "momentum", "--balance", "100", "--config", "{bad json"], "JSON"),
        (["--strategy", "momentum", "--balance", "100", "--config", '{"no_such_key": 1}'], "no_such_key"),
        (["--strategy", "momentum", "--balance", "100", "--config", '{"trade_amount": -3}'], "trade_amount"),
        (["--strategy", "momentum", "--balance", "100", "--max-positions", "2.5"], "max_positions"),
        (["--strategy", "momentum", "--balance", "100", "--max-position-size", "x"], "max_position_size"),
        # Values that would overflow NUMERIC(20,6) / INTEGER columns are refused before any write.
        (["--strategy", "momentum", "--balance", "1e15"], "balance"),
        (["--strategy", "momentum", "--balance", "100", "--max-positions", "99999999999"], "max_positions"),
        (["--strategy", "momentum", "--balance", "100", "--max-total-exposure", "1e30"], "max_total_exposure"),
        (["--strategy", "momentum", "--balance", "100", "--config", '{"x": "' + "a" * 10_000_000 + '"}'], "limit"),
        (["--strategy", "momentum", "--balance", "100", "--description", "line\nforged"], "description"),
        (["--strategy", "momentum", "--balance", "100", "--description", "d" * 5000], "description"),
    ],
)
def test_bad_create_input_exits_2_and_writes_nothing(cli, engine, argv, message):
    create(cli, "existing")
    before = table_dump(engine)
    code, out, err = cli("portfolio", "create", "--name", "new one", *argv)
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert table_dump(engine) == before


@pytest.mark.parametrize("name", ["bell\x07", "esc\x1b[31mred", "new\nline", "nul\x00", "n" * 201])
def test_names_with_control_characters_or_too_long_exit_2(cli, engine, name):
    pid = create(cli, "existing")["portfolio_id"]
    before = table_dump(engine)
    for argv in (["create", "--name", name, "--strategy", "momentum", "--balance", "10"],
                 ["update", str(pid), "--name", name]):
        code, _, err = cli("portfolio", *argv)
        assert code == 2, argv
        assert err.startswith("error: name") and err.count("\n") == 1
    assert table_dump(engine) == before


def test_out_of_range_updates_and_transfers_exit_2(cli, engine):
    a = create(cli, "a")["portfolio_id"]
    b = create(cli, "b")["portfolio_id"]
    before = table_dump(engine)
    for argv in (["update", str(a), "--max-positions", "99999999999"],
                 ["update", str(a), "--max-position-size", "1e15"],
                 ["update", str(a), "--config", '{"k": "' + "v" * 70_000 + '"}'],
                 ["pause", str(a), "--reason", "why\r\nnot"],
                 ["transfer", "--from", str(a), "--to", str(b), "--amount", "1e15"],
                 ["show", "99999999999"], ["pause", "99999999999"]):
        code, _, err = cli("portfolio", *argv)
        assert code == 2, argv
        assert err.startswith("error: ") and err.count("\n") == 1, err
    assert table_dump(engine) == before


def test_duplicate_name_and_unknown_id_exit_2(cli, engine):
    pid = create(cli, "dup")["portfolio_id"]
    before = table_dump(engine)
    assert cli("portfolio", "create", "--name", "dup", "--strategy", "momentum", "--balance", "5")[0] == 2
    for argv in (["show", "999"], ["pause", "999"], ["update", "999", "--name", "x"], ["delete", "abc", "--yes"],
                 ["update", str(pid), "--config", '{"bogus": 1}'], ["delete", str(pid)]):
        code, _, err = cli("portfolio", *argv)
        assert code == 2, argv
        assert err.startswith("error: ")
    assert table_dump(engine) == before


def test_names_are_parameters_not_sql(cli, engine):
    name = "x'); DROP TABLE portfolios; --"
    row = create(cli, name)
    assert row["name"] == name
    code, out, _ = cli("portfolio", "show", str(row["portfolio_id"]), "--json")
    assert json.loads(out)["name"] == name


def test_update_pause_resume_archive_delete(cli, engine):
    pid = str(create(cli, "life")["portfolio_id"])
    code, out, _ = cli("portfolio", "update", pid, "--name", "renamed", "--max-positions", "7",
                       "--config", '{"trade_amount": 25}', "--json")
    row = json.loads(out)
    assert (row["name"], row["max_positions"], row["strategy_config"]) == ("renamed", 7, {"trade_amount": 25})
    assert json.loads(cli("portfolio", "pause", pid, "--reason", "test", "--json")[1])["status"] == "paused"
    assert json.loads(cli("portfolio", "resume", pid, "--json")[1])["status"] == "active"
    assert json.loads(cli("portfolio", "archive", pid, "--json")[1])["status"] == "archived"
    assert cli("portfolio", "resume", pid)[0] == 2, "archived is final"
    assert cli("portfolio", "delete", pid, "--yes")[0] == 0
    assert table_dump(engine)[0] == []


def test_pause_all_pauses_only_active(cli, engine):
    a, b, c = (create(cli, n)["portfolio_id"] for n in "abc")
    cli("portfolio", "archive", str(c))
    code, out, _ = cli("portfolio", "pause-all", "--reason", "market halt", "--json")
    assert json.loads(out)["paused"] == [a, b]
    with engine.connect() as conn:
        statuses = dict(conn.execute(text("SELECT portfolio_id, status FROM portfolios")).all())
    assert statuses == {a: "paused", b: "paused", c: "archived"}


def test_transfer_is_logged_and_never_overdraws(cli, engine):
    a = create(cli, "from", balance="100")["portfolio_id"]
    b = create(cli, "to", balance="50")["portfolio_id"]
    code, out, _ = cli("portfolio", "transfer", "--from", str(a), "--to", str(b), "--amount", "40", "--json")
    assert code == 0 and float(json.loads(out)["amount"]) == 40
    before = table_dump(engine)
    assert cli("portfolio", "transfer", "--from", str(a), "--to", str(b), "--amount", "60.01")[0] == 2
    assert cli("portfolio", "transfer", "--from", str(a), "--to", str(a), "--amount", "1")[0] == 2
    assert table_dump(engine) == before
    with engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT portfolio_id, (current_balance, net_transfers) FROM portfolios")).all())
    assert rows[a] == "(60.000000,-40.000000)" and rows[b] == "(90.000000,40.000000)"
