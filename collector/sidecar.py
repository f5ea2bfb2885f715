"""The sidecar loop for one target: scrape → parse → adapt → label → hand to the next consumer.

It degrades instead of dying (STYLE 3): a refused, slow, oversized or unparsable scrape gives
``up 0``, counts the reason in ``infersight_scrape_errors_total`` and logs; the loop goes on.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

import httpx
from loguru import logger

from collector.config import ScrapeConfig, TargetConfig
from collector.engines import ADAPTERS
from collector.health import ScrapeOutcome, health_samples
from collector.normalise import to_samples
from collector.parse import ParsedSample, ParseError, parse_body
from collector.pipeline import Consumer
from collector.scrape import REASONS, ScrapeError, fetch, new_client
from collector.staleness import StalenessTracker
from model.series import Sample


class Sidecar:
    """Scrapes one target every ``scrape.interval_s`` and hands each batch to ``consumer``.

    >>> sink = ListConsumer()
    >>> sidecar = Sidecar(ScrapeConfig(interval_s=10), TargetConfig(host="127.0.0.1", port=8000), sink)
    >>> batch = await sidecar.scrape_once()     # or: task = asyncio.create_task(sidecar.run())
    >>> await sidecar.stop()
    """

    def __init__(
        self,
        scrape: ScrapeConfig,
        target: TargetConfig,
        consumer: Consumer,
        clock: Callable[[], float] = time.time,
    ) -> None:
        scrape.validate()
        target.validate()
        self.scrape = scrape
        self.target = target
        self.consumer = consumer
        self.clock = clock
        self.url = target.scrape_url(scrape)
        self.identity = target.identity()
        self.errors_total = dict.fromkeys(REASONS, 0)
        self._adapter = ADAPTERS[target.engine]
        self._client: httpx.AsyncClient | None = None
        self._stopping = asyncio.Event()
        self._running = False
        self._finished = asyncio.Event()
        self._was_up: bool | None = None
        self._staleness = StalenessTracker()
        self._log = logger.bind(target=self.url, service_id=target.service_id)

    async def _collect(self) -> tuple[list[ParsedSample], int]:
        if self._client is None:
            self._client = new_client(verify_tls=self.scrape.verify_tls, timeout_s=self.scrape.timeout_s)
        fetched = await fetch(
            self._client, self.url, timeout_s=self.scrape.timeout_s, max_body_bytes=self.scrape.max_body_bytes
        )
        try:
            return parse_body(fetched.body, fetched.content_type), fetched.size_bytes
        except ParseError as exc:
            raise ScrapeError("parse", str(exc)) from exc

    def _log_outcome(self, error: ScrapeError | None) -> None:
        if error is None:
            if self._was_up is False:
                self._log.info("scrape of {} recovered", self.url)
            self._was_up = True
            return
        if self._was_up is False:
            self._log.debug("scrape of {} still failing ({}): {}", self.url, error.reason, error)
        else:
            self._log.warning("scrape of {} failed ({}): {}", self.url, error.reason, error)
        self._was_up = False

    async def scrape_once(self) -> list[Sample]:
        """Scrape now; return the batch (target series, derived guide series, health) after handing it on."""
        start_ms = math.floor(self.clock() * 1000)
        t0 = time.perf_counter()
        parsed: list[ParsedSample] = []
        body_bytes = 0
        error: ScrapeError | None = None
        try:
            parsed, body_bytes = await self._collect()
        except ScrapeError as exc:
            error = exc
            self.errors_total[exc.reason] += 1
        self._log_outcome(error)
        derived = self._adapter(parsed) if parsed else []
        outcome = ScrapeOutcome(
            up=error is None,
            duration_s=time.perf_counter() - t0,
            samples_scraped=len(parsed),
            body_bytes=body_bytes,
            errors_total=dict(self.errors_total),
        )
        exposed = parsed + derived
        batch = to_samples(exposed, self.identity, start_ms)
        batch.extend(health_samples(outcome, self.identity, start_ms))
        if self.scrape.stale_markers:
            # samples with their own timestamps are never marked stale (Prometheus does the same)
            untimed = {s.labels for s, p in zip(batch, exposed, strict=False) if p.ts_ms is None}
            untimed.update(s.labels for s in batch[len(exposed) :])
            batch.extend(self._staleness.update(untimed, start_ms))
        await self.consumer.consume(batch)
        return batch

    def _next_tick_s(self, now_s: float) -> float:
        """The next multiple of the interval: every sidecar with the same interval scrapes in step."""
        interval = self.scrape.interval_s
        return (math.floor(now_s / interval) + 1) * interval

    async def run(self) -> None:
        """Scrape at every interval boundary until ``stop()``; errors are logged, never raised."""
        if self._running:
            raise RuntimeError("Sidecar.run() is already running")
        self._running = True
        self._finished.clear()
        try:
            while not self._stopping.is_set():
                now = self.clock()
                try:
                    await asyncio.wait_for(self._stopping.wait(), max(0.0, self._next_tick_s(now) - now))
                    break
                except TimeoutError:
                    pass
                try:
                    await self.scrape_once()
                except Exception:
                    self._log.exception("scrape loop for {} hit an error; continuing", self.url)
        finally:
            self._running = False
            self._finished.set()

    async def stop(self, *, mark_stale: bool = False) -> None:
        """Stop ``run()`` and release the HTTP client; safe twice and without a start.

        With ``mark_stale``, hand on one last batch of staleness markers for every series of the
        last scrape, as Prometheus does when a target goes away. Off by default: a test that stops
        its sidecars and then queries "now" would otherwise find nothing.
        """
        self._stopping.set()
        if self._running:
            await self._finished.wait()
        if mark_stale:
            markers = self._staleness.mark_all(math.floor(self.clock() * 1000))
            if markers:
                try:
                    await self.consumer.consume(markers)
                except Exception:
                    self._log.exception("handing on staleness markers for {} failed", self.url)
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
