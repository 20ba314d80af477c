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
    assert len(data["dagster"]["schedules_and_sensors"]) == 10  # with portfolio_report_sensor


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


def test_dev_offline_with_examples_trades_at_once_and_stops_cleanly_on_sigterm(own_database, tmp_path):
    port = free_port()
    env = {**os.environ, "PRESCIENT_HOME": str(tmp_path), "PRESCIENT_DATABASE_URL": own_database}
    for key in ("PRESCIENT_GAMMA_URL", "PRESCIENT_CLOB_URL", "DAGSTER_HOME"):
        env.pop(key, None)
    log = (tmp_path / "dev.log").open("w")
    dev = subprocess.Popen(
        [sys.executable, "-m", "prescient_pipeline", "dev", "--offline", "--with-examples", "--events", "60",
         "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        wait_for("the web UI", lambda: answers(f"http://127.0.0.1:{port}/server_info"), 180)
        output = (tmp_path / "dev.log").read_text()
        assert "running today's trading cycle for the example portfolios" in output
        assert "warning" not in output.split("DAGSTER_HOME=")[0], output

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
