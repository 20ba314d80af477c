"""`prescient dev`: the Dagster UI and daemon on PostgreSQL, optionally fully offline.

Stopping: SIGINT, SIGTERM or SIGHUP from any parent (a terminal, a service manager, a script
without job control) stops everything `dev` started. `dagster dev` runs in a process group of its
own (so the webserver, daemon, code server and run workers can be stopped together), and a small
watchdog process stops that group if `dev` itself dies without cleaning up (kill -9).
"""

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

from ..config import settings, simulator_marker
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
        import requests

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
    dev.add_argument("--offline", action="store_true",
                     help="serve this home's offline world (the simulator) and point the client at it")
    dev.add_argument("--seed", type=int, default=None,
                     help=f"seed of a new offline world (default {DEFAULT_SEED}); an existing one keeps its own")
    dev.add_argument("--events", type=int, default=None,
                     help=f"events of a new offline world (default {DEFAULT_EVENTS})")
    dev.add_argument("--history-days", type=int, default=None,
                     help="days of past of a new offline world, for `prescient history import` (default 0)")
    dev.add_argument("--with-examples", action="store_true", help="create the example portfolios")
    dev.set_defaults(handler=_dev)

    dg_cmd = sub.add_parser("dagster", help="run a `dagster` CLI command against this project's instance",
                            description="Example: prescient dagster definitions validate -w workspace.yaml")
    dg_cmd.add_argument("dagster_args", nargs=argparse.REMAINDER, help="arguments for `dagster`")
    dg_cmd.set_defaults(handler=_dagster)


DEFAULT_SEED, DEFAULT_EVENTS = 7, 300
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
UI_WAIT_SECONDS = 600


def _say(line: str) -> None:
    print(line, flush=True)


def _dev(args) -> Output:
    from .. import dagster_home
    from ..db.engine import get_engine
    from ..db.migrate import current_revision, ensure_schema
    from ..db.urls import redact

    began = time.monotonic()
    if not args.offline and settings().api_source == "offline":
        from ..errors import InputError

        # Its schedules would bring live markets into a ledger built on the offline world.
        raise InputError("this home runs on its offline world: start `prescient dev --offline` "
                         "(or set PRESCIENT_OFFLINE=0 to use the live API here)")
    with ExitStack() as cleanup:
        # Until dagster dev runs, a stop signal unwinds like Ctrl-C, through the cleanups below.
        # Installing handlers also undoes an ignored SIGINT inherited from a shell without job
        # control, which dagster dev would otherwise inherit too (and with it, ignore SIGTERM).
        for sig in STOP_SIGNALS:
            cleanup.callback(signal.signal, sig, signal.signal(sig, _interrupt))
        _say("database: starting..." if not settings().database_url else "database: connecting...")
        home = dagster_home.prepare()  # embedded PostgreSQL if needed; this process keeps it alive
        engine = get_engine()
        _say(f"database: {redact(engine.url.render_as_string(hide_password=False))}")
        ensure_schema(engine)
        _say(f"migrations: at {current_revision(engine)}")
        instance = dagster_home.instance()
        if args.offline:  # first: a world that is not the ledger's stops dev before anything is written
            _serve_simulator(args, engine, cleanup)
        if args.with_examples:
            from ..services.examples import create_examples

            rows = create_examples(engine)
            for row in rows:
                dagster_home.register_portfolio(instance, row["portfolio_id"])
            _say("example portfolios: " + ", ".join(f"{r['portfolio_id']} {r['name']}" for r in rows))
        if args.offline:
            _first_runs(instance, engine, cycle=args.with_examples)
        elif args.with_examples:
            _say("their first cycle runs at the trading_cycle_schedule's time, or now with `prescient cycle`")
        _say(f"DAGSTER_HOME={home}")
        _say("webserver and daemon: starting (the UI address follows once it answers)...")
        cmd = [sys.executable, "-m", "dagster", "dev", "-w", str(REPO_ROOT / "workspace.yaml"), "-p", str(args.port)]
        # In DAGSTER_HOME: dagster warns about the repository's own dagster.yaml in its working directory.
        code = _run_until_stopped(cmd, cwd=home, ui=f"http://127.0.0.1:{args.port}", began=began)
    return Output({"exit_code": code}, "", exit_code=code)


def _interrupt(*_) -> None:
    raise KeyboardInterrupt


def offline_world(home: Path, engine, seed: int | None = None, events: int | None = None,
                  history_days: int | None = None):
    """This home's offline world (created on first use), rebuilt to now and checked against the
    ledger: every market a portfolio holds must be served as the same market. Returns
    (state, universe)."""
    from ..errors import InputError
    from ..polymarket.simulator import state as world
    from ..services.held_markets import held_markets
    from .simulator_commands import check_history_days

    check_history_days(history_days)
    stored = world.load(home)
    if stored is None:
        state = world.WorldState.new(DEFAULT_SEED if seed is None else seed,
                                     DEFAULT_EVENTS if events is None else events, history_days=history_days or 0)
    else:
        asked = [f"--{name.replace('_', '-')} {value}"
                 for name, value in (("seed", seed), ("events", events), ("history_days", history_days))
                 if value is not None and value != getattr(stored, name)]
        if asked:
            past = f" ({stored.history_days} days of history)" if stored.history_days else ""
            raise InputError(f"this home's offline world has seed {stored.seed} and {stored.events} events{past}, not "
                             f"{' '.join(asked)}; drop the option, or use another PRESCIENT_HOME for another world")
        state = stored
    universe = state.universe()
    held = held_markets(engine)
    problems = world.mismatched_markets(universe, held)
    if problems:
        raise RuntimeError(
            f"the offline world in {world.state_path(home)} does not serve {len(problems)} of the {len(held)} "
            f"markets your portfolios hold ({problems[0]}); nothing was changed. Run `prescient demo --reset` "
            "or use a fresh PRESCIENT_HOME")
    state = state.at(universe)
    world.save(home, state)
    return state, universe


def _serve_simulator(args, engine, cleanup: ExitStack) -> None:
    """Serve this home's offline world in this process, point every client at it (this process,
    dagster dev and, through a marker in PRESCIENT_HOME, other prescient commands), and move its
    clock with the wall clock. Its clock is saved when dev stops."""
    from ..polymarket.simulator import state as world
    from ..polymarket.simulator.server import SimulatorServer

    home = settings().home
    _say("simulator: rebuilding this home's offline world...")
    state, universe = offline_world(home, engine, args.seed, args.events, args.history_days)
    simulator = SimulatorServer(universe).start()
    cleanup.callback(simulator.stop)

    def save_clock() -> None:
        current = world.load(home)
        if current is not None and (current.seed, current.events, current.start) != (state.seed, state.events, state.start):
            return  # replaced meanwhile (a demo): that world is the ledger's now
        with simulator.lock:
            world.save(home, state.at(universe))

    cleanup.callback(save_clock)
    os.environ["PRESCIENT_GAMMA_URL"] = simulator.url
    os.environ["PRESCIENT_CLOB_URL"] = simulator.url
    marker = simulator_marker(home)
    marker.write_text(json.dumps({"url": simulator.url, "pid": os.getpid()}))
    cleanup.callback(marker.unlink, missing_ok=True)
    clock = SimulatedClock(simulator.url)
    clock.start()
    cleanup.callback(clock.stop)
    _say(f"simulator: {state.events} events (seed {state.seed}, world since {state.start:%Y-%m-%d %H:%M} UTC) "
         f"at {simulator.url}, clock {universe.now:%Y-%m-%d %H:%M} UTC, following the wall clock")


def _first_runs(instance, engine, cycle: bool) -> None:
    """Offline, don't leave the UI empty until the first schedule fires: refresh the markets now,
    and with the example portfolios run today's cycle, so price updates have positions to mark."""
    from ..defs import runner

    try:
        if cycle:
            _say("running today's trading cycle for the example portfolios...")
            runner.run_cycle(instance, engine, datetime.now(timezone.utc).date(), with_snapshot=False)
        else:
            _say("refreshing the markets...")
            runner.refresh(instance)
    except Exception as exc:  # the UI is still worth opening: the runs' logs say what failed
        _say(f"warning: the first runs failed ({str(exc).splitlines()[0]}); see them in the UI")


# Run by `python -c` beside dagster dev: stops dagster dev's process group when `prescient dev`
# goes away without saying it stopped it (its stdin then reaches end of file).
WATCHDOG = """
import os, signal, sys, time
for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(sig, signal.SIG_IGN)
group = int(sys.argv[1])
if sys.stdin.readline().strip() == "stopped":
    sys.exit(0)
for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 0)):
    deadline = time.monotonic() + grace
    try:
        os.killpg(group, sig)
        while time.monotonic() < deadline:
            time.sleep(0.2)
            os.killpg(group, 0)
    except ProcessLookupError:
        break
"""


def _run_until_stopped(cmd: list[str], cwd: Path, ui: str, began: float) -> int:
    """Run `dagster dev` in a process group of its own until it exits or this process is told to
    stop; then stop the whole group: SIGINT to dagster dev (it shuts its services down), and
    whatever is left of the group after that is terminated."""
    stop = threading.Event()
    for sig in STOP_SIGNALS:
        signal.signal(sig, lambda *_: stop.set())
    child = subprocess.Popen(cmd, cwd=cwd, start_new_session=True)
    watchdog = subprocess.Popen([sys.executable, "-c", WATCHDOG, str(child.pid)], stdin=subprocess.PIPE,
                                start_new_session=True)
    try:
        announced = False
        deadline = time.monotonic() + UI_WAIT_SECONDS
        while not stop.is_set() and child.poll() is None:
            if not announced and _answers(f"{ui}/server_info"):
                _say(f"Dagster UI ready after {time.monotonic() - began:.0f}s: open {ui}")
                announced = True
            elif not announced and time.monotonic() > deadline:
                _say(f"warning: the UI has not answered at {ui} after {UI_WAIT_SECONDS}s")
                announced = True
            stop.wait(1)
        if stop.is_set():
            _say("stopping the webserver and daemon...")
        code = child.poll()
        _stop_group(child)
    finally:
        if child.poll() is None:  # an error above: leave nothing behind
            _signal_group(child.pid, signal.SIGKILL)
        try:
            watchdog.stdin.write(b"stopped\n")
            watchdog.stdin.close()
        except OSError:
            pass
        watchdog.wait(timeout=10)
    return 0 if code is None else code


def _stop_group(child: subprocess.Popen, grace: float = 60) -> None:
    """SIGINT to dagster dev, then SIGTERM and SIGKILL to anything left in its process group."""
    if child.poll() is None:
        child.send_signal(signal.SIGINT)
        try:
            child.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        if not _signal_group(child.pid, sig):
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _signal_group(child.pid, 0):
            time.sleep(0.2)
    child.poll()


def _signal_group(group: int, sig: int) -> bool:
    """Send `sig` to a process group; False when the group has no process left."""
    try:
        os.killpg(group, sig)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:  # only zombies left, or not ours
        return False


def _answers(url: str) -> bool:
    import requests

    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


def _dagster(args) -> Output:
    """DAGSTER_HOME and the storage URL set (embedded PostgreSQL kept up while it runs)."""
    from .. import dagster_home

    dagster_home.prepare()
    code = subprocess.call([sys.executable, "-m", "dagster", *args.dagster_args], cwd=REPO_ROOT)
    return Output({"exit_code": code}, "", exit_code=code)
