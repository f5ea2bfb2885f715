"""The sidecar's batches to any OTLP endpoint, through ``opentelemetry-sdk``'s OTLP/HTTP exporter.

What a sidecar collects is already aggregated (scraped counters and histograms, closed sketch
windows), so it is handed to the SDK's exporter as the SDK's own export data model
(``opentelemetry.sdk.metrics.export``: ``MetricsData`` of gauges, sums, histograms and exponential
histograms) rather than replayed through instruments. The exporter encodes and POSTs it as
protobuf, gzip-compressed, with the SDK's own retries; a failed export raises, so the disk buffer
in front (``infersight/exporting.py``) keeps the batch and sends it again.

Samples → OTLP, by the Prometheus-compatibility rules read backwards: a ``_total`` series is a
monotonic cumulative sum named without ``_total``; ``_bucket{le}`` with its ``_sum`` and ``_count``
is a cumulative histogram; anything else a gauge. Labels become point attributes.

Sketch rows → delta exponential histograms of their 10 s window, bucket for bucket (scale 6), under
the guide's names — so infersight receiving them (``/v1/metrics``) stores the very rows the direct
path stores — and beside them the GenAI semantic conventions' metrics, in seconds:
``gen_ai.server.time_to_first_token``, ``gen_ai.server.time_per_output_token``,
``gen_ai.server.request.duration``, and ``gen_ai.client.token.usage`` with ``gen_ai.token.type``,
each with ``gen_ai.operation.name``, ``gen_ai.provider.name``, ``gen_ai.request.model`` and
``server.address`` where configured, and a failed request's ``error.type`` (its sketch rows carry
``error_type``: the proxy's outcome or the status code). Rescaling ms to s moves each bucket's
representative value into the bucket of the same scale that holds it (one more relative error of at
most 0.54 %).
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Buckets,
    ExponentialHistogram,
    ExponentialHistogramDataPoint,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExportResult,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from collector import catalog
from collector.window import SketchRow
from exporters.errors import RetryableError
from model.labels import METRIC_NAME
from model.series import Sample, is_stale_nan
from sketch.codec import from_columns, to_otlp_buckets
from sketch.sketch import ExponentialHistogram as Sketch
from sketch.store import SparseStore, combine

SCOPE = InstrumentationScope("infersight.sidecar")
_CUMULATIVE, _DELTA = AggregationTemporality.CUMULATIVE, AggregationTemporality.DELTA
# The guide's per-request series (ms or tokens) → the GenAI semantic conventions' metric, its unit,
# the factor from the guide's unit, and the attributes it adds.
GENAI_METRICS: dict[str, tuple[str, str, float, dict[str, str]]] = {
    catalog.FIRST_TOKEN_COST: ("gen_ai.server.time_to_first_token", "s", 1e-3, {}),
    catalog.PER_TOKEN_COST: ("gen_ai.server.time_per_output_token", "s", 1e-3, {}),
    catalog.REQUEST_COST: ("gen_ai.server.request.duration", "s", 1e-3, {}),
    catalog.INPUT_TOKEN_QUANTITY: (
        "gen_ai.client.token.usage",
        "{token}",
        1.0,
        {"gen_ai.token.type": "input"},
    ),
    catalog.OUTPUT_TOKEN_QUANTITY: (
        "gen_ai.client.token.usage",
        "{token}",
        1.0,
        {"gen_ai.token.type": "output"},
    ),
}
_HEADER = re.compile(r"^\s*([^=\s]+)\s*=\s*(.*?)\s*$")


def parse_headers(text: str) -> dict[str, str]:
    """``k1=v1,k2=v2`` (as ``OTEL_EXPORTER_OTLP_HEADERS``) as a dict; ValueError for a bad pair."""
    out = {}
    for pair in filter(str.strip, text.split(",")):
        found = _HEADER.match(pair)
        if found is None:
            raise ValueError(f"OTLP header {pair!r}: expected NAME=VALUE")
        out[found.group(1)] = found.group(2)
    return out


@dataclass(frozen=True, slots=True)
class GenAiAttributes:
    """The GenAI semantic-convention attributes put on the ``gen_ai.*`` metrics (empty: left out)."""

    operation_name: str = "chat"
    provider_name: str = ""
    request_model: str = ""
    server_address: str = ""

    def as_attributes(self) -> dict[str, str]:
        pairs = {
            "gen_ai.operation.name": self.operation_name,
            "gen_ai.provider.name": self.provider_name,
            "gen_ai.request.model": self.request_model,
            "server.address": self.server_address,
        }
        return {key: value for key, value in pairs.items() if value}


class OtlpExporter:
    """``await OtlpExporter(url).send(samples)`` / ``send_sketches(rows)``; raises when the export
    failed (``RetryableError``), so the caller's buffer keeps the batch.

    ``endpoint``: the full metrics URL (``http://collector:4318/v1/metrics``, or infersight's
    ``http://server:9091/v1/metrics``); ``resource``: the resource's attributes."""

    def __init__(
        self,
        endpoint: str,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 10.0,
        resource: Mapping[str, str] | None = None,
        genai: GenAiAttributes | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._exporter = OTLPMetricExporter(
            endpoint=endpoint, headers=dict(headers or {}), timeout=timeout_s, compression=Compression.Gzip
        )
        # Resource(...) and not Resource.create(...): no SDK defaults (service.name=unknown_service)
        # that a receiver would map onto every series' identity.
        self._resource = Resource(dict(resource or {}))
        self._genai = (genai or GenAiAttributes()).as_attributes()
        self._start_ns = time.time_ns()

    async def send(self, batch: list[Sample]) -> None:
        await self._export(samples_to_metrics(batch, self._start_ns))

    async def send_sketches(self, rows: list[SketchRow]) -> None:
        await self._export(sketches_to_metrics(rows, self._genai))

    async def _export(self, metrics: list[Metric]) -> None:
        if not metrics:
            return
        data = MetricsData([ResourceMetrics(self._resource, [ScopeMetrics(SCOPE, metrics, "")], "")])
        result = await asyncio.to_thread(self._exporter.export, data)
        if result is not MetricExportResult.SUCCESS:
            raise RetryableError(f"OTLP export to {self.endpoint} failed (the SDK's exporter logged why)")

    def shutdown(self) -> None:
        self._exporter.shutdown()


def samples_to_metrics(batch: list[Sample], start_ns: int) -> list[Metric]:
    """Scraped samples as OTLP metrics (see the module's docstring); staleness markers are left out."""
    families: dict[str, dict[tuple, dict[str, Any]]] = {}
    kinds: dict[str, str] = {}
    names = {s.name for s in batch}
    for sample in batch:
        if is_stale_nan(sample.value):
            continue
        name = sample.name
        labels = {k: v for k, v in sample.labels if k != METRIC_NAME}
        base, part = _histogram_part(name, labels, names)
        if part is not None:
            le = labels.pop("le", None)
            point = families.setdefault(base, {}).setdefault(
                _key(labels), {"labels": labels, "ts": 0, "buckets": {}}
            )
            point["ts"] = max(point["ts"], sample.ts_ms)
            if part == "bucket" and le is not None:
                point["buckets"][float(le)] = sample.value
            else:
                point[part] = sample.value
            kinds[base] = "histogram"
            continue
        kind = "sum" if name.endswith("_total") else "gauge"
        base = name[: -len("_total")] if kind == "sum" else name
        families.setdefault(base, {})[_key(labels)] = {
            "labels": labels,
            "ts": sample.ts_ms,
            "value": sample.value,
        }
        kinds[base] = kind
    return [_metric(name, kinds[name], points, start_ns) for name, points in families.items()]


def _histogram_part(name: str, labels: dict[str, str], names: set[str]) -> tuple[str, str | None]:
    for part in ("bucket", "sum", "count"):
        suffix = f"_{part}"
        if name.endswith(suffix) and f"{name[: -len(suffix)]}_bucket" in names:
            if part == "bucket" and "le" not in labels:
                break
            return name[: -len(suffix)], part
    return name, None


def _key(labels: dict[str, str]) -> tuple:
    return tuple(sorted(labels.items()))


def _metric(name: str, kind: str, points: dict[tuple, dict[str, Any]], start_ns: int) -> Metric:
    if kind == "histogram":
        data_points = [_histogram_point(p, start_ns) for p in points.values() if p["buckets"]]
        return Metric(name, "", "", Histogram(data_points, _CUMULATIVE))
    numbers = [
        NumberDataPoint(p["labels"], start_ns, p["ts"] * 1_000_000, p["value"]) for p in points.values()
    ]
    if kind == "sum":
        return Metric(name, "", "", Sum(numbers, _CUMULATIVE, True))
    return Metric(name, "", "", Gauge(numbers))


def _histogram_point(point: dict[str, Any], start_ns: int) -> HistogramDataPoint:
    """Cumulative ``le`` buckets as OTLP's per-bucket counts (the last one the ``+Inf`` bucket)."""
    bounds = sorted(point["buckets"])
    cumulative = [point["buckets"][b] for b in bounds]
    if math.isinf(bounds[-1]):
        bounds = bounds[:-1]
    else:  # no +Inf bucket: the count closes it
        cumulative.append(point.get("count", cumulative[-1]))
    counts = np.diff(np.asarray([0.0, *cumulative])).clip(min=0).astype(np.int64).tolist()
    count = int(point.get("count", cumulative[-1]))
    total = float(point.get("sum", 0.0))
    return HistogramDataPoint(
        point["labels"], start_ns, point["ts"] * 1_000_000, count, total, counts, bounds, math.inf, -math.inf
    )


def sketches_to_metrics(rows: list[SketchRow], genai: Mapping[str, str] | None = None) -> list[Metric]:
    """Closed sketch windows as delta exponential histograms, under the guide's names and the GenAI
    conventions' names (see the module's docstring)."""
    guide: dict[str, list[ExponentialHistogramDataPoint]] = {}
    semconv: dict[str, tuple[str, list[ExponentialHistogramDataPoint]]] = {}
    for row in rows:
        labels = dict(row.labels)
        start_ns = row.window_start_ms * 1_000_000
        end_ns = (row.window_start_ms + row.width_s * 1000) * 1_000_000
        sketch = from_columns(row.columns)
        guide.setdefault(row.metric, []).append(_exponential_point(sketch, labels, start_ns, end_ns))
        if row.metric in GENAI_METRICS:
            name, unit, factor, extra = GENAI_METRICS[row.metric]
            scaled = sketch if factor == 1.0 else rescaled(sketch, factor)
            attributes = {**labels, **(genai or {}), **extra}
            error = attributes.pop(catalog.ERROR_TYPE, None)
            if error is not None:
                attributes["error.type"] = error
            point = _exponential_point(scaled, attributes, start_ns, end_ns)
            semconv.setdefault(name, (unit, []))[1].append(point)
    out = [Metric(name, "", "", ExponentialHistogram(points, _DELTA)) for name, points in guide.items()]
    out += [
        Metric(name, "", unit, ExponentialHistogram(points, _DELTA))
        for name, (unit, points) in semconv.items()
    ]
    return out


def _exponential_point(
    sketch: Sketch, labels: dict[str, str], start_ns: int, end_ns: int
) -> ExponentialHistogramDataPoint:
    positive = to_otlp_buckets(sketch.positive.keys, sketch.positive.counts)
    negative = to_otlp_buckets(sketch.negative.keys, sketch.negative.counts)
    return ExponentialHistogramDataPoint(
        attributes=labels,
        start_time_unix_nano=start_ns,
        time_unix_nano=end_ns,
        count=sketch.count,
        sum=sketch.sum,
        scale=sketch.scale,
        zero_count=sketch.zero_count,
        positive=Buckets(*positive),
        negative=Buckets(*negative),
        flags=0,
        min=sketch.min,
        max=sketch.max,
    )


def rescaled(sketch: Sketch, factor: float) -> Sketch:
    """The sketch of every value times ``factor`` (> 0): each bucket's representative value moved
    into the bucket that holds it at the same scale (count, min, max and sum exact; quantiles within
    one more relative error). Work per occupied bucket, not per value."""
    out = Sketch(sketch.scale)
    base = sketch.mapping.base
    for side, target in ((sketch.positive, "positive"), (sketch.negative, "negative")):
        if not side.keys.size:
            continue
        lower = base ** side.keys.astype(np.float64)
        middle = 2 * lower * (lower * base) / (lower + lower * base)  # as the sketch reads a bucket
        keys, counts = combine([sketch.mapping.to_indexes(middle * factor)], [side.counts])
        setattr(out, target, SparseStore(keys, counts))
    out.zero_count = sketch.zero_count
    out.count = sketch.count
    out.sum, out.min, out.max = sketch.sum * factor, sketch.min * factor, sketch.max * factor
    return out
