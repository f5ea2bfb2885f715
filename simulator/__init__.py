"""A fake OpenAI-compatible LLM engine with vLLM's /metrics: a test fixture and demo engine.

Start one in the running event loop::

    server = SimulatorServer(SimulatorConfig(seed=1))
    port = await server.start()
    ...                       # POST http://127.0.0.1:{port}/v1/chat/completions
    server.served             # ground truth: list[ServedRequest]
    await server.stop()
"""

from simulator.app import create_app
from simulator.config import SimulatorConfig
from simulator.engine import Simulator
from simulator.record import ServedRequest
from simulator.server import SimulatorServer, start_simulators
from simulator.traffic import TrafficConfig, TrafficReport, drive

__all__ = [
    "ServedRequest",
    "Simulator",
    "SimulatorConfig",
    "SimulatorServer",
    "TrafficConfig",
    "TrafficReport",
    "create_app",
    "drive",
    "start_simulators",
]
