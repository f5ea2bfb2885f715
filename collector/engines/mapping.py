"""A table-driven engine adapter: which of an engine's series become which of the guide's.

Every engine adapter is an ``EngineMap`` (tables) plus, where the engine counts requests in its
own way, a function that derives ``infer_service_request_total``. ``derive(map, samples)`` is the
one implementation of the mapping rules:

- histograms: renamed, ``_sum`` and ``le`` scaled to the guide's unit (seconds → ms), counts kept;
  when a newer histogram name is present in a scrape, the older one it supersedes is ignored
  (engines that expose both feed them the same observations);
- counters: renamed, values kept;
- connection gauges: summed per label set into ``infer_service_request_connect_count``;
- ``_created`` samples are never mapped (they are timestamps, not values).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from collector import catalog
from collector.engines.le import scale_le
from collector.parse import ParsedSample

MS_PER_S = 1000.0
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
RequestDeriver = Callable[[list[ParsedSample]], list[ParsedSample]]


@dataclass(frozen=True)
class EngineMap:
    """The tables of one engine. Histogram values: (guide name, factor to the guide's unit)."""

    histograms: dict[str, tuple[str, float]] = field(default_factory=dict)
    supersedes: dict[str, str] = field(default_factory=dict)
    counters: dict[str, str] = field(default_factory=dict)
    connection_gauges: tuple[str, ...] = ()
    requests: RequestDeriver | None = None


def _split_histogram(name: str, histograms: dict[str, tuple[str, float]]) -> tuple[str, str] | None:
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in histograms:
            return name[: -len(suffix)], suffix
    return None


def _histogram(sample: ParsedSample, target: str, factor: float, suffix: str) -> ParsedSample:
    labels = dict(sample.labels)
    value = sample.value
    if suffix == "_bucket" and "le" in labels:
        labels["le"] = scale_le(labels["le"], factor)
    elif suffix == "_sum":
        value = value * factor
    return ParsedSample(target + suffix, labels, value, sample.ts_ms, target, "histogram")


def _connections(samples: list[ParsedSample]) -> list[ParsedSample]:
    totals: dict[tuple[tuple[str, str], ...], float] = defaultdict(float)
    stamps: dict[tuple[tuple[str, str], ...], int | None] = {}
    for s in samples:
        key = tuple(sorted(s.labels.items()))
        totals[key] += s.value
        stamps[key] = s.ts_ms if stamps.get(key) is None else stamps[key]
    name = catalog.REQUEST_CONNECT_COUNT
    return [ParsedSample(name, dict(key), value, stamps[key], name, "gauge") for key, value in totals.items()]


def request_total(labels: dict[str, str], value: float, ts_ms: int | None) -> ParsedSample:
    """One ``infer_service_request_total`` sample."""
    name = catalog.REQUEST_TOTAL
    return ParsedSample(name, labels, value, ts_ms, name, "counter")


def derive(engine: EngineMap, samples: list[ParsedSample]) -> list[ParsedSample]:
    """The guide's series computed from one scrape (originals not included: the sidecar keeps them)."""
    present = {s.name for s in samples}
    skipped = {
        old
        for new, old in engine.supersedes.items()
        if any(new + suffix in present for suffix in HISTOGRAM_SUFFIXES)
    }
    out: list[ParsedSample] = []
    connection_samples: list[ParsedSample] = []
    for s in samples:
        split = _split_histogram(s.name, engine.histograms)
        if split is not None:
            if split[0] not in skipped:
                target, factor = engine.histograms[split[0]]
                out.append(_histogram(s, target, factor, split[1]))
        elif s.name in engine.counters:
            target = engine.counters[s.name]
            out.append(ParsedSample(target, dict(s.labels), s.value, s.ts_ms, target, "counter"))
        elif s.name in engine.connection_gauges:
            connection_samples.append(s)
    if engine.requests is not None:
        out += engine.requests(samples)
    return out + _connections(connection_samples)
