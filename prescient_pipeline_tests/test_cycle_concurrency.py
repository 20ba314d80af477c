"""Two `prescient cycle` processes started together, on a fresh Dagster database, against the
simulator: both succeed, no portfolio holds two open positions in one market (one per market
side for arbitrage), and no signal is filled twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone

import pytest
from sqlalchemy import text

from prescient_pipeline.db import embedded
from prescient_pipeline.db.urls import database_name
from prescient_pipeline.polymarket.simulator import SimulatorServer, Universe
from prescient_pipeline.services import portfolios as svc
from prescient_pipeline.services.reports import unbalanced_portfolios

STRATEGIES = ("momentum", "mean_reversion", "arbitrage")




@pytest.mark.slow
def test_two_cycles_started_together_never_double_write(engine, database_url, tmp_path):
    # Both processes must find Dagster's storage missing, so its creation races too.
    dagster_db = f"{database_name(database_url)}_dagster"
    embedded.drop_database(database_url, dagster_db)
    ids = {s: svc.create_portfolio(engine, svc.NewPortfolio.parse(
        name=f"{s} book", strategy=s, balance="10000", config={"max_signals_per_cycle": 25},
        max_positions="100"))["portfolio_id"] for s in STRATEGIES}

    universe = Universe(seed=11, events=200, start=datetime.now(timezone.utc))
    procs = []
    try:
        with SimulatorServer(universe) as sim:
            env = {**os.environ, "PRESCIENT_DATABASE_URL": database_url, "PRESCIENT_HOME": str(tmp_path / "home"),
                   "DAGSTER_HOME": str(tmp_path / "dagster"), "PRESCIENT_GAMMA_URL": sim.url,
                   "PRESCIENT_CLOB_URL": sim.url}
            procs = [subprocess.Popen([sys.executable, "-m", "prescient_pipeline", "cycle", "--json"], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                     for _ in range(2)]
            outputs = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        embedded.drop_database(database_url, dagster_db)
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, f"exit {p.returncode}\nstdout: {out[-2000:]}\nstderr: {err[-4000:]}"
        cycle = json.loads(out)
        assert set(cycle["portfolio_ids"]) == set(ids.values())

    with engine.connect() as conn:
        def count(query: str) -> int:
            return conn.execute(text(query)).scalar_one()

        assert count("SELECT count(*) FROM trades WHERE action = 'buy'") > 0, "the cycles traded"
        assert count("SELECT count(*) FROM (SELECT signal_id FROM trades WHERE action = 'buy' "
                     "GROUP BY signal_id HAVING count(*) > 1) d") == 0, "no signal has two fills"
        assert count("SELECT count(*) FROM trading_signals s WHERE s.executed AND (SELECT count(*) FROM trades t "
                     "WHERE t.signal_id = s.signal_id AND t.action = 'buy') <> 1") == 0
        assert count("SELECT count(*) FROM (SELECT 1 FROM portfolio_positions WHERE status = 'open' "
                     "GROUP BY portfolio_id, market_id, side HAVING count(*) > 1) d") == 0
        assert count("""SELECT count(*) FROM (SELECT 1 FROM portfolio_positions p JOIN portfolios f USING (portfolio_id)
                         WHERE p.status = 'open' AND f.strategy_type <> 'arbitrage'
                         GROUP BY p.portfolio_id, p.market_id HAVING count(*) > 1) d""") == 0
        history = conn.execute(text("SELECT portfolio_id, count(*) FROM portfolio_history GROUP BY portfolio_id")).all()
    assert unbalanced_portfolios(engine) == []
    assert sorted(history) == sorted((pid, 1) for pid in ids.values()), "one history row per portfolio per day"


# Each `prescient` command without DAGSTER_HOME refreshes $PRESCIENT_HOME/dagster/dagster.yaml
# before Dagster reads it; this runs that step repeatedly in two processes at once.
PREPARE_LOOP = "\n".join([
    "import os, sys",
    "from prescient_pipeline import dagster_home",
    "for _ in range(int(sys.argv[1])):",
    "    os.environ.pop('DAGSTER_HOME', None)",
    "    dagster_home.prepare()",
])


def test_processes_preparing_dagster_home_at_once_never_expose_a_partial_dagster_yaml(database_url, tmp_path):
    from prescient_pipeline.dagster_home import REPO_DAGSTER_YAML

    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env.update(PRESCIENT_DATABASE_URL=database_url, PRESCIENT_HOME=str(tmp_path))
    config, expected = tmp_path / "dagster" / "dagster.yaml", REPO_DAGSTER_YAML.read_text()
    procs = [subprocess.Popen([sys.executable, "-c", PREPARE_LOOP, "150"], env=env, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    reads, partial = 0, 0
    while any(p.poll() is None for p in procs):
        try:
            content = config.read_text()
        except FileNotFoundError:
            continue
        reads += 1
        partial += content != expected
    for p in procs:
        assert p.wait() == 0, p.stderr.read()
        p.stderr.close()
    assert reads > 100
    assert partial == 0, f"{partial} of {reads} reads saw a half-written dagster.yaml"
