"""An offline Polymarket: a deterministic simulated world served over Gamma's and the CLOB's HTTP API.

Point PRESCIENT_GAMMA_URL and PRESCIENT_CLOB_URL at a running `SimulatorServer` and the whole
system runs offline through its real HTTP client.
"""

from prescient_pipeline.polymarket.simulator.server import SimulatorServer, serve
from prescient_pipeline.polymarket.simulator.universe import QueryError, Universe

__all__ = ["QueryError", "SimulatorServer", "Universe", "serve"]
