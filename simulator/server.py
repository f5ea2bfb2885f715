"""Run simulators in-process, in the current event loop, on loopback ports.

Several servers can share one loop (one per simulated pod); each has its own Simulator and
registry. Signal handling is left to the host program, so pytest and the CLI keep theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn

from simulator.app import create_app
from simulator.config import SimulatorConfig
from simulator.engine import Simulator
from simulator.record import ServedRequest


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn would take over SIGINT/SIGTERM for the whole process; the host owns them.
        yield


class SimulatorServer:
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
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234``; OpenAI clients use ``url + "/v1"``."""
        if self.port is None:
            raise RuntimeError("simulator not started")
        return f"http://{self.host}:{self.port}"

    @property
    def served(self) -> list[ServedRequest]:
        return self.sim.served

    async def start(self) -> int:
        """Start serving and return the bound port."""
        config = uvicorn.Config(
            create_app(self.sim),
            host=self.host,
            port=self.requested_port,
            log_level="warning",
            lifespan="off",
            access_log=False,
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._serve(self._server))
        while not self._server.started:
            if self._task.done():
                self._task.result()  # re-raise the startup failure (e.g. port in use)
                raise RuntimeError(f"simulator on {self.host}:{self.requested_port} exited at startup")
            await asyncio.sleep(0.005)
        self.port = int(self._server.servers[0].sockets[0].getsockname()[1])
        return self.port

    async def _serve(self, server: _Server) -> None:
        try:
            await server.serve()
        except SystemExit as exc:  # uvicorn exits the process when it cannot bind; we must not
            raise OSError(f"simulator could not listen on {self.host}:{self.requested_port}") from exc

    async def stop(self, grace_s: float = 2.0) -> None:
        """Stop serving; open streams get ``grace_s`` to finish. Safe twice and before start."""
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), grace_s)
        except TimeoutError:
            self._server.force_exit = True
            await self._task
        self._server = None
        self._task = None


async def start_simulators(configs: list[SimulatorConfig]) -> list[SimulatorServer]:
    """Start one server per config on free ports, in the running loop."""
    servers = [SimulatorServer(c) for c in configs]
    for server in servers:
        await server.start()
    return servers
