"""Time the `prescient` commands that only read the ledger, as a user runs them (goal: under 1 s).

    python benchmarks/bench_cli.py [--repeats N] [--portfolios N] [--positions N]

Each command is a fresh `python -m prescient_pipeline ...` process, timed from start to exit, over
a ledger of `--portfolios` portfolios holding `--positions` positions each (markets from a
refresh of the local simulator). `--help` is the floor: the interpreter and the argument parser.

Where the database runs changes the figures, so they are printed apart:
- "server running": PRESCIENT_DATABASE_URL points at a running server, or the embedded
  PostgreSQL is already up (held by this process, as `prescient dev` holds it);
- "embedded, cold" (without PRESCIENT_DATABASE_URL only): no process holds the embedded server,
  so each command starts it and stops it on exit.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_prices import scratch_database, seed_portfolios, seed_positions, simulated_market_data
from prescient_pipeline.db.engine import get_engine
from prescient_pipeline.db.migrate import ensure_schema

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = [["--help"], ["portfolio", "list"], ["portfolio", "show", "1"], ["report"], ["trades"], ["strategies"]]


def time_command(argv: list[str], env: dict, repeats: int) -> tuple[list[float], list[float]]:
    """Wall seconds and CPU seconds (user + system) of each run. On a busy machine the wall time
    includes waiting for a core; the CPU time is what the command itself costs."""
    wall, cpu = [], []
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "prescient_pipeline", *argv], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise SystemExit(f"`prescient {' '.join(argv)}` failed: {done.stderr.strip()}")
    return wall, cpu


def report(title: str, env: dict, repeats: int) -> None:
    print(f"\n{title} ({repeats} runs each; load average {os.getloadavg()[0]:.1f}): "
          "wall min / median / max, CPU median (seconds)")
    for argv in COMMANDS:
        wall, cpu = time_command(argv, env, repeats)
        print(f"  prescient {' '.join(argv):<18} {min(wall):5.2f} / {statistics.median(wall):5.2f} / "
              f"{max(wall):5.2f}   cpu {statistics.median(cpu):5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--portfolios", type=int, default=20)
    parser.add_argument("--positions", type=int, default=20)
    args = parser.parse_args()

    external = os.environ.get("PRESCIENT_DATABASE_URL")
    with scratch_database() as url:
        engine = ensure_schema(get_engine(url))
        with simulated_market_data(engine, events=200):
            ids = seed_portfolios(engine, args.portfolios)
            markets = seed_positions(engine, ids, args.positions)
        print(f"ledger: {len(ids)} portfolios x {args.positions} positions over {markets} markets")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        report("server running", {**env, "PRESCIENT_DATABASE_URL": url}, args.repeats)
        if not external:
            # The children find the embedded server under PRESCIENT_HOME and join it.
            joined = {k: v for k, v in env.items() if k != "PRESCIENT_DATABASE_URL"}
            report("embedded, already up (as while `prescient dev` runs)", joined, args.repeats)
    if not external:
        # scratch_database has stopped the embedded server; each command now starts and stops it.
        # (Its home is gone, so use a fresh one: the cost measured is the server's start and stop.)
        home = Path(os.environ["PRESCIENT_HOME"]).with_name(Path(os.environ["PRESCIENT_HOME"]).name + "-cold")
        cold = {k: v for k, v in env.items() if k != "PRESCIENT_DATABASE_URL"} | {"PRESCIENT_HOME": str(home)}
        # Creates the cluster once, and portfolio 1 for `portfolio show 1`.
        time_command(["portfolio", "create", "--name", "bench", "--strategy", "momentum", "--balance", "1000"], cold, 1)
        report("embedded, cold (no process holds the server)", cold, args.repeats)


if __name__ == "__main__":
    main()
