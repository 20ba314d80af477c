"""`prescient strategies` and `prescient strategy validate`."""

from __future__ import annotations

import json

from . import Output


def register(sub, common) -> None:
    s = sub.add_parser("strategies", parents=[common], help="list strategies with their default config")
    s.set_defaults(handler=_strategies)
    st = sub.add_parser("strategy", help="strategy tools")
    st_sub = st.add_subparsers(dest="strategy_command", required=True, metavar="ACTION")
    v = st_sub.add_parser("validate", parents=[common], help="validate a config for a strategy")
    v.add_argument("strategy_type")
    v.add_argument("--config", default="{}", help="JSON object of overrides")
    v.set_defaults(handler=_validate)


def _strategies(args) -> Output:
    from ..domain.strategies.registry import available_strategies

    infos = [s.info() for s in available_strategies().values()]
    lines = []
    for info in infos:
        lines.append(f"{info['name']}: {info['description']}")
        lines.append("  " + json.dumps(info["default_config"], sort_keys=True))
    return Output({"strategies": infos}, "\n".join(lines))


def _validate(args) -> Output:
    from ..domain.strategies.registry import get_strategy
    from ..services.portfolios import parse_config

    config = get_strategy(args.strategy_type).validate_config(parse_config(args.config))
    return Output({"strategy_type": args.strategy_type, "valid": True, "config": config},
                  f"valid config for {args.strategy_type}:\n" + json.dumps(config, indent=2, sort_keys=True))
