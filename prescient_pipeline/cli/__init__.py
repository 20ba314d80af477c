"""The `prescient` command: thin over the same services the Dagster layer uses.

Every command accepts --json. Bad input prints one line and exits 2 with nothing written; a
failure of a dependency (database, API) prints one line and exits 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from dataclasses import dataclass, field
from decimal import Decimal
from datetime import date, datetime

from ..errors import InputError


@dataclass
class Output:
    data: object
    text: str = ""
    exit_code: int = 0
    extra_lines: list[str] = field(default_factory=list)


def _json_default(value):
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def build_parser() -> argparse.ArgumentParser:
    from . import commands

    parser = argparse.ArgumentParser(prog="prescient", description="Paper trading for Polymarket on Dagster.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.register(sub, common)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [InputError]
    try:
        from ..domain.strategies.base import ConfigError

        errors.append(ConfigError)
    except ImportError:
        pass
    return tuple(errors)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Dagster's beta/preview notices about its own internals say nothing to a user.
    warnings.filterwarnings("ignore", module=r"dagster\.")
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        out: Output = args.handler(args)
    except _user_errors() as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a dependency failed: say what, in one line
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"error: {type(exc).__name__}: {message}", file=sys.stderr)
        return 1
    if getattr(args, "json", False):
        print(json.dumps(out.data, default=_json_default, indent=2))
    elif out.text:
        print(out.text)
    return out.exit_code


if __name__ == "__main__":
    sys.exit(main())
