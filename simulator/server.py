"""Run simulators in-process, in the current event loop, on loopback ports.

Several servers can share one loop (one per simulated pod); each has its own Simulator and
registry. Signal handling is left to the host program, so pytest and the CLI keep theirs.
"""

from __future__ import annotations

from collector.serve import InLoopServer
from simulator.app import create_app
from simulator.config import SimulatorConfig
from simulator.engine import Simulator
from simulator.record import ServedRequest


class SimulatorServer(InLoopServer):
    """A simulator listening on ``host:port`` (0 = a free port) in the running event loop.

    >>> async def demo() -> None:
    ...     server = SimulatorServer(SimulatorConfig(seed=1))
    ...     port = await server.start()      # bound port
    ...     ...                              # http://127.0.0.1:{port}/v1/chat/completions
    ...     await server.stop()
    """

    def __init__(
        self, config: SimulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.sim = Simulator(config)
        super().__init__(create_app(self.sim), host, port)

    @property
    def served(self) -> list[ServedRequest]:
        return self.sim.served


async def start_simulators(configs: list[SimulatorConfig]) -> list[SimulatorServer]:
    """Start one server per config on free ports, in the running loop."""
    servers = [SimulatorServer(c) for c in configs]
    for server in servers:
        await server.start()
    return servers
