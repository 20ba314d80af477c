"""`prescient dev`: the Dagster UI and daemon on PostgreSQL, optionally fully offline."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

import requests

from .. import dagster_home
from ..config import settings, simulator_marker
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
    instance = dagster_home.instance()
    with ExitStack() as cleanup:
        # Until dagster dev runs, a SIGTERM unwinds like Ctrl-C, through the cleanups below.
        cleanup.callback(signal.signal, signal.SIGTERM, signal.signal(signal.SIGTERM, _interrupt))
        if args.with_examples:
            rows = create_examples(engine)
            for row in rows:
                dagster_home.register_portfolio(instance, row["portfolio_id"])
            print("example portfolios: " + ", ".join(f"{r['portfolio_id']} {r['name']}" for r in rows), flush=True)
        if args.offline:
            _serve_simulator(args, cleanup)
            _first_runs(instance, engine, cycle=args.with_examples)
        elif args.with_examples:
            print("their first cycle runs at the trading_cycle_schedule's time, or now with `prescient cycle`",
                  flush=True)
        print(f"DAGSTER_HOME={home}; open http://127.0.0.1:{args.port}", flush=True)
        cmd = [sys.executable, "-m", "dagster", "dev", "-w", str(REPO_ROOT / "workspace.yaml"), "-p", str(args.port)]
        # In DAGSTER_HOME: dagster warns about the repository's own dagster.yaml in its working directory.
        code = _run_until_stopped(cmd, cwd=home)
    return Output({"exit_code": code}, "", exit_code=code)


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def _serve_simulator(args, cleanup: ExitStack) -> None:
    """Serve the simulator in this process, point every client at it (this process, dagster dev
    and, through a marker in PRESCIENT_HOME, other prescient commands), and move its clock."""
    from ..polymarket.simulator.server import SimulatorServer
    from ..polymarket.simulator.universe import Universe

    simulator = SimulatorServer(Universe(seed=args.seed, events=args.events)).start()
    cleanup.callback(simulator.stop)
    os.environ["PRESCIENT_GAMMA_URL"] = simulator.url
    os.environ["PRESCIENT_CLOB_URL"] = simulator.url
    marker = simulator_marker(settings().home)
    marker.write_text(json.dumps({"url": simulator.url, "pid": os.getpid()}))
    cleanup.callback(marker.unlink, missing_ok=True)
    clock = SimulatedClock(simulator.url)
    clock.start()
    cleanup.callback(clock.stop)
    print(f"simulator serving {args.events} events at {simulator.url}; its clock follows the wall clock",
          flush=True)


def _first_runs(instance, engine, cycle: bool) -> None:
    """Offline, don't leave the UI empty until the first schedule fires: refresh the markets now,
    and with the example portfolios run today's cycle, so price updates have positions to mark."""
    from ..defs import runner

    try:
        if cycle:
            print("running today's trading cycle for the example portfolios...", flush=True)
            runner.run_cycle(instance, engine, datetime.now(timezone.utc).date(), with_snapshot=False)
        else:
            print("refreshing the markets...", flush=True)
            runner.refresh(instance)
    except Exception as exc:  # the UI is still worth opening: the runs' logs say what failed
        print(f"warning: the first runs failed ({str(exc).splitlines()[0]}); see them in the UI", flush=True)


def _run_until_stopped(cmd: list[str], cwd: Path) -> int:
    """Run `dagster dev` until it exits. Ctrl-C reaches it directly (same process group); a
    SIGTERM sent to this process alone is passed on as the Ctrl-C that dagster dev shuts down on,
    so the webserver and daemon never outlive it."""
    child = subprocess.Popen(cmd, cwd=cwd)
    signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGINT))
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:
            continue  # dagster dev got the same Ctrl-C: wait for it to finish shutting down


def _dagster(args) -> Output:
    """DAGSTER_HOME and the storage URL set (embedded PostgreSQL kept up while it runs)."""
    dagster_home.prepare()
    code = subprocess.call([sys.executable, "-m", "dagster", *args.dagster_args], cwd=REPO_ROOT)
    return Output({"exit_code": code}, "", exit_code=code)
