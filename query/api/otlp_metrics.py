"""OTLP metrics → the guide's samples and sketches: the translation, and the state it keeps.

Each data point becomes Prometheus samples under the names ``otlp_names`` gives, as Prometheus'
own OTLP receiver writes them:

- gauge: one sample; a sum: one sample (``_total`` where monotonic);
- histogram: ``_bucket{le}`` (cumulative counts, ``+Inf`` last), ``_sum``, ``_count``;
- exponential histogram: ``_sum`` and ``_count``, and its buckets as a row of the sketch store
  (``store/sketches.py``), the same exponential scheme the sidecars' sketches use: its quantiles
  merge with theirs in ``/api/v1/sketch_quantiles``. A point finer than the sidecars' scale 6 is
  downscaled to 6 (relative error 0.54 %); a coarser one is kept at its scale (reads merge at the
  lowest scale present);
- summary: ``{quantile}`` samples, ``_sum``, ``_count``.

A point flagged ``NO_RECORDED_VALUE`` is a staleness marker. A point's exemplars that name a trace
or span become exemplars of the series their value belongs to (``store/exemplars.py``, read by
``/api/v1/query_exemplars``): a gauge's or sum's own series, the histogram bucket the value lands in,
an exponential histogram's ``_count``; labels ``trace_id``, ``span_id`` and the filtered attributes
while they fit OpenMetrics' 128 characters; at most ``MAX_EXEMPLARS_PER_REQUEST`` per request.

Delta temporality is accumulated per series into cumulative (what PromQL's ``rate`` reads), and a
cumulative exponential histogram is turned into the delta of its window for the sketch store. The
state this takes (``SeriesState``) is per process and bounded: a series it forgot, or one after a
restart, starts again from zero, which ``rate``/``increase`` read as a counter reset.

Exactly once, as remote write: samples are their own identity (series, timestamp). A delta point
whose time is not after the last one accumulated for its series is a resend (or out of order) and
is skipped, counted. A sketch row's id is a hash of its project, series and point times, so a resent
point is read once (``store/sketch_dedup.py``); a cumulative point seen again adds no row. The
state is committed only once the request was kept, so a request answered 503 and retried counts once.
A cumulative exponential histogram first seen here counts whole if its series started after this
receiver did (so nothing of it can have been counted before), else it is only the baseline.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np
from prometheus_client.utils import floatToGoString

from collector.proxy.exemplars import MAX_EXEMPLAR_LABEL_CHARS, Exemplar, bucket_bound
from collector.window import SketchRow
from exporters.segments import Columns
from model.labels import METRIC_NAME, Labels, to_labels
from model.series import STALE_NAN
from query.api.otlp_names import IDENTITY_ATTRIBUTES, labels_of, metric_name, resource_labels
from query.api.otlp_request import hex_id
from query.api.write_request_scan import OverLimitError
from sketch.codec import from_otlp_buckets, to_columns
from sketch.mapping import DEFAULT_SCALE, ExponentialMapping
from sketch.sketch import ExponentialHistogram
from sketch.store import SparseStore

SKETCH_WINDOW_S = 10  # the sidecars' sketch window: rows of one series and window add up
DELTA, CUMULATIVE = 1, 2  # AggregationTemporality
NO_RECORDED_VALUE = 1  # DataPointFlags
DEFAULT_MAX_STATE_SERIES = 200_000
MAX_EXEMPLARS_PER_REQUEST = 10_000

_Key = tuple[str, Labels]


class SeriesState:
    """What delta accumulation and cumulative-to-delta need of each series: bounded (least recently
    used forgotten first), thread-safe, changed only through ``commit``."""

    def __init__(self, max_series: int = DEFAULT_MAX_STATE_SERIES) -> None:
        self.max_series = max_series
        self._items: OrderedDict[_Key, Any] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: _Key) -> Any:
        with self._lock:
            return self._items.get(key)

    def commit(self, pending: dict[_Key, Any]) -> None:
        with self._lock:
            for key, value in pending.items():
                self._items[key] = value
                self._items.move_to_end(key)
            while len(self._items) > self.max_series:
                self._items.popitem(last=False)


class SeriesCache:
    """Gauge and sum series' label sets across requests, by what was sent (project, the resource's
    and the point's attributes as encoded, the translated name): a sender repeats its series in every
    export, so translating one is a lookup after the first time. Bounded: emptied when full."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._items: dict[Any, Labels] = {}

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Any) -> Labels | None:
        return self._items.get(key)

    def put(self, key: Any, labels: Labels) -> None:
        if len(self._items) >= self.max_entries:
            self._items.clear()
        self._items[key] = labels


@dataclass(slots=True)
class Translation:
    """One request translated: samples in columns, sketch rows, exemplars, the state to commit once
    kept, and the points skipped per reason."""

    columns: Columns
    sketches: list[SketchRow]
    exemplars: list[Exemplar]
    pending: dict[_Key, Any]
    skipped: dict[str, int] = field(default_factory=dict)


class _Samples:
    """Samples gathered as columns, one label set per series; past ``max_samples`` ``OverLimitError``."""

    def __init__(self, max_samples: int) -> None:
        self.max_samples = max_samples
        self.places: dict[Labels, int] = {}
        self.index: list[int] = []
        self.ts: list[int] = []
        self.values: list[float] = []

    def add(self, labels: Labels, ts_ms: int, value: float) -> None:
        if len(self.ts) >= self.max_samples:
            raise OverLimitError("samples", self.max_samples)
        self.index.append(self.places.setdefault(labels, len(self.places)))
        self.ts.append(ts_ms)
        self.values.append(value)

    def columns(self) -> Columns:
        return Columns(
            list(self.places),
            np.asarray(self.index, np.uint32),
            np.asarray(self.ts, np.int64),
            np.asarray(self.values, np.float64),
        )


class _Translator:
    def __init__(
        self,
        state: SeriesState,
        project: str | None,
        identity: Iterable[tuple[str, str]],
        max_samples: int,
        started_ns: int,
        cache: SeriesCache | None = None,
    ) -> None:
        self.state = state
        self.cache = cache if cache is not None else SeriesCache()
        self.project = project
        self.identity = tuple(identity)
        self.samples = _Samples(max_samples)
        self.sketches: list[SketchRow] = []
        self.exemplars: list[Exemplar] = []
        self.pending: dict[_Key, Any] = {}
        self.skipped: dict[str, int] = {}
        self.started_ns = started_ns
        # Memos for this request only (keys hold ids of dicts that live as long as the request).
        self._point_labels: dict[Any, dict[str, str]] = {}
        self._labels: dict[tuple[int, str], Labels] = {}
        self._resources: list[dict[str, str]] = []

    def previous(self, key: _Key) -> Any:
        return self.pending[key] if key in self.pending else self.state.get(key)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def point_labels(self, attributes: Any, from_resource: dict[str, str]) -> dict[str, str]:
        """A point's labels: its own attributes win over what its resource maps to (a sidecar
        re-exporting the series it scraped states each series' identity labels itself). Memoised
        per request by the attributes as sent: senders repeat a few attribute sets many times."""
        key = (tuple([kv.SerializeToString() for kv in attributes]), id(from_resource))
        found = self._point_labels.get(key)
        if found is None:
            found = {**from_resource, **labels_of((kv.key, any_value(kv.value)) for kv in attributes)}
            self._point_labels[key] = found
        return found

    def labels(self, base: dict[str, str], name: str, extra: dict[str, str] | None = None) -> Labels:
        if extra is None:
            key = (id(base), name)
            found = self._labels.get(key)
            if found is None:
                found = self._labels[key] = self._labels_of(base, name, extra)
            return found
        return self._labels_of(base, name, extra)

    def _labels_of(self, base: dict[str, str], name: str, extra: dict[str, str] | None) -> Labels:
        labels = {**base, **(extra or {}), METRIC_NAME: name}
        if self.project is not None:
            if labels.get("project_id", self.project) != self.project:
                raise PermissionError("samples may only be written to the key's own project_id")
            labels["project_id"] = self.project
        return to_labels(labels)

    def run(self, request: Any) -> Translation:
        for resource_metrics in request.resource_metrics:
            resource = {kv.key: any_value(kv.value) for kv in resource_metrics.resource.attributes}
            from_resource = resource_labels(resource, self.identity)
            self._resources.append(from_resource)  # kept alive: its id keys the memo
            sent = (
                self.project,
                tuple([kv.SerializeToString() for kv in resource_metrics.resource.attributes]),
            )
            for scope in resource_metrics.scope_metrics:
                for metric in scope.metrics:
                    self.metric(metric, from_resource, sent)
        return Translation(self.samples.columns(), self.sketches, self.exemplars, self.pending, self.skipped)

    def metric(self, metric: Any, from_resource: dict[str, str], resource_sent: tuple) -> None:
        kind = metric.WhichOneof("data")
        if kind is None:
            return
        data = getattr(metric, kind)
        monotonic = kind == "sum" and data.is_monotonic
        name = metric_name(metric.name, metric.unit, kind, monotonic)
        if kind in ("gauge", "sum"):
            self.numbers(kind, data, name, from_resource, (*resource_sent, name))
            return
        for point in data.data_points:
            base = self.point_labels(point.attributes, from_resource)
            ts_ms = point.time_unix_nano // 1_000_000
            stale = bool(point.flags & NO_RECORDED_VALUE)
            if kind == "histogram":
                self.histogram(data, name, base, point, ts_ms, stale)
            elif kind == "exponential_histogram":
                self.exponential(data, name, base, point, ts_ms, stale)
            elif kind == "summary":
                self.summary(name, base, point, ts_ms, stale)
            for exemplar in getattr(point, "exemplars", ()):  # summaries have none
                self.exemplar(kind, name, base, point, exemplar)

    def numbers(self, kind: str, data: Any, name: str, from_resource: dict[str, str], sent: tuple) -> None:
        """A gauge's or sum's points: the bulk of what senders send, so one tight loop, with each
        attribute set (as sent) resolved to its series once per metric (``self.cache`` across
        requests; ``sent`` is the cache key's part of the project, the resource and the name)."""
        points = data.data_points
        samples = self.samples
        if len(samples.ts) + len(points) > samples.max_samples:
            raise OverLimitError("samples", samples.max_samples)
        delta = kind == "sum" and data.aggregation_temporality == DELTA
        places, index, stamps, values = samples.places, samples.index, samples.ts, samples.values
        resolved: dict[tuple[bytes, ...], tuple[Labels, int]] = {}
        for point in points:
            attributes = point.attributes
            key = tuple([kv.SerializeToString() for kv in attributes])
            found = resolved.get(key)
            if found is None:
                series = self.cache.get((sent, key))
                if series is None:
                    series = self.labels(self.point_labels(attributes, from_resource), name)
                    self.cache.put((sent, key), series)
                found = resolved[key] = (series, places.setdefault(series, len(places)))
            series, place = found
            which = point.WhichOneof("value")
            if point.flags & NO_RECORDED_VALUE or which is None:
                value = STALE_NAN
            else:
                value = float(point.as_double if which == "as_double" else point.as_int)
                if delta:
                    state_key = ("sum", series)
                    previous = self.previous(state_key)
                    if previous is not None and point.time_unix_nano <= previous[0]:
                        self.skip("resent_or_out_of_order")
                        continue
                    value += previous[1] if previous is not None else 0.0
                    self.pending[state_key] = (point.time_unix_nano, value)
            index.append(place)
            stamps.append(point.time_unix_nano // 1_000_000)
            values.append(value)
            if point.exemplars:
                base = self.point_labels(attributes, from_resource)
                for exemplar in point.exemplars:
                    self.exemplar(kind, name, base, point, exemplar)

    def histogram(
        self, data: Any, name: str, base: dict[str, str], point: Any, ts_ms: int, stale: bool
    ) -> None:
        bounds = tuple(point.explicit_bounds)
        counts = list(point.bucket_counts)
        if counts and len(counts) != len(bounds) + 1:
            raise ValueError(f"{name}: {len(counts)} bucket counts for {len(bounds)} explicit bounds")
        if any(not b < c for b, c in pairwise(bounds)):
            raise ValueError(f"{name}: explicit bounds must increase")
        total, count = point.sum, point.count
        if data.aggregation_temporality == DELTA and not stale:
            key = ("histogram", self.labels(base, name))
            previous = self.previous(key)
            if previous is not None and point.time_unix_nano <= previous[0]:
                self.skip("resent_or_out_of_order")
                return
            if previous is not None and previous[1] == bounds and len(previous[2]) == len(counts):
                counts = [a + b for a, b in zip(previous[2], counts, strict=True)]
                total, count = previous[3] + total, previous[4] + count
            self.pending[key] = (point.time_unix_nano, bounds, counts, total, count)
        running = 0
        for bound, bucket in zip((*bounds, math.inf), counts or [0] * (len(bounds) + 1), strict=True):
            running += bucket
            le = {"le": floatToGoString(bound)}
            self.samples.add(
                self.labels(base, f"{name}_bucket", le), ts_ms, STALE_NAN if stale else float(running)
            )
        if point.HasField("sum") or stale:
            self.samples.add(self.labels(base, f"{name}_sum"), ts_ms, STALE_NAN if stale else float(total))
        self.samples.add(self.labels(base, f"{name}_count"), ts_ms, STALE_NAN if stale else float(count))

    def summary(self, name: str, base: dict[str, str], point: Any, ts_ms: int, stale: bool) -> None:
        for quantile in point.quantile_values:
            q = {"quantile": floatToGoString(quantile.quantile)}
            self.samples.add(self.labels(base, name, q), ts_ms, STALE_NAN if stale else quantile.value)
        self.samples.add(self.labels(base, f"{name}_sum"), ts_ms, STALE_NAN if stale else point.sum)
        self.samples.add(
            self.labels(base, f"{name}_count"), ts_ms, STALE_NAN if stale else float(point.count)
        )

    def exponential(
        self, data: Any, name: str, base: dict[str, str], point: Any, ts_ms: int, stale: bool
    ) -> None:
        sum_labels, count_labels = self.labels(base, f"{name}_sum"), self.labels(base, f"{name}_count")
        if stale:
            self.samples.add(sum_labels, ts_ms, STALE_NAN)
            self.samples.add(count_labels, ts_ms, STALE_NAN)
            return
        histogram = exponential_histogram(point)
        series = self.labels(base, name)
        key = ("exponential", series)
        previous = self.previous(key)
        if previous is not None and point.time_unix_nano <= previous[0]:
            self.skip("resent_or_out_of_order")
            if data.aggregation_temporality == DELTA:
                return
            delta = None
        elif data.aggregation_temporality == DELTA:
            delta = histogram
        elif previous is None or previous[2] is None:  # first seen (or the sender switched from delta)
            delta = histogram if point.start_time_unix_nano >= self.started_ns else None
        else:
            same_start = previous[1] == point.start_time_unix_nano
            delta = subtract(histogram, previous[2]) if same_start else None
            delta = histogram if delta is None and point.start_time_unix_nano > previous[0] else delta
        count, total = float(histogram.count), histogram.sum
        if data.aggregation_temporality == DELTA:
            if previous is not None:
                count, total = previous[3] + count, previous[4] + total
            self.pending[key] = (point.time_unix_nano, point.start_time_unix_nano, None, count, total)
        else:
            self.pending[key] = (point.time_unix_nano, point.start_time_unix_nano, histogram, count, total)
        self.samples.add(sum_labels, ts_ms, total)
        self.samples.add(count_labels, ts_ms, count)
        if delta is not None and delta.count:
            self.sketch_row(name, series, point, delta)

    def sketch_row(self, name: str, series: Labels, point: Any, histogram: ExponentialHistogram) -> None:
        if histogram.scale > DEFAULT_SCALE:
            histogram = histogram.downscaled(DEFAULT_SCALE)
        end_ms = max(point.time_unix_nano - 1, 0) // 1_000_000
        window_ms = SKETCH_WINDOW_S * 1000
        identity = repr((self.project, series, point.start_time_unix_nano, point.time_unix_nano)).encode()
        row_id = int.from_bytes(hashlib.blake2b(identity, digest_size=8).digest(), "little") or 1
        labels = tuple((k, v) for k, v in series if k != METRIC_NAME)
        columns = to_columns(histogram)
        self.sketches.append(
            SketchRow(name, labels, end_ms // window_ms * window_ms, SKETCH_WINDOW_S, columns, row_id)
        )

    def exemplar(self, kind: str, name: str, base: dict[str, str], point: Any, exemplar: Any) -> None:
        which = exemplar.WhichOneof("value")
        if (not exemplar.trace_id and not exemplar.span_id) or which is None:
            return
        value = float(getattr(exemplar, which))
        if math.isnan(value):
            return
        if len(self.exemplars) >= MAX_EXEMPLARS_PER_REQUEST:
            self.skip("exemplars_over_limit")
            return
        if kind in ("gauge", "sum"):
            series = self.labels(base, name)
        elif kind == "histogram":
            le = bucket_bound(point.explicit_bounds, value)
            series = self.labels(base, f"{name}_bucket", {"le": floatToGoString(le)})
        else:
            series = self.labels(base, f"{name}_count")
        extra = labels_of((kv.key, any_value(kv.value)) for kv in exemplar.filtered_attributes)
        labels = exemplar_labels(hex_id(exemplar.trace_id), hex_id(exemplar.span_id), extra)
        self.exemplars.append(Exemplar(series, labels, value, exemplar.time_unix_nano // 1_000_000))


def exemplar_labels(trace_id: str, span_id: str, extra: dict[str, str] | None = None) -> Labels:
    """An exemplar's labels: the ids it names, then ``extra`` (by name) while all of them together
    stay within OpenMetrics' 128 characters (names and values)."""
    ids = [(k, v) for k, v in (("span_id", span_id), ("trace_id", trace_id)) if v]
    room = MAX_EXEMPLAR_LABEL_CHARS - sum(len(k) + len(v) for k, v in ids)
    kept = dict(ids)
    for key, value in sorted((extra or {}).items()):
        if key not in kept and len(key) + len(value) <= room:
            kept[key] = value
            room -= len(key) + len(value)
    return tuple(sorted(kept.items()))


def translate(
    request: Any,
    state: SeriesState,
    *,
    project: str | None = None,
    identity: Iterable[tuple[str, str]] = IDENTITY_ATTRIBUTES,
    max_samples: int = 1_000_000,
    started_ns: int = 0,
    cache: SeriesCache | None = None,
) -> Translation:
    """An ``ExportMetricsServiceRequest`` as samples and sketch rows; ValueError for a point that is
    not valid, ``OverLimitError`` past ``max_samples``, PermissionError for another project's series.
    ``state`` is only read: commit ``Translation.pending`` once the result is kept."""
    return _Translator(state, project, identity, max_samples, started_ns, cache).run(request)


def any_value(value: Any) -> Any:
    """An OTLP ``AnyValue`` as Python (arrays and maps nested, bounded by the protobuf parser's depth)."""
    which = value.WhichOneof("value")
    if which is None:
        return ""
    if which == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, which)


def exponential_histogram(point: Any) -> ExponentialHistogram:
    """An OTLP ``ExponentialHistogramDataPoint`` as a sketch (ValueError if its counts disagree)."""
    histogram = ExponentialHistogram(_scale(point.scale))
    for side, buckets in (("positive", point.positive), ("negative", point.negative)):
        keys, counts = from_otlp_buckets(buckets.offset, list(buckets.bucket_counts))
        setattr(histogram, side, SparseStore(keys, counts))
    histogram.zero_count = int(point.zero_count)
    histogram.count = int(point.count)
    histogram.sum = float(point.sum) if point.HasField("sum") else 0.0
    if histogram.positive.total + histogram.negative.total + histogram.zero_count != histogram.count:
        raise ValueError("exponential histogram: bucket counts do not add up to count")
    low, high = _bucket_range(histogram)
    histogram.min = float(point.min) if point.HasField("min") else low
    histogram.max = float(point.max) if point.HasField("max") else high
    return histogram


def _scale(scale: int) -> int:
    mapping_range = range(-10, 21)
    if scale not in mapping_range:
        raise ValueError(f"exponential histogram: scale {scale} outside [-10, 20]")
    return scale


def _bucket_range(histogram: ExponentialHistogram) -> tuple[float, float]:
    """The lowest and highest value the buckets allow (for a point that states no min/max);
    a bound past the float range is infinite."""
    base = ExponentialMapping(histogram.scale).base

    def power(index: int) -> float:
        try:
            return base**index
        except OverflowError:
            return math.inf

    ends: list[float] = []
    negative, positive = histogram.negative.keys, histogram.positive.keys
    if negative.size:
        ends += [-power(int(negative[-1]) + 1), -power(int(negative[0]))]
    if histogram.zero_count:
        ends.append(0.0)
    if positive.size:
        ends += [power(int(positive[0])), power(int(positive[-1]) + 1)]
    return (min(ends), max(ends)) if ends else (math.inf, -math.inf)


def subtract(current: ExponentialHistogram, previous: ExponentialHistogram) -> ExponentialHistogram | None:
    """``current - previous`` of one cumulative series (at the coarser scale of the two); None where a
    count went down (a reset)."""
    scale = min(current.scale, previous.scale)
    current, previous = current.downscaled(scale), previous.downscaled(scale)
    out = ExponentialHistogram(scale)
    for side in ("positive", "negative"):
        now, before = getattr(current, side), getattr(previous, side)
        keys = np.union1d(now.keys, before.keys)
        counts = np.zeros(keys.size, np.int64)
        counts[np.searchsorted(keys, now.keys)] += now.counts.astype(np.int64)
        counts[np.searchsorted(keys, before.keys)] -= before.counts.astype(np.int64)
        if (counts < 0).any():
            return None
        present = counts > 0
        setattr(out, side, SparseStore(keys[present].astype(np.int64), counts[present].astype(np.uint64)))
    out.zero_count = current.zero_count - previous.zero_count
    out.count = current.count - previous.count
    if out.zero_count < 0 or out.count < 0:
        return None
    out.sum = current.sum - previous.sum
    low, high = _bucket_range(out)
    out.min, out.max = max(low, current.min), min(high, current.max)
    return out
