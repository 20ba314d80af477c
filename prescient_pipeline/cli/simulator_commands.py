"""`prescient simulator serve`: the offline Polymarket."""

from __future__ import annotations

from ..errors import InputError
from . import Output

MAX_HISTORY_DAYS = 366  # as polymarket.simulator.universe (not imported here: it loads numpy)


def register(sub, common) -> None:
    sim = sub.add_parser("simulator", help="the offline Polymarket simulator")
    sim_sub = sim.add_subparsers(dest="simulator_command", required=True, metavar="ACTION")
    serve = sim_sub.add_parser("serve", parents=[common], help="serve the Gamma and CLOB APIs locally")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--seed", type=int, default=7)
    serve.add_argument("--events", type=int, default=300)
    serve.add_argument("--history-days", type=int, default=0,
                       help="days of past before now, during which markets opened, traded and resolved: "
                            "closed markets on Gamma and /prices-history for them (default 0)")
    serve.set_defaults(handler=_serve)


def _serve(args) -> Output:
    check_history_days(args.history_days)
    from ..polymarket.simulator.server import serve

    serve(port=args.port, seed=args.seed, events=args.events, host=args.host, history_days=args.history_days)
    return Output({"stopped": True}, "simulator stopped")


def check_history_days(days: int | None) -> None:
    if days is not None and not 0 <= days <= MAX_HISTORY_DAYS:
        raise InputError(f"--history-days must be between 0 and {MAX_HISTORY_DAYS}, not {days}")
