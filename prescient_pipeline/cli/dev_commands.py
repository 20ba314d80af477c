"""`prescient dev`: the Dagster UI and daemon on PostgreSQL, optionally fully offline."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from .. import dagster_home
from ..db.migrate import ensure_schema
from ..db.engine import get_engine
from ..services.examples import create_examples
from . import Output

REPO_ROOT = Path(__file__).resolve().parents[2]


class SimulatedClock(threading.Thread):
    """Moves the offline simulator's clock with the wall clock, so prices move and markets
    resolve while the UI is open. It goes through the simulator's own HTTP endpoint."""

    def __init__(self, url: str, every_seconds: float = 15.0):
        super().__init__(daemon=True, name="simulated-clock")
        self.url, self.every = url, every_seconds
        self._stop = threading.Event()

    def run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self.every):
            now = time.monotonic()
            try:
                requests.post(f"{self.url}/__sim__/advance", params={"minutes": (now - last) / 60}, timeout=30)
                last = now
            except requests.RequestException:
                pass  # the next tick catches up

    def stop(self) -> None:
        self._stop.set()


def register(sub, common) -> None:
    dev = sub.add_parser("dev", parents=[common], help="open the Dagster UI (webserver + daemon)")
    dev.add_argument("--port", type=int, default=3000, help="web UI port")
    dev.add_argument("--offline", action="store_true", help="serve the simulator and point the client at it")
    dev.add_argument("--seed", type=int, default=7, help="simulator seed (with --offline)")
    dev.add_argument("--events", type=int, default=300, help="simulated events (with --offline)")
    dev.add_argument("--with-examples", action="store_true", help="create the example portfolios")
    dev.set_defaults(handler=_dev)

    dg_cmd = sub.add_parser("dagster", help="run a `dagster` CLI command against this project's instance",
                            description="Example: prescient dagster definitions validate -w workspace.yaml")
    dg_cmd.add_argument("dagster_args", nargs=argparse.REMAINDER, help="arguments for `dagster`")
    dg_cmd.set_defaults(handler=_dagster)


def _dev(args) -> Output:
    home = dagster_home.prepare()  # embedded PostgreSQL if needed; this process keeps it alive
    engine = ensure_schema(get_engine())
    if args.with_examples:
        rows = create_examples(engine)
        instance = dagster_home.instance()
        for row in rows:
            dagster_home.register_portfolio(instance, row["portfolio_id"])
        print("example portfolios: " + ", ".join(f"{r['portfolio_id']} {r['name']}" for r in rows), flush=True)
    simulator = clock = None
    if args.offline:
        from ..polymarket.simulator.server import SimulatorServer
        from ..polymarket.simulator.universe import Universe

        simulator = SimulatorServer(Universe(seed=args.seed, events=args.events)).start()
        os.environ["PRESCIENT_GAMMA_URL"] = simulator.url
        os.environ["PRESCIENT_CLOB_URL"] = simulator.url
        clock = SimulatedClock(simulator.url)
        clock.start()
        print(f"simulator serving {args.events} events at {simulator.url}; its clock follows the wall clock",
              flush=True)
    print(f"DAGSTER_HOME={home}; open http://127.0.0.1:{args.port}", flush=True)
    cmd = [sys.executable, "-m", "dagster", "dev", "-w", str(REPO_ROOT / "workspace.yaml"), "-p", str(args.port)]
    try:
        code = subprocess.call(cmd, cwd=REPO_ROOT)
    finally:
        if clock:
            clock.stop()
        if simulator:
            simulator.stop()
    return Output({"exit_code": code}, "", exit_code=code)


def _dagster(args) -> Output:
    """DAGSTER_HOME and the storage URL set (embedded PostgreSQL kept up while it runs)."""
    dagster_home.prepare()
    code = subprocess.call([sys.executable, "-m", "dagster", *args.dagster_args], cwd=REPO_ROOT)
    return Output({"exit_code": code}, "", exit_code=code)
