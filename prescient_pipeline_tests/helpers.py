"""Shared test helpers: a running simulator and a Dagster instance, both real."""

from __future__ import annotations

import contextlib
from datetime import datetime, timezone

import dagster as dg

from prescient_pipeline.polymarket.simulator.server import SimulatorServer
from prescient_pipeline.polymarket.simulator.universe import Universe

SIM_START = datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc)


@contextlib.contextmanager
def simulator(monkeypatch, events: int = 300, seed: int = 7, start: datetime = SIM_START):
    """A simulator on loopback with the client pointed at it."""
    with SimulatorServer(Universe(seed=seed, events=events, start=start)) as server:
        server.start()
        monkeypatch.setenv("PRESCIENT_GAMMA_URL", server.url)
        monkeypatch.setenv("PRESCIENT_CLOB_URL", server.url)
        yield server


def run_job(name: str, instance: dg.DagsterInstance, **kwargs) -> dg.ExecuteInProcessResult:
    from prescient_pipeline.definitions import defs

    return defs.resolve_job_def(name).execute_in_process(instance=instance, raise_on_error=False, **kwargs)
