"""Serve an ASGI app with uvicorn inside the running event loop, so one process hosts many
servers (the sidecar's proxy and /metrics, the central API, the demo's simulated engines).

No ``server``/``date`` headers of our own (a proxy passes the upstream's through), no traceback in
the log when the proxy aborts a client connection on purpose, and signals left to the host program.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import uvicorn


class AbortConnection(Exception):
    """Raised by an app after its response started: close the client connection, log nothing."""


class _QuietAbort(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, AbortConnection)


logging.getLogger("uvicorn.error").addFilter(_QuietAbort())


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the host program owns SIGINT/SIGTERM


class InLoopServer:
    """``port = await InLoopServer(app, "127.0.0.1", 0).start()``; ``await server.stop()``."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, *, websockets: bool = False) -> None:
        self.app = app
        self.host = host
        self.requested_port = port
        self.websockets = websockets
        self.port: int | None = None
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("server not started")
        return f"http://{self.host}:{self.port}"

    async def start(self) -> int:
        """Start serving; returns the bound port. A port in use raises OSError naming it."""
        config = uvicorn.Config(
            self.app,
            host=self.host,
            port=self.requested_port,
            log_level="warning",
            lifespan="off",
            access_log=False,  # request lines (paths, queries) stay out of the log
            server_header=False,
            date_header=False,
            ws="websockets-sansio" if self.websockets else "none",
            timeout_keep_alive=75,
            backlog=4096,
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._serve(self._server))
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise OSError(f"could not listen on {self.host}:{self.requested_port}")
            await asyncio.sleep(0.005)
        self.port = int(self._server.servers[0].sockets[0].getsockname()[1])
        return self.port

    async def _serve(self, server: _Server) -> None:
        try:
            await server.serve()
        except SystemExit as exc:  # uvicorn exits the process when it cannot bind
            raise OSError(f"could not listen on {self.host}:{self.requested_port}") from exc

    async def stop(self, grace_s: float = 2.0) -> None:
        """Stop serving; safe twice and before start."""
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), grace_s)
        except TimeoutError:
            self._server.force_exit = True
            await self._task
        self._server = self._task = None
