"""The sidecar's own ``/metrics``: the latest value of every series it computed, via prometheus-client.

A plain Prometheus or vmagent can then scrape the sidecar instead of (or besides) the sidecar
shipping to infersight. ``Exposition`` is a pass-through processor: it keeps the latest sample
per series from every batch it sees and hands the batch on unchanged to the next consumer.

Forms exposed (text 0.0.4 or OpenMetrics 1.0, negotiated by prometheus-client's encoder):

- ``*_bucket{le}``/``_sum``/``_count`` families → one classic histogram each (the guide's
  ``histogram_quantile`` statements run on them unchanged);
- ``*_total`` → counter; anything else → gauge (``ma_container_*``, the per-period avg/min/max);
- a staleness marker removes its series; a series not updated for ``max_age_s`` (default 5 min,
  Prometheus' lookback) is dropped, so a vanished target does not linger.

Native histograms: prometheus-client (0.26) writes no native-histogram exposition, so none is
offered here; the mergeable exponential sketches (sketch) use the same bucket scheme
and reach the store directly. A Prometheus started with ``--enable-feature=native-histograms``
still ingests the classic form.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, make_asgi_app
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from collector.engines.le import parse_le
from collector.pipeline import Consumer
from collector.serve import InLoopServer
from model.labels import METRIC_NAME, Labels
from model.series import Sample, is_stale_nan

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def _family(name: str, histograms: set[str]) -> tuple[str, str]:
    """(family name, type) of a sample name, given the names that have ``_bucket`` samples."""
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and name.removesuffix(suffix) in histograms:
            return name.removesuffix(suffix), "histogram"
    if name.endswith("_total"):
        return name.removesuffix("_total"), "counter"
    return name, "gauge"


class _Latest(Collector):
    def __init__(self, series: dict[Labels, tuple[float, float]]) -> None:
        self.series = series

    def collect(self) -> Iterator[Metric]:
        rows = [(dict(labels), value) for labels, (value, _) in self.series.items()]
        histograms = {
            r[METRIC_NAME].removesuffix("_bucket") for r, _ in rows if r[METRIC_NAME].endswith("_bucket")
        }
        families: dict[tuple[str, str], list[tuple[str, dict[str, str], float]]] = defaultdict(list)
        for labels, value in rows:
            name = labels.pop(METRIC_NAME)
            families[_family(name, histograms)].append((name, labels, value))
        for (family, kind), samples in sorted(families.items()):
            metric = Metric(family, f"{family} (computed by the infersight sidecar)", kind)
            for name, labels, value in sorted(samples, key=_order):
                metric.add_sample(name, labels, value)
            yield metric


def _order(sample: tuple[str, dict[str, str], float]) -> tuple[str, list[tuple[str, str]], float, str]:
    """Buckets in ascending order of their bound; an ``le`` that is no number (a target's own
    oddity, passed through) sorts last, by its text, instead of failing the whole ``/metrics``."""
    name, labels, _ = sample
    le = labels.get("le")
    bound = math.inf if le is None else parse_le(le)
    return (
        name,
        sorted((k, v) for k, v in labels.items() if k != "le"),
        math.inf if bound is None else bound,
        le or "",
    )


class Exposition:
    """Keeps the latest sample per series; serves them as ``/metrics``; passes batches on.

    >>> exposition = Exposition(next_consumer=exporter)   # put it in front of the exporter
    >>> app = exposition.asgi_app()                        # mount or serve on its own port
    """

    def __init__(
        self,
        next_consumer: Consumer | None = None,
        *,
        max_age_s: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.next_consumer = next_consumer
        self.max_age_s = max_age_s
        self.clock = clock
        self.series: dict[Labels, tuple[float, float]] = {}  # labels → (value, updated at, s)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Latest(self.series))
        self._server: InLoopServer | None = None

    def update(self, batch: Iterable[Sample]) -> None:
        now = self.clock()
        for sample in batch:
            if is_stale_nan(sample.value):
                self.series.pop(sample.labels, None)
            else:
                self.series[sample.labels] = (sample.value, now)
        cutoff = now - self.max_age_s
        for labels in [k for k, (_, at) in self.series.items() if at < cutoff]:
            del self.series[labels]

    async def consume(self, batch: list[Sample]) -> None:
        self.update(batch)
        if self.next_consumer is not None:
            await self.next_consumer.consume(batch)

    def asgi_app(self) -> Callable[..., object]:
        """prometheus-client's ASGI app over this registry (content negotiation, gzip)."""
        return make_asgi_app(self.registry)

    async def start(self, host: str = "0.0.0.0", port: int = 9100) -> int:
        """Serve ``/metrics`` (any path, as prometheus-client's app) on ``host:port``; the bound port."""
        self._server = InLoopServer(self.asgi_app(), host, port)
        return await self._server.start()

    async def stop(self) -> None:
        """Stop serving; safe twice and without a start."""
        if self._server is not None:
            server, self._server = self._server, None
            await server.stop()
