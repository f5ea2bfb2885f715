"""Everything the sidecar runs next to one pod, assembled from the configuration.

Receivers (scrapes, the ingress proxy, resource readers, probes, the pod's Kubernetes events) all
hand their batches to one consumer; with ``sidecar.metrics_listen`` that consumer is first the
sidecar's own ``/metrics`` (``Exposition``), then the exporter. Per-request values from the proxy
also go into 10 s quantile sketches, drained to ``sketch_sink`` as each window closes, and are
judged against the service's SLOs (``collector.slo``); the SLO counters and the pod's cost
(``collector.cost``) go to the same consumer every flush interval. The
proxy's exemplars (a request id per histogram bucket) go to ``exemplars``, best-effort.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence

from loguru import logger

from collector.cost import CostMeter
from collector.exposition import Exposition
from collector.group import SidecarGroup
from collector.k8s_events import KubernetesEventWatcher
from collector.metadata import MetadataSink
from collector.pipeline import Consumer
from collector.probes.runner import ProbeRunner
from collector.probes.state import Transition
from collector.proxy.ingress import ExemplarSink, IngressProxy
from collector.proxy.observe import feed_observer
from collector.proxy.timing import RequestObservation
from collector.resources.reader import ResourceReader
from collector.slo import SloCounter
from collector.window import SketchRow, WindowedSketches
from infersight.config import Config
from infersight.k8s import pod_identity, start_watch
from model.events import POD, Event
from model.series import Sample
from model.slo import Slo

EventSink = Callable[[list[Event]], Awaitable[None]]
SketchSink = Callable[[list[SketchRow]], Awaitable[None]]
WINDOW_S = 10


class PodCollector:
    """``await PodCollector(config, exporter, event_sink, sketch_sink).start()`` … ``stop()``.

    ``metadata``: where the targets' TYPE/HELP/UNIT go (none: they are not kept). ``slos``: the
    SLOs in force, asked per request (default: the configuration's ``slos``)."""

    def __init__(
        self,
        config: Config,
        consumer: Consumer,
        events: EventSink,
        sketches: SketchSink,
        metadata: MetadataSink | None = None,
        slos: Callable[[], Sequence[Slo]] | None = None,
        exemplars: ExemplarSink | None = None,
    ) -> None:
        self.config = config
        self._event_sink = events
        self._sketch_sink = sketches
        identity = config.targets[0].identity() if config.targets else {}
        self.exposition = Exposition(next_consumer=consumer) if config.sidecar.metrics_listen else None
        pipeline: Consumer = self.exposition or consumer
        # With the proxy in front, the guide's series come from it (exact, per request); engine
        # adapters would derive the same series a second time, so targets keep their originals only.
        targets = config.targets
        if config.proxy is not None:
            targets = tuple(dataclasses.replace(t, engine="generic") for t in targets)
        self.scrapes = SidecarGroup(config.scrape, targets, pipeline, metadata)
        self.windows = WindowedSketches(width_s=WINDOW_S)
        self._pipeline = pipeline
        self.slo = SloCounter(slos or (lambda: config.slos), identity)
        self.cost = CostMeter(config.cost, identity, time.time()) if config.cost is not None else None
        self.proxy = (
            IngressProxy(
                config.proxy,
                identity,
                pipeline,
                on_request=self._on_request(identity),
                exemplar_sink=exemplars,
            )
            if config.proxy is not None
            else None
        )
        self.resources = ResourceReader(config.resources, identity, pipeline) if config.resources else None
        self.probes = None
        if config.probes:
            self.probes = ProbeRunner(config.probes, identity, pipeline, on_transition=self._probe_event)
        self._watch: tuple[KubernetesEventWatcher, asyncio.Task[None]] | None = None
        self._drainer: asyncio.Task[None] | None = None
        self._reporter: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()

    def _on_request(self, identity: dict[str, str]) -> Callable[[RequestObservation], None]:
        """Each finished request: into the sketches, then judged against the SLOs."""
        to_sketches = feed_observer(self.windows, identity)

        def on_request(obs: RequestObservation) -> None:
            to_sketches(obs)
            self.slo.observe(obs)

        return on_request

    def report_samples(self) -> list[Sample]:
        """The SLO counters (with the proxy) and the pod's cost, now."""
        ts_ms = int(time.time() * 1000)
        out = self.slo.to_samples(ts_ms) if self.proxy is not None else []
        if self.cost is not None:
            out += self.cost.to_samples(ts_ms)
        return out

    async def _report(self) -> None:
        samples = self.report_samples()
        if samples:
            await self._pipeline.consume(samples)

    async def _report_loop(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s - time.time() % interval_s)
            try:
                await self._report()
            except Exception:  # loop boundary: log and keep reporting
                logger.exception("handing on the SLO and cost series failed; continuing")

    def _probe_event(self, transition: Transition) -> None:
        """A probe's Healthy/Unhealthy transition as the guide's pod event (T1-55)."""
        kind = "Normal" if transition.state == "Healthy" else "Alarm"
        message = f"{transition.probe} probe: {transition.message or transition.state}"
        when_ms = round(transition.ts_s * 1000)
        event = Event(POD, kind, transition.state, message, pod_identity(self.config), when_ms)
        task = asyncio.get_running_loop().create_task(self._event_sink([event]))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def start(self) -> None:
        if self.exposition is not None:
            host, _, port = self.config.sidecar.metrics_listen.rpartition(":")
            await self.exposition.start(host, int(port))
        await self.scrapes.start()
        if self.proxy is not None:
            await self.proxy.start()
            self._drainer = asyncio.create_task(self._drain_loop())
        if self.resources is not None:
            self.resources.start()
        if self.proxy is not None or self.cost is not None:
            interval_s = (
                self.config.proxy.flush_interval_s if self.config.proxy else self.config.scrape.interval_s
            )
            self._reporter = asyncio.create_task(self._report_loop(interval_s))
        if self.probes is not None:
            self.probes.start()
        self._watch = start_watch(self.config, self._event_sink)

    async def scrape_all(self) -> None:
        await self.scrapes.scrape_all()

    async def flush(self) -> None:
        """Hand on the proxy's series and every open sketch window now."""
        if self.proxy is not None:
            await self.proxy.flush()
        await self._report()
        rows = self.windows.drain_all()
        if rows:
            await self._sketch_sink(rows)

    async def _drain_loop(self) -> None:
        while True:
            await asyncio.sleep(WINDOW_S - time.time() % WINDOW_S + 0.05)
            try:
                rows = self.windows.drain(time.time())
                if rows:
                    await self._sketch_sink(rows)
            except Exception:  # loop boundary: log and keep draining
                logger.exception("writing quantile sketches failed; continuing")

    async def stop(self) -> None:
        """Stop every receiver (each is safe to stop twice), hand on what is left."""
        if self._watch is not None:
            self._watch[0].stop()
            self._watch[1].cancel()
            await asyncio.gather(self._watch[1], return_exceptions=True)
            self._watch = None
        for task in (self._drainer, self._reporter):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._drainer = self._reporter = None
        if self.probes is not None:
            await self.probes.stop()
        if self.resources is not None:
            await self.resources.stop()
        if self.proxy is not None:
            await self.proxy.stop()
        if self.proxy is not None or self.cost is not None:
            try:
                await self._report()
            except Exception:
                logger.exception("the last SLO and cost series were not handed on")
        await self.scrapes.stop()
        rows = self.windows.drain_all()
        if rows:
            await self._sketch_sink(rows)
        await asyncio.gather(*self._pending, return_exceptions=True)
        if self.exposition is not None:
            await self.exposition.stop()
