"""`prescient simulator serve`: the offline Polymarket."""

from __future__ import annotations

from . import Output


def register(sub, common) -> None:
    sim = sub.add_parser("simulator", help="the offline Polymarket simulator")
    sim_sub = sim.add_subparsers(dest="simulator_command", required=True, metavar="ACTION")
    serve = sim_sub.add_parser("serve", parents=[common], help="serve the Gamma and CLOB APIs locally")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--seed", type=int, default=7)
    serve.add_argument("--events", type=int, default=300)
    serve.set_defaults(handler=_serve)


def _serve(args) -> Output:
    from ..polymarket.simulator.server import serve

    serve(port=args.port, seed=args.seed, events=args.events, host=args.host)
    return Output({"stopped": True}, "simulator stopped")
