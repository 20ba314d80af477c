"""`prescient dev --offline --with-examples` as a user starts it, and `prescient status` beside it."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests
from sqlalchemy import text

from prescient_pipeline.cli import main
from prescient_pipeline.config import settings, simulator_marker
from prescient_pipeline.db import embedded
from prescient_pipeline.db.engine import dispose_engines, get_engine
from prescient_pipeline.db.urls import with_database

from prescient_pipeline.polymarket.simulator import state as world

from .helpers import simulator


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, predicate, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    pytest.fail(f"gave up after {seconds}s waiting for {what}")


def answers(url):
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


# --- where the API URLs come from -------------------------------------------------------------

def test_a_running_offline_dev_lends_its_simulator_to_other_commands(tmp_path, monkeypatch):
    monkeypatch.setenv("PRESCIENT_HOME", str(tmp_path))
    monkeypatch.delenv("PRESCIENT_GAMMA_URL", raising=False)
    monkeypatch.delenv("PRESCIENT_CLOB_URL", raising=False)
    assert settings().api_source == "default"
    assert settings().gamma_url == "https://gamma-api.polymarket.com"

    simulator_marker(tmp_path).write_text(json.dumps({"url": "http://127.0.0.1:8765/", "pid": os.getpid()}))
    assert (settings().gamma_url, settings().clob_url) == ("http://127.0.0.1:8765", "http://127.0.0.1:8765")
    assert settings().api_source == "offline simulator"

    monkeypatch.setenv("PRESCIENT_GAMMA_URL", "http://127.0.0.1:9999")
    assert settings().gamma_url == "http://127.0.0.1:9999" and settings().api_source == "environment"
    monkeypatch.delenv("PRESCIENT_GAMMA_URL")

    # A marker left behind by a process that has gone is ignored.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    simulator_marker(tmp_path).write_text(json.dumps({"url": "http://127.0.0.1:8765", "pid": dead.pid}))
    assert settings().api_source == "default"
    simulator_marker(tmp_path).write_text("not json")
    assert settings().api_source == "default"
    simulator_marker(tmp_path).unlink()
    simulator_marker(tmp_path).mkdir()  # unreadable as a file
    assert settings().api_source == "default"


# --- prescient status ---------------------------------------------------------------------------

@pytest.fixture
def status(engine, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))

    def run():
        code = main(["status", "--json"])
        out, err = capsys.readouterr()
        return code, json.loads(out), err

    return run


def test_status_is_ok_with_the_database_and_the_api_reachable(status, monkeypatch):
    with simulator(monkeypatch, events=20):
        code, data, _ = status()
    assert code == 0, data["problems"]
    assert data["database"]["migrated"] and data["database"]["revision"] == data["database"]["head"]
    assert data["polymarket"]["gamma"] and data["polymarket"]["clob"]
    assert data["polymarket"]["source"] == "environment"
    assert data["warnings"][0] == "markets were never refreshed"
    assert data["dagster"]["daemon_running"] is False
    from prescient_pipeline.definitions import defs
    assert len(data["dagster"]["schedules_and_sensors"]) == len(defs.schedules) + len(defs.sensors)


def test_status_exits_1_naming_an_unreachable_api(status, monkeypatch):
    closed = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("PRESCIENT_GAMMA_URL", closed)
    monkeypatch.setenv("PRESCIENT_CLOB_URL", closed)
    monkeypatch.setenv("PRESCIENT_HTTP_RETRIES", "0")
    code, data, _ = status()
    assert code == 1
    assert data["problems"] == [f"gamma API unreachable at {closed}", f"clob API unreachable at {closed}"]


def test_status_exits_1_naming_an_unbalanced_portfolio(status, engine, monkeypatch):
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO portfolios (name, strategy_type, initial_balance, current_balance) "
            "VALUES ('leaky', 'momentum', 1000, 1000)"
        ))
        conn.execute(text("UPDATE portfolios SET current_balance = 990"))  # ten dollars vanish
    with simulator(monkeypatch, events=20):
        code, data, _ = status()
    assert code == 1
    assert data["problems"] and all("(leaky)" in p and "difference -10" in p for p in data["problems"]), \
        data["problems"]


def test_status_right_after_the_demo_says_offline_and_exits_0(status, capsys, tmp_path, monkeypatch):
    # A home with an offline world (what `prescient demo` leaves), no URL set, no simulator
    # running: offline by choice, not broken. The live API is not asked.
    monkeypatch.setenv("PRESCIENT_HOME", str(tmp_path))
    for key in ("PRESCIENT_GAMMA_URL", "PRESCIENT_CLOB_URL", "PRESCIENT_OFFLINE"):
        monkeypatch.delenv(key, raising=False)
    world.save(tmp_path, world.WorldState.new(7, 300))
    code, data, _ = status()
    assert code == 0, data["problems"]
    assert data["polymarket"] == {"source": "offline", "offline": True, "simulator_running": False}
    assert main(["status"]) == 0
    out, _ = capsys.readouterr()
    assert "polymarket: offline (this home runs on its offline world" in out and "status: ok" in out

    # The explicit setting wins either way.
    monkeypatch.setenv("PRESCIENT_OFFLINE", "0")
    monkeypatch.setenv("PRESCIENT_HTTP_RETRIES", "0")
    assert settings().api_source == "default"
    monkeypatch.setenv("PRESCIENT_OFFLINE", "maybe")
    assert main(["status"]) == 2


@pytest.mark.parametrize("argv", [["cycle"], ["prices", "update"]])
def test_commands_that_need_the_api_say_in_one_line_what_to_do(argv, engine, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PRESCIENT_HOME", str(tmp_path))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    monkeypatch.delenv("PRESCIENT_OFFLINE", raising=False)
    closed = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("PRESCIENT_GAMMA_URL", closed)
    monkeypatch.setenv("PRESCIENT_CLOB_URL", closed)
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, err
    assert err.startswith(f"error: ApiUnreachable: the Polymarket API does not answer at {closed}")
    # What to do, then where the details went.
    assert "start `prescient dev --offline` or set PRESCIENT_GAMMA_URL and PRESCIENT_CLOB_URL; details in " in err
    assert not (tmp_path / "dagster").exists(), "no run was started"

    # An offline home with nothing serving it never falls back to the live API.
    monkeypatch.delenv("PRESCIENT_GAMMA_URL")
    monkeypatch.delenv("PRESCIENT_CLOB_URL")
    world.save(tmp_path, world.WorldState.new(7, 300))
    assert main(argv) == 1
    _, err = capsys.readouterr()
    assert err.startswith("error: ApiUnreachable: this home runs on its offline world and no simulator is serving "
                          "it: start `prescient dev --offline` (or set PRESCIENT_OFFLINE=0 to use the live API); "
                          "details in ") and err.count("\n") == 1


# --- prescient dev --offline --with-examples, as a subprocess ------------------------------------

@pytest.fixture
def own_database(database_url):
    """A database of its own: the dev process's daemon launches runs this test does not wait for."""
    name = f"prescient_dev_{uuid.uuid4().hex[:10]}"
    embedded.ensure_database(database_url, name)
    yield with_database(database_url, name)
    dispose_engines()
    for suffix in ("", "_dagster"):
        embedded.drop_database(database_url, name + suffix)


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def start_dev_in_background(args: list[str], env: dict, log) -> subprocess.Popen:
    """As a script or a service manager starts it: no terminal, and (like `cmd &` in a shell
    without job control) SIGINT ignored, which every child inherits unless dev undoes it."""
    return subprocess.Popen(
        [sys.executable, "-m", "prescient_pipeline", "dev", *args], env=env, stdout=log, stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )


@pytest.mark.slow
def test_dev_offline_with_examples_trades_at_once_and_stops_cleanly_on_sigterm(own_database, tmp_path):
    port = free_port()
    env = {**os.environ, "PRESCIENT_HOME": str(tmp_path), "PRESCIENT_DATABASE_URL": own_database}
    for key in ("PRESCIENT_GAMMA_URL", "PRESCIENT_CLOB_URL", "DAGSTER_HOME"):
        env.pop(key, None)
    log = (tmp_path / "dev.log").open("w")
    dev = start_dev_in_background(["--offline", "--with-examples", "--events", "60", "--port", str(port)], env, log)
    started: set[int] = set()
    try:
        wait_for("the web UI", lambda: answers(f"http://127.0.0.1:{port}/server_info"), 180)
        output = wait_for("the UI address", lambda: (text := (tmp_path / "dev.log").read_text())
                          and f"open http://127.0.0.1:{port}" in text and text, 30)
        # Progress while it starts, and the address only once the UI answers.
        steps = ["database:", "migrations: at", "simulator: rebuilding", "running today's trading cycle",
                 "webserver and daemon: starting", f"Dagster UI ready after"]
        positions = [output.find(step) for step in steps]
        assert -1 not in positions and positions == sorted(positions), output
        assert "warning" not in output.split("DAGSTER_HOME=")[0], output
        started = descendants(dev.pid)
        assert len(started) >= 4, "dagster dev, its webserver, daemon and code server, and the watchdog"

        engine = get_engine(own_database)
        with engine.connect() as conn:
            trades = dict(conn.execute(text(
                "SELECT p.name, count(t.trade_id) FROM portfolios p LEFT JOIN trades t USING (portfolio_id) "
                "GROUP BY p.name"
            )).all())
        assert len(trades) == 4 and sum(trades.values()) > 0, trades

        def status():
            result = subprocess.run([sys.executable, "-m", "prescient_pipeline", "status", "--json"],
                                    env=env, capture_output=True, text=True, timeout=120)
            return result.returncode, json.loads(result.stdout)

        # Another terminal on the same home: same database, and the dev process's simulator.
        code, data = wait_for("the daemon's heartbeat", lambda: (s := status())[1]["dagster"]["daemon_running"] and s,
                              120)
        assert code == 0, data["problems"]
        assert data["polymarket"]["source"] == "offline simulator"
        assert data["polymarket"]["gamma"] and data["polymarket"]["clob"]
        assert data["database"]["last_refresh"]["markets"] > 0
        today = datetime.now(timezone.utc).date().isoformat()
        assert {p["last_cycle"] for p in data["database"]["portfolios"]} == {today}
        assert set(data["dagster"]["schedules_and_sensors"].values()) == {"RUNNING"}
        assert "update_prices_schedule" in data["dagster"]["schedules_and_sensors"]
    finally:
        dev.send_signal(signal.SIGTERM)
        try:
            code = dev.wait(timeout=90)
        finally:
            dev.kill()
            log.close()
    assert code == 0, (tmp_path / "dev.log").read_text()[-3000:]
    assert not answers(f"http://127.0.0.1:{port}/server_info"), "the web UI outlived prescient dev"
    assert not simulator_marker(Path(tmp_path)).exists()
    assert [pid for pid in started if alive(pid)] == [], "every process dev started is gone"
    assert port_is_free(port)
    assert world.load(Path(tmp_path)).now > world.load(Path(tmp_path)).start, "the offline world's clock was saved"


@pytest.mark.slow
def test_dev_killed_outright_leaves_no_process_behind(own_database, tmp_path):
    port = free_port()
    env = {**os.environ, "PRESCIENT_HOME": str(tmp_path), "PRESCIENT_DATABASE_URL": own_database}
    for key in ("PRESCIENT_GAMMA_URL", "PRESCIENT_CLOB_URL", "DAGSTER_HOME"):
        env.pop(key, None)
    with (tmp_path / "dev.log").open("w") as log:
        dev = start_dev_in_background(["--port", str(port)], env, log)
        try:
            wait_for("the web UI", lambda: answers(f"http://127.0.0.1:{port}/server_info"), 180)
            started = descendants(dev.pid)
            assert len(started) >= 4, started
        finally:
            dev.kill()  # SIGKILL: no chance to clean up; the watchdog does it
            dev.wait()
    wait_for("every process dev started to stop", lambda: not any(alive(pid) for pid in started), 90)
    assert port_is_free(port)
