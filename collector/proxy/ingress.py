"""The proxy as a sidecar component: serve, aggregate, hand the guide's series to the next consumer.

Every ``flush_interval_s`` (on the same boundaries as the scrape loop) the proxy hands one batch
(``ProxyStats.to_samples``) to its consumer; ``on_request`` additionally gets each request's
record as it ends, for the quantile sketches (``feed_observer``), and ``exemplar_sink`` each
flush's exemplars (exemplars.py). Exemplars are best-effort, as in Prometheus: one send at a time,
a batch that finds one still in flight or fails is dropped (logged, counted in ``exemplars_dropped``),
never buffered — a server that is down cannot make them pile up.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable

from loguru import logger

from collector.config import ProxyConfig
from collector.pipeline import Consumer
from collector.proxy.exemplars import Exemplar
from collector.proxy.server import ProxyApp
from collector.proxy.stats import ProxyStats
from collector.proxy.timing import RequestObservation
from model.series import Sample

ExemplarSink = Callable[[list[Exemplar]], Awaitable[None]]
LAST_SEND_S = 5.0  # how long stopping waits for the last exemplars to go


class IngressProxy:
    """``listen`` → ``upstream``, measuring every request.

    >>> proxy = IngressProxy(ProxyConfig(listen="127.0.0.1:0", upstream="http://127.0.0.1:8000"),
    ...                      {"service_id": "svc"}, ListConsumer())
    >>> port = await proxy.start()     # serves and flushes every flush_interval_s
    >>> await proxy.stop()             # one last flush
    """

    def __init__(
        self,
        config: ProxyConfig,
        identity: dict[str, str],
        consumer: Consumer | None = None,
        on_request: Callable[[RequestObservation], None] | None = None,
        clock: Callable[[], float] = time.time,
        exemplar_sink: ExemplarSink | None = None,
    ) -> None:
        config.validate()
        self.config = config
        self.consumer = consumer
        self.clock = clock
        self.stats = ProxyStats(identity, max_paths=config.max_paths)
        self._on_request = on_request
        self.app = ProxyApp(config, self._observe, wall=clock)
        self.host, self.requested_port = config.host_port
        self.port: int | None = None
        self._flusher: asyncio.Task[None] | None = None
        self.exemplar_sink = exemplar_sink
        self.exemplars_dropped = 0
        self._sending: asyncio.Task[None] | None = None
        self._last_warned = -math.inf

    def _observe(self, obs: RequestObservation) -> None:
        self.stats.observe(obs)
        if self._on_request is not None:
            self._on_request(obs)

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("proxy not started")
        return f"http://{self.host}:{self.port}"

    async def start(self) -> int:
        """Listen; returns the bound port. Flushing starts when there is a consumer."""
        port = self.port = await self.app.start(self.host, self.requested_port)
        logger.info("proxy: listening on {}:{} → {}", self.host, port, self.config.upstream)
        if self.consumer is not None:
            self._flusher = asyncio.create_task(self._flush_loop())
        return port

    def samples(self) -> list[Sample]:
        """The proxy's series now (per-period gauges cover the time since the last call)."""
        ts_ms = math.floor(self.clock() * 1000)
        app = self.app
        return self.stats.to_samples(
            ts_ms, app.connections, ws_messages=app.ws_messages, upstream_retries=app.upstream_retries
        )

    async def flush(self) -> list[Sample]:
        batch = self.samples()
        self._ship_exemplars()
        if self.consumer is not None:
            await self.consumer.consume(batch)
        return batch

    def _ship_exemplars(self) -> None:
        exemplars = self.stats.drain_exemplars()
        if not exemplars or self.exemplar_sink is None:
            return
        if self._sending is not None and not self._sending.done():
            self.exemplars_dropped += len(exemplars)
            return
        self._sending = asyncio.get_running_loop().create_task(self._send_exemplars(exemplars))

    async def _send_exemplars(self, exemplars: list[Exemplar]) -> None:
        assert self.exemplar_sink is not None
        try:
            await self.exemplar_sink(exemplars)
        except Exception as exc:  # best-effort: dropped, logged once a minute
            self.exemplars_dropped += len(exemplars)
            now = time.monotonic()
            if now - self._last_warned >= 60.0:
                self._last_warned = now
                reason = f"{type(exc).__name__}: {exc}"
                logger.warning("proxy: {} exemplar(s) dropped: {}", len(exemplars), reason)

    async def _flush_loop(self) -> None:
        interval = self.config.flush_interval_s
        while True:
            now = self.clock()
            await asyncio.sleep((math.floor(now / interval) + 1) * interval - now)
            try:
                await self.flush()
            except Exception:
                logger.exception("proxy: handing on its series failed; continuing")

    async def stop(self) -> None:
        """Stop serving, flush once more; safe twice and without a start."""
        if self._flusher is not None:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
            self._flusher = None
            try:
                await self.flush()
            except Exception:
                logger.exception("proxy: the last flush failed")
        if self._sending is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._sending, LAST_SEND_S)
            self._sending = None
        await self.app.stop()
        await self.app.aclose()
