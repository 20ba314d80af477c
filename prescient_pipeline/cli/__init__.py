"""The `prescient` command: thin over the same services the Dagster layer uses.

Every command accepts --json. Bad input prints one line and exits 2 with nothing written; a
failure of a dependency (database, API, Dagster) prints one line naming what failed and what to
do, and exits 1; its traceback goes to the log file (prescient_pipeline/logs.py), which the line
names.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from dataclasses import dataclass, field
from decimal import Decimal
from datetime import date, datetime

from .. import logs
from ..errors import InputError, one_line


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


class _Parser(argparse.ArgumentParser):
    """Bad arguments are one line on stderr (exit 2), pointing at --help, as every other bad input."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from . import commands

    # Subcommands' parsers are made of the same class.
    parser = _Parser(prog="prescient", description="Paper trading for Polymarket on Dagster.")
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


def _root_cause(exc: BaseException) -> BaseException:
    """Through Dagster's wrappers (a step's error inside a run's error) to the error our code or
    a dependency raised."""
    while _raised_by(exc, "dagster"):
        inner = getattr(exc, "user_exception", None) or exc.__cause__
        if inner is None or inner is exc:
            break
        exc = inner
    return exc


def _raised_by(exc: BaseException, package: str) -> bool:
    return any(c.__module__ == package or c.__module__.startswith(package + ".") for c in type(exc).__mro__)


def _passed_through(exc: BaseException, package: str) -> bool:
    """Whether `package`'s code is on the traceback (pgserver raises plain subprocess errors)."""
    tb = exc.__traceback__
    while tb is not None:
        if f"{os.sep}{package}{os.sep}" in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False


def describe_failure(exc: BaseException) -> str:
    """What failed and what to do, in one line (without the log file's name)."""
    first = one_line(exc)
    if _raised_by(exc, "prescient_pipeline.polymarket") or _raised_by(exc, "requests") or _raised_by(exc, "urllib3"):
        return (f"the Polymarket API failed: {first} (check the network, or PRESCIENT_GAMMA_URL / "
                "PRESCIENT_CLOB_URL)")
    if _raised_by(exc, "sqlalchemy") or _raised_by(exc, "psycopg2"):
        cause = getattr(exc, "orig", None) or exc
        if type(cause).__name__ in ("OperationalError", "InterfaceError"):
            return (f"cannot use the database: {one_line(cause)} (check PRESCIENT_DATABASE_URL, or that the "
                    "embedded server under PRESCIENT_HOME can start)")
        return f"the database refused the operation, nothing was changed: {one_line(cause)}"
    if _raised_by(exc, "pgserver") or _passed_through(exc, "pgserver"):
        return f"the embedded PostgreSQL did not start: {first} (its own log is PRESCIENT_HOME/pgdata/log)"
    if _raised_by(exc, "dagster"):
        # A Failure is our own step saying what went wrong (books that do not balance, say).
        return first if type(exc).__name__ == "Failure" else f"Dagster failed: {first}"
    return f"{type(exc).__name__}: {first}"


def main(argv: list[str] | None = None) -> int:
    # Dagster's beta/preview notices about its own internals say nothing to a user.
    warnings.filterwarnings("ignore", module=r"dagster\.")
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    parser = build_parser()
    args = parser.parse_args(argv)
    log_file = None
    try:
        log_file = logs.setup()
        out: Output = args.handler(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        cause = _root_cause(exc)
        if isinstance(cause, _user_errors()):  # bad input: nothing was written
            print(f"error: {one_line(cause)}", file=sys.stderr)
            return 2
        # A dependency failed (database, API, Dagster): one line here, the traceback in the log file.
        message = describe_failure(cause)
        try:
            logs.record_failure(f"prescient {args.command}", exc)
        except Exception:
            log_file = None
        where = f"; details in {log_file}" if log_file else ""
        print(f"error: {message}{where}", file=sys.stderr)
        return 1
    if getattr(args, "json", False):
        print(json.dumps(out.data, default=_json_default, indent=2))
    elif out.text:
        print(out.text)
    return out.exit_code


if __name__ == "__main__":
    sys.exit(main())
