"""The CLI loads only what a command needs: commands that read the ledger never import Dagster
or Alembic, and but for the strategies' own code (a config in effect) not pandas either, so they
answer fast (the figures are in benchmarks/bench_cli.py)."""

import json
import os
import subprocess
import sys

import pytest

HEAVY = ("dagster", "pandas", "numpy", "alembic")

PROBE = """
import contextlib, io, json, sys
from prescient_pipeline.cli import build_parser, main
build_parser()
parsed = [m for m in {heavy!r} + ("sqlalchemy",) if m in sys.modules]
with contextlib.redirect_stdout(io.StringIO()):
    code = main({argv!r})
print(json.dumps({{"parsed": parsed, "code": code, "loaded": [m for m in {heavy!r} if m in sys.modules]}}))
"""


def probe(argv: list[str]) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY, argv=argv)], env=os.environ,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["portfolio", "list"], ["portfolio", "show", "1"], ["report"], ["trades"]])
def test_ledger_reads_load_neither_dagster_nor_pandas_nor_alembic(argv, engine):
    # The schema is migrated (the fixture): the command only compares revisions.
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO portfolios (name, strategy_type, initial_balance, current_balance) "
                             "VALUES ('probe', 'momentum', 1000, 1000)")
    argv = ["portfolio", "show", str(_only_portfolio(engine))] if argv[:2] == ["portfolio", "show"] else argv
    result = probe(argv)
    assert result["parsed"] == [], "building the parser imports no database or Dagster layer"
    assert result["code"] == 0
    if argv[:2] == ["portfolio", "show"]:
        # `show` prints the config in effect: the strategy's defaults, and strategies are pandas
        # code (as for `prescient strategies`); still no Dagster and no Alembic.
        assert [m for m in result["loaded"] if m not in ("pandas", "numpy")] == []
    else:
        assert result["loaded"] == []


def test_strategies_needs_pandas_but_not_dagster_nor_a_database():
    result = probe(["strategies"])
    assert result["code"] == 0
    assert "pandas" in result["loaded"] and "dagster" not in result["loaded"] and "alembic" not in result["loaded"]


def _only_portfolio(engine) -> int:
    with engine.connect() as conn:
        return conn.exec_driver_sql("SELECT portfolio_id FROM portfolios").scalar_one()
