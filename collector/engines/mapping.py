"""A table-driven engine adapter: which of an engine's series become which of the guide's.

Every engine adapter is an ``EngineMap`` (tables) plus, where the engine counts requests in its
own way, a function that derives ``infer_service_request_total``. ``derive(map, samples)`` is the
one implementation of the mapping rules:

- histograms: renamed, ``_sum`` and ``le`` scaled to the guide's unit (seconds → ms), counts kept;
  when a newer histogram name is present in a scrape, the older one it supersedes is ignored
  (engines that expose both feed them the same observations);
- counters: renamed, values kept, labels renamed where ``label_renames`` says (vLLM's
  ``finished_reason`` → ``finish_reason``); ``sums``: several counters added per label set into one;
- gauges: renamed and scaled (a percentage 0..100 → a ratio 0..1); an older gauge is ignored when
  the newer one it is superseded by is in the scrape, as for histograms;
- connection gauges: summed per label set into ``infer_service_request_connect_count``;
- ratios: per scrape interval, Δnumerator / Δdenominator x factor (``collector/engines/ratios.py``:
  they need the previous scrape, so the sidecar keeps them, not this pure function);
- ``extras``: derivations no table expresses (vLLM's LoRA info), each a function of the scrape;
- ``_created`` samples are never mapped (they are timestamps, not values).

Hostile but parsable input never raises here; a histogram family that cannot become a valid
guide histogram is left out of the derived series for that scrape and reported in
``Derived.dropped`` (the sidecar counts it as ``infersight_scrape_errors_total{reason="adapter"}``;
the target's own series are kept either way). Such a family has a ``_bucket`` sample without an
``le``, an ``le`` that is not a number (``"abc"``, ``"NaN"``), a bucket series without ``le="+Inf"``,
or two bounds that become one bound in the guide's unit. Values are mapped whatever they are:
NaN, ±Inf, negative or decreasing bucket counts pass through as the target wrote them (PromQL's
``histogram_quantile`` copes as in Prometheus), and a ``_sum`` or bound beyond float64 after
scaling is ±Inf.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from collector import catalog
from collector.engines.le import parse_le, scale_le
from collector.parse import ParsedSample

MS_PER_S = 1000.0
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
RequestDeriver = Callable[[list[ParsedSample]], list[ParsedSample]]
INF = float("inf")


@dataclass(frozen=True, slots=True)
class Dropped:
    """A family of the target that no guide series was derived from in this scrape, and why."""

    family: str
    reason: str


@dataclass(frozen=True, slots=True)
class Derived:
    """What an adapter made of one scrape: the guide's samples, and the families it left out."""

    samples: list[ParsedSample]
    dropped: tuple[Dropped, ...] = ()


@dataclass(frozen=True, slots=True)
class Ratio:
    """A gauge per scrape interval: Δ``numerator`` / Δ``denominator`` x ``factor`` of two counters."""

    target: str
    numerator: str
    denominator: str
    factor: float


@dataclass(frozen=True)
class EngineMap:
    """The tables of one engine. Histogram and gauge values: (target name, factor to its unit).

    ``notes`` describe, for the mapping table in docs/engines.md, what the functions derive
    (``requests``, ``extras``): {target name: text}.
    """

    histograms: dict[str, tuple[str, float]] = field(default_factory=dict)
    supersedes: dict[str, str] = field(default_factory=dict)
    counters: dict[str, str] = field(default_factory=dict)
    label_renames: dict[str, dict[str, str]] = field(default_factory=dict)
    sums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    gauges: dict[str, tuple[str, float]] = field(default_factory=dict)
    connection_gauges: tuple[str, ...] = ()
    ratios: tuple[Ratio, ...] = ()
    requests: RequestDeriver | None = None
    extras: tuple[RequestDeriver, ...] = ()
    notes: dict[str, str] = field(default_factory=dict)


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


def _summed(samples: list[ParsedSample], name: str, kind: str) -> list[ParsedSample]:
    """``samples`` added per label set into series ``name`` (the first own timestamp kept)."""
    totals: dict[tuple[tuple[str, str], ...], float] = defaultdict(float)
    stamps: dict[tuple[tuple[str, str], ...], int | None] = {}
    for s in samples:
        key = tuple(sorted(s.labels.items()))
        totals[key] += s.value
        stamps[key] = s.ts_ms if stamps.get(key) is None else stamps[key]
    return [ParsedSample(name, dict(key), value, stamps[key], name, kind) for key, value in totals.items()]


def _connections(samples: list[ParsedSample]) -> list[ParsedSample]:
    return _summed(samples, catalog.REQUEST_CONNECT_COUNT, "gauge")


def _renamed(labels: dict[str, str], renames: dict[str, str] | None) -> dict[str, str]:
    if not renames:
        return dict(labels)
    return {renames.get(k, k): v for k, v in labels.items()}


def _histogram_problem(samples: list[ParsedSample], factor: float) -> str | None:
    """Why the samples of one histogram family cannot be a guide histogram, or None if they can."""
    bounds: dict[tuple[tuple[str, str], ...], set[str]] = defaultdict(set)
    has_inf: set[tuple[tuple[str, str], ...]] = set()
    for s in samples:
        if not s.name.endswith("_bucket"):
            continue
        le = s.labels.get("le")
        if le is None:
            return "a bucket has no le label"
        bound = parse_le(le)
        if bound is None:
            return f"bucket bound le={le[:60]!r} is not a number"
        key = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
        scaled = scale_le(le, factor)
        if scaled in bounds[key]:
            return f"two buckets have the bound {scaled} (le={le[:60]!r} after scaling)"
        bounds[key].add(scaled)
        if bound == INF:
            has_inf.add(key)
    if any(key not in has_inf for key in bounds):
        return 'a bucket series has no le="+Inf" bucket'
    return None


def request_total(labels: dict[str, str], value: float, ts_ms: int | None) -> ParsedSample:
    """One ``infer_service_request_total`` sample."""
    name = catalog.REQUEST_TOTAL
    return ParsedSample(name, labels, value, ts_ms, name, "counter")


def adapt(engine: EngineMap, samples: list[ParsedSample]) -> Derived:
    """The guide's series computed from one scrape (originals not included: the sidecar keeps them),
    and the histogram families left out because they are not valid histograms."""
    by_family: dict[str, list[ParsedSample]] = defaultdict(list)
    for s in samples:
        split = _split_histogram(s.name, engine.histograms)
        if split is not None:
            by_family[split[0]].append(s)
    dropped: list[Dropped] = []
    for family, members in by_family.items():
        problem = _histogram_problem(members, engine.histograms[family][1])
        if problem is not None:
            dropped.append(Dropped(family, problem))
    invalid = {d.family for d in dropped}
    # an older name is ignored only when its successor is there and usable
    usable = by_family.keys() - invalid
    skipped = invalid | {old for new, old in engine.supersedes.items() if new in usable}
    present = {s.name for s in samples}
    skipped |= {old for new, old in engine.supersedes.items() if new in engine.gauges and new in present}
    summed_sources = {source: target for target, sources in engine.sums.items() for source in sources}
    out: list[ParsedSample] = []
    connection_samples: list[ParsedSample] = []
    to_sum: dict[str, list[ParsedSample]] = defaultdict(list)
    for s in samples:
        split = _split_histogram(s.name, engine.histograms)
        if split is not None and split[0] not in skipped:
            target, factor = engine.histograms[split[0]]
            out.append(_histogram(s, target, factor, split[1]))
        if s.name in engine.counters:
            target = engine.counters[s.name]
            labels = _renamed(s.labels, engine.label_renames.get(s.name))
            out.append(ParsedSample(target, labels, s.value, s.ts_ms, target, "counter"))
        if s.name in summed_sources:
            to_sum[summed_sources[s.name]].append(s)
        if s.name in engine.gauges and s.name not in skipped:
            target, factor = engine.gauges[s.name]
            out.append(ParsedSample(target, dict(s.labels), s.value * factor, s.ts_ms, target, "gauge"))
        if s.name in engine.connection_gauges:
            connection_samples.append(s)
    for target, members in to_sum.items():
        if {m.name for m in members} == set(engine.sums[target]):  # a part missing: no sum
            out += _summed(members, target, "counter")
    if engine.requests is not None:
        out += engine.requests(samples)
    for extra in engine.extras:
        out += extra(samples)
    return Derived(out + _connections(connection_samples), tuple(dropped))


def derive(engine: EngineMap, samples: list[ParsedSample]) -> list[ParsedSample]:
    """``adapt``'s samples only."""
    return adapt(engine, samples).samples
