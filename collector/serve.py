"""Serve an ASGI app with uvicorn inside the running event loop, so one process hosts many
servers (the sidecar's /metrics, the central API, the demo's simulated engines; the ingress proxy
has its own HTTP/1.1 server, ``collector/proxy/server.py``).

No ``server``/``date`` headers of our own, no request lines in the log, and signals left to the
host program. ``run_event_loop`` runs a process's main coroutine as every infersight process does:
on the loop ``event_loop_factory`` picks (uvloop), with the garbage collector set up by ``tune_gc``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, TypeVar

import uvicorn

from collector.one_write import OneWriteHttpProtocol

T = TypeVar("T")


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (a dependency, except on Windows), else asyncio's own loop.

    Why: the server answers many small requests (remote write, ingest, queries) and the sidecar's proxy
    relays every chunk; uvloop's loop and transports take 10-20 % less CPU per request than asyncio's
    (docs/store.md, "Prometheus remote write"). ``INFERSIGHT_EVENT_LOOP=asyncio`` keeps asyncio's loop."""
    if os.environ.get("INFERSIGHT_EVENT_LOOP", "auto") == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


GC_GEN0_THRESHOLD = 10_000  # Python's default is 700


def tune_gc() -> None:
    """Set up Python's cyclic garbage collector for a long-running infersight process, after the
    imports, where the process starts its event loop (``run_event_loop``).

    ``gc.collect()`` then ``gc.freeze()``: the start-up heap (modules, classes, FastAPI/pydantic
    schemas: ~65 000 tracked objects in the simulator, ~36 000 in the proxy) moves to the permanent
    generation, so no later full collection walks it again. Then a gen-0 threshold of
    ``GC_GEN0_THRESHOLD`` instead of 700: a streaming server's objects of requests in flight (tasks,
    frames, scopes) swing the gen-0 count by hundreds, so with 700 it keeps collecting and promoting
    objects that die a few hundred ms later; with 10 000 a collection comes only when the heap grows.

    Why (``python -m bench.proxy --streams 200``, 2026-12, 2 cores): with Python's defaults the
    simulator (FastAPI + uvicorn, as a real engine's server) ran ~300 gen-0, ~27 gen-1 (up to 27 ms)
    and 2 gen-2 collections (61 and 84 ms) per 20 s run; every request in flight during a gen-2
    pause got that much TTFT, which made the direct run's p99 114-158 ms against a 102 ms median and
    the proxy's "added" p99 swing between -30 and +15 ms. With this: no collection in any process
    during the measured windows, direct p99 ~109-113 ms. The proxy itself hardly allocates tracked
    objects (no gen-2 during a run even with the defaults); the setting is for the sidecar's and the
    server's other parts as much as for it. Memory: at most ~10 000 more young objects (a few MB)
    before cyclic garbage is found; start-up objects freed later are never collected by the cyclic
    collector (reference counting still frees the acyclic ones).

    ``INFERSIGHT_GC=default`` keeps Python's settings (no freeze, threshold 700)."""
    if os.environ.get("INFERSIGHT_GC", "tuned") == "default":
        return
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to its end as every infersight process runs its loop (the CLI's commands,
    ``python -m collector.proxy``, ``python -m simulator``, bench.proxy's load generator)."""
    tune_gc()
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        return runner.run(main)


def run_until_signal(main: Callable[[asyncio.Event], Awaitable[Any]]) -> Any:
    """Run ``main(stop)`` where Ctrl-C / SIGTERM set ``stop`` instead of killing the loop,
    so a process stopped by its supervisor shuts down cleanly and exits 0."""

    async def runner() -> Any:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        return await main(stop)

    return run_event_loop(runner())


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the host program owns SIGINT/SIGTERM


class InLoopServer:
    """``port = await InLoopServer(app, "127.0.0.1", 0).start()``; ``await server.stop()``."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.requested_port = port
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
            ws="none",
            http=OneWriteHttpProtocol,  # an answer's head and body in one write (collector.one_write)
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
