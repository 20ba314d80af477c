"""The log file: `$PRESCIENT_HOME/logs/prescient.log`.

The terminal gets one line per problem; the details (tracebacks, Dagster's run logs, the
embedded server's start-up output) go to this file, which every `prescient` process and, through
`dagster.yaml`, every Dagster process (webserver, daemon, run workers) appends to. Once it
reaches ROTATE_AT, the next process to start moves it to `prescient.log.1` (replacing the one
before) and starts anew.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path

from .config import settings

_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
ROTATE_AT = 10 * 1024 * 1024  # bytes


def log_file() -> Path:
    return settings().home / "logs" / "prescient.log"


def rotate_if_large(path: Path) -> None:
    """Move a log file of ROTATE_AT bytes or more to `<name>.1`. Done when a process starts, as
    many processes append to the file at once (logging's RotatingFileHandler assumes one
    writer); the others notice the move at their next line and reopen the file."""
    try:
        if path.stat().st_size >= ROTATE_AT:
            os.replace(path, path.with_name(path.name + ".1"))
    except OSError:  # no log yet, or another process moved it first
        pass


class LogFileHandler(logging.handlers.WatchedFileHandler):
    """Appends to the log file of the current PRESCIENT_HOME (named in dagster.yaml, too); a
    long-running process (the daemon, the webserver) follows the file to its new one once it
    has been moved aside."""

    def __init__(self, level: int | str = logging.NOTSET):
        try:
            path = log_file()
            path.parent.mkdir(parents=True, exist_ok=True)
            rotate_if_large(path)
        except Exception:  # never stop a run or a command over its log file
            path = Path(os.devnull)
        super().__init__(path, mode="a", encoding="utf-8", delay=True)
        self.setLevel(level)
        self.setFormatter(logging.Formatter(_FORMAT))


class OneLineFormatter(logging.Formatter):
    """`level name: first line of the message`; tracebacks stay in the log file."""

    def format(self, record: logging.LogRecord) -> str:
        lines = record.getMessage().strip().splitlines() or [""]
        return f"{record.levelname.lower()}: {lines[0]}"


# Failure details: to the log file only (the terminal already has the one line).
_details = logging.getLogger("prescient_pipeline.failures")
_details.propagate = False


def setup() -> Path | None:
    """Send everything from INFO to the log file, and our warnings, one line each, to stderr.
    Returns the log file, or None when it cannot be written (then stderr alone is used)."""
    root = logging.getLogger()
    for logger in (root, _details):
        for handler in [h for h in logger.handlers if getattr(h, "_prescient", False)]:
            logger.removeHandler(handler)  # set up again (tests call the CLI many times in one process)
            handler.close()
    to_terminal = logging.StreamHandler(sys.stderr)
    to_terminal.setLevel(logging.WARNING)
    to_terminal.setFormatter(OneLineFormatter())
    # Our own warnings only: a library's error log (pgserver's, say, with the server's whole log)
    # would repeat, at length, what the command's error line says.
    to_terminal.addFilter(logging.Filter("prescient_pipeline"))
    handlers = [(root, to_terminal)]
    to_file = LogFileHandler(logging.INFO)
    if to_file.baseFilename == os.devnull:  # an unwritable or invalid PRESCIENT_HOME: still one line
        to_file = None
    else:
        handlers += [(root, to_file), (_details, to_file)]
    for logger, handler in handlers:
        handler._prescient = True
        logger.addHandler(handler)
    root.setLevel(logging.INFO)
    return Path(to_file.baseFilename) if to_file else None


def record_failure(what: str, exc: BaseException) -> None:
    """The traceback of a failure, to the log file."""
    _details.error("%s failed", what, exc_info=(type(exc), exc, exc.__traceback__))
