"""A dependency failure is one line on the terminal, naming what failed, what to do and the log
file that holds the details; bad input exits 2, a failed dependency 1."""

import socket

import pytest

from prescient_pipeline.cli import main

from .replay_server import ReplayServer


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens there once the socket closes


@pytest.fixture
def cli(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PRESCIENT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))

    def run(*argv):
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def assert_one_line_with_details(err: str, tmp_path, *expected: str) -> str:
    assert err.count("\n") == 1 and err.startswith("error: "), err
    log_file = tmp_path / "home" / "logs" / "prescient.log"
    assert f"details in {log_file}" in err
    for text in expected:
        assert text in err, err
    return log_file.read_text()


def test_api_failure_during_a_cycle_is_one_line_and_the_traceback_goes_to_the_log(cli, engine, tmp_path,
                                                                                    monkeypatch):
    # The API answers the reachability check, then fails the cycle's refresh inside its Dagster run.
    with ReplayServer() as server:
        server.fail_next([200, 500, 500], path="/events", body=[])
        monkeypatch.setenv("PRESCIENT_GAMMA_URL", server.url)
        monkeypatch.setenv("PRESCIENT_CLOB_URL", server.url)
        monkeypatch.setenv("PRESCIENT_HTTP_RETRIES", "0")
        code, _, err = cli("cycle")
    assert code == 1
    details = assert_one_line_with_details(err, tmp_path, "Polymarket API failed", "PRESCIENT_GAMMA_URL")
    assert "Traceback" in details and "PolymarketError" in details
    assert "STEP_FAILURE" in details, "Dagster's own error log goes to the file, not the terminal"


def test_unreachable_database_is_one_line(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("PRESCIENT_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{closed_port()}/nothing")
    code, _, err = cli("portfolio", "list")
    assert code == 1
    details = assert_one_line_with_details(err, tmp_path, "cannot use the database", "PRESCIENT_DATABASE_URL")
    assert "Traceback" in details and "OperationalError" in details


def test_bad_input_is_still_exit_2_without_a_log_reference(cli, engine, tmp_path):
    code, _, err = cli("portfolio", "show", "999")
    assert code == 2
    assert err == "error: no portfolio with id 999\n"


@pytest.mark.parametrize("argv, expected", [
    (["nosuch"], "invalid choice: 'nosuch'"),
    (["backtest", "run", "--strategy", "momentum"], "the following arguments are required: --from, --to, --balance"),
    (["report", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
])
def test_bad_arguments_are_one_line_exit_2(capsys, argv, expected):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err.count("\n") == 1 and expected in err, err
    assert err.rstrip().endswith("--help`)"), "it says where the usage is"
