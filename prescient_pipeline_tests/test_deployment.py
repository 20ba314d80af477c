"""A deployment of more than one process: the code location in its own gRPC server, the webserver
and the daemon as separate processes on one PostgreSQL, as they would run on separate machines
(README, "Scaling past one machine"). A schedule-triggered cycle completes through the daemon:
refresh, every portfolio's signals, execution, snapshot."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import ExitStack
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from prescient_pipeline import dagster_home
from prescient_pipeline.db import embedded
from prescient_pipeline.db.engine import dispose_engines, get_engine
from prescient_pipeline.db.migrate import ensure_schema
from prescient_pipeline.db.urls import with_database
from prescient_pipeline.polymarket.simulator import SimulatorServer, Universe
from prescient_pipeline.services import portfolios as svc

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, ready, seconds: float, processes: list[subprocess.Popen]):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        dead = [p.args for p in processes if p.poll() is not None]
        assert not dead, f"a deployment process exited while waiting for {what}: {dead}"
        value = ready()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"gave up waiting for {what} after {seconds:.0f} s")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["data"]


@pytest.fixture
def own_engine(database_url, monkeypatch):
    """A database of its own (and so a Dagster database of its own): the daemon's heartbeats and
    runs must not reach the other tests' instance."""
    name = f"prescient_deploy_{uuid.uuid4().hex[:10]}"
    embedded.ensure_database(database_url, name)
    url = with_database(database_url, name)
    monkeypatch.setenv("PRESCIENT_DATABASE_URL", url)
    yield ensure_schema(get_engine(url))
    dispose_engines()
    for suffix in ("", "_dagster"):
        embedded.drop_database(database_url, name + suffix)


@pytest.mark.slow
def test_a_scheduled_cycle_completes_through_code_server_webserver_and_daemon(own_engine, tmp_path, monkeypatch):
    engine = own_engine
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    dagster_home.prepare()  # the repo's dagster.yaml in DAGSTER_HOME, as README's recipe says
    ids = [
        svc.create_portfolio(engine, svc.NewPortfolio.parse(name=f"deployed {kind}", strategy=kind,
                                                            balance="1000"))["portfolio_id"]
        for kind in ("momentum", "mean_reversion")
    ]
    grpc_port, web_port = free_port(), free_port()
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - grpc_server:\n"
        f"      host: 127.0.0.1\n      port: {grpc_port}\n      location_name: prescient_pipeline\n"
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    # The simulator's clock follows the wall clock, as `prescient dev --offline` serves it.
    with ExitStack() as stack, SimulatorServer(Universe(seed=11, events=40, start=datetime.now(timezone.utc))) as sim:
        sim.start()
        env = {
            **os.environ,
            "PRESCIENT_GAMMA_URL": sim.url, "PRESCIENT_CLOB_URL": sim.url,
            # Every minute, so the test need not wait for 09:00 and 23:55.
            "PRESCIENT_CYCLE_CRON": "* * * * *", "PRESCIENT_SNAPSHOT_CRON": "* * * * *",
        }
        processes: list[subprocess.Popen] = []

        def start(name: str, *args: str) -> None:
            out = open(logs / f"{name}.log", "w")
            stack.callback(out.close)
            process = subprocess.Popen([str(BIN / args[0]), *args[1:]], env=env, stdout=out,
                                       stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True)
            processes.append(process)

            def stop():
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
                    try:
                        process.wait(20)
                    except subprocess.TimeoutExpired:
                        os.killpg(process.pid, signal.SIGKILL)
                        process.wait()
            stack.callback(stop)

        start("code-server", "dagster", "code-server", "start", "-m", "prescient_pipeline.definitions",
              "-h", "127.0.0.1", "-p", str(grpc_port), "--location-name", "prescient_pipeline")
        wait_for("the code server", lambda: subprocess.run(
            [str(BIN / "dagster"), "api", "grpc-health-check", "-p", str(grpc_port)], env=env,
            capture_output=True).returncode == 0, 180, processes)
        start("webserver", "dagster-webserver", "-w", str(workspace), "-h", "127.0.0.1", "-p", str(web_port))
        start("daemon", "dagster-daemon", "run", "-w", str(workspace))
        wait_for("the webserver", lambda: answers(f"http://127.0.0.1:{web_port}/server_info"), 180, processes)

        def cycle_done():
            with engine.connect() as conn:
                history = conn.execute(text("SELECT count(DISTINCT portfolio_id) FROM portfolio_history")).scalar()
                executed = conn.execute(text(
                    "SELECT count(DISTINCT portfolio_id) FROM trading_signals WHERE executed")).scalar()
            return history == len(ids) and executed == len(ids)

        try:
            wait_for("a scheduled cycle (refresh, signals, execution, snapshot)", cycle_done, 420, processes)
        except AssertionError:
            for log in sorted(logs.iterdir()):
                print(f"--- {log.name}\n{log.read_text()[-3000:]}")
            raise

        # The webserver, a process of its own, shows the runs the daemon launched: one storage.
        # A run's rows are written before Dagster records the run's success, so wait for it.
        cycle_jobs = {"refresh_markets_job", "portfolio_signals_job", "execute_signals_job",
                      "portfolio_snapshot_job"}

        def cycle_runs_succeeded():
            found = graphql(web_port, "{ runsOrError { ... on Runs { results { jobName status tags { key value } } } } }")
            succeeded = {r["jobName"] for r in found["runsOrError"]["results"] if r["status"] == "SUCCESS"}
            return found if cycle_jobs <= succeeded else None

        runs = wait_for("the cycle's runs to be recorded as succeeded", cycle_runs_succeeded, 180, processes)
        scheduled = [r for r in runs["runsOrError"]["results"] if r["jobName"] == "refresh_markets_job"
                     and any(t["key"] == "dagster/schedule_name" and t["value"] == "trading_cycle_schedule"
                             for t in r["tags"])]
        assert scheduled, "the cycle's refresh was launched by the schedule"

    with engine.connect() as conn:
        trades = conn.execute(text("SELECT portfolio_id, count(*) FROM trades GROUP BY portfolio_id")).all()
        balance = conn.execute(text(
            "SELECT portfolio_id, total_value, initial_balance + net_transfers + realized_pnl + unrealized_pnl "
            "FROM portfolio_history")).all()
    assert {pid for pid, n in trades if n > 0} == set(ids)
    # Each history row balances to the cent: value = initial + transfers + realized + unrealized.
    assert all(abs(Decimal(value) - Decimal(expected)) < Decimal("0.01") for _, value, expected in balance)
