"""``POST /v1/traces``: LLM request spans → per-request observations of the guide's series.

Engines that trace (vLLM's ``llm_request`` span, SGLang and GenAI-semconv instrumentations) state
each request's latencies and token counts exactly, from inside the engine. This receiver reads
those attributes (``span_observation``; the table is in docs/opentelemetry.md) and feeds:

- the quantile sketches (``store/sketches.py``): one row per series, 10 s window and request body,
  so these quantiles merge with the sidecars' proxy sketches;
- the guide's classic histograms (``_bucket``/``_sum``/``_count``, the proxy's bounds) and
  ``infer_service_request_total{code}``, accumulated per series as counters (``SeriesState``);
- exemplars: each observation's trace and span ids on the classic histogram bucket it landed in
  (``store/exemplars.py``, read by ``/api/v1/query_exemplars``).

Spans are not stored as traces. Spans that are not LLM requests are ignored (counted). Labels are
the resource's (``otlp_names.resource_labels``: ``k8s.pod.name`` → ``source`` and the rest).

Exactly once: a sketch row's id is a hash of the span ids in it, so a resent body is read once;
the counters skip a span whose (project, trace id, span id) is among the last ``max_recent_spans``
seen by this process (``recent_ids.RecentIds``), so a resend after a restart may count twice in the
classic histograms (never in the sketches). Tenancy and limits are the metrics receiver's.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from prometheus_client.utils import floatToGoString

from collector import catalog
from collector.proxy.exemplars import Exemplar, bucket_bound
from collector.proxy.stats import LATENCY_BUCKETS_MS, PER_TOKEN_BUCKETS_MS, TOKEN_BUCKETS
from collector.window import SketchRow
from model.labels import METRIC_NAME, Labels, to_labels
from query.api.otlp_metrics import SKETCH_WINDOW_S, SeriesState, any_value, exemplar_labels
from query.api.otlp_names import IDENTITY_ATTRIBUTES, resource_labels
from query.api.otlp_request import hex_id
from query.api.write_request_scan import OverLimitError
from sketch.codec import to_columns
from sketch.mapping import DEFAULT_SCALE
from sketch.sketch import ExponentialHistogram

# Queue time has no series of the guide's: it gets one of ours, in ms like the guide's costs.
QUEUE_COST = "infersight_request_queue_cost"
_MS = 1000.0
_BOUNDS = {
    catalog.REQUEST_COST: LATENCY_BUCKETS_MS,
    catalog.FIRST_TOKEN_COST: LATENCY_BUCKETS_MS,
    catalog.PER_TOKEN_COST: PER_TOKEN_BUCKETS_MS,
    QUEUE_COST: LATENCY_BUCKETS_MS,
    catalog.INPUT_TOKEN_QUANTITY: TOKEN_BUCKETS,
    catalog.OUTPUT_TOKEN_QUANTITY: TOKEN_BUCKETS,
}
_ERROR = 2  # Status.StatusCode.STATUS_CODE_ERROR


@dataclass(frozen=True, slots=True)
class SpanObservation:
    """What one request span says, in the guide's units (ms, tokens); None where it does not say."""

    end_ms: int
    code: str  # "2xx" / "4xx" / "5xx"
    values: dict[str, float]
    error_type: str | None = None  # OpenTelemetry's ``error.type`` of a failed request


def _number(attributes: dict[str, Any], *names: str) -> float | None:
    for name in names:
        value = attributes.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    return None


def span_observation(span: Any, attributes: dict[str, Any]) -> SpanObservation | None:
    """The request figures of an LLM request span, or None for any other span.

    vLLM (``llm_request``) and engines that copy its attributes: ``gen_ai.latency.*`` in seconds,
    ``gen_ai.usage.prompt_tokens``/``completion_tokens``. GenAI semantic conventions: a span with
    ``gen_ai.operation.name`` and ``gen_ai.usage.input_tokens``/``output_tokens``; its duration is
    the request's cost. SGLang: the request's root span (``Req …`` with ``rid``), whose duration is
    the request's cost (its stage spans under it carry no request figures).
    """
    engine = any(key.startswith("gen_ai.latency.") for key in attributes)
    semconv = "gen_ai.operation.name" in attributes
    # SGLang's root span of a request: "Req <rid[:8]>" with ``rid``, from arrival to finish.
    sglang = span.name.startswith("Req ") and "rid" in attributes
    if not engine and not semconv and not sglang:
        return None
    duration_ms = (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6
    values: dict[str, float] = {}
    e2e = _number(attributes, "gen_ai.latency.e2e")
    values[catalog.REQUEST_COST] = e2e * _MS if e2e is not None else max(duration_ms, 0.0)
    ttft = _number(attributes, "gen_ai.latency.time_to_first_token", "gen_ai.server.time_to_first_token")
    if ttft is not None:
        values[catalog.FIRST_TOKEN_COST] = ttft * _MS
    queue = _number(attributes, "gen_ai.latency.time_in_queue")
    if queue is not None:
        values[QUEUE_COST] = queue * _MS
    prompt = _number(attributes, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")
    if prompt is not None:
        values[catalog.INPUT_TOKEN_QUANTITY] = prompt
    output = _number(attributes, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")
    if output is not None:
        values[catalog.OUTPUT_TOKEN_QUANTITY] = output
    decode = _number(attributes, "gen_ai.latency.time_in_model_decode")
    if decode is not None and output is not None and output > 1:
        values[catalog.PER_TOKEN_COST] = decode * _MS / (output - 1)
    return SpanObservation(
        span.end_time_unix_nano // 1_000_000, _code(span, attributes), values, _error_type(span, attributes)
    )


def _code(span: Any, attributes: dict[str, Any]) -> str:
    status = _number(attributes, "http.response.status_code", "http.status_code")
    if status is not None and 100 <= status < 600:
        return f"{int(status) // 100}xx"
    return "5xx" if span.status.code == _ERROR or "error.type" in attributes else "2xx"


def _error_type(span: Any, attributes: dict[str, Any]) -> str | None:
    """The span's ``error.type`` as the conventions have it: the attribute when set, else the status
    code of 400 or more, else ``_OTHER`` for a span whose status is ERROR; None: it succeeded."""
    stated = attributes.get("error.type")
    if isinstance(stated, str) and stated:
        return stated[:128]
    status = _number(attributes, "http.response.status_code", "http.status_code")
    if status is not None and 400 <= status < 600:
        return str(int(status))
    return "_OTHER" if span.status.code == _ERROR else None


@dataclass(slots=True)
class TraceTranslation:
    """One request's observations: samples (as ``otlp_metrics``), sketch rows, exemplars, state."""

    samples: list[tuple[Labels, int, float]]
    sketches: list[SketchRow]
    exemplars: list[Exemplar]
    pending: dict[Any, Any]
    span_keys: list[tuple[str, str]]
    ignored: int


def translate_spans(
    request: Any,
    state: SeriesState,
    fresh: Any,
    *,
    project: str | None = None,
    identity: Iterable[tuple[str, str]] = IDENTITY_ATTRIBUTES,
    max_spans: int = 100_000,
) -> TraceTranslation:
    """An ``ExportTraceServiceRequest`` as observations; ``fresh(key)``: False for a span already
    counted. PermissionError for another project's resource, ``OverLimitError`` past ``max_spans``."""
    groups: dict[tuple[str, Labels, int], list[tuple[float, bytes]]] = {}
    counted: dict[tuple[str, Labels], list[float]] = {}
    codes: dict[Labels, int] = {}
    exemplars: list[Exemplar] = []
    span_keys: list[tuple[str, str]] = []
    spans = ignored = 0
    last_ms = 0
    for resource_spans in request.resource_spans:
        resource = {kv.key: any_value(kv.value) for kv in resource_spans.resource.attributes}
        base = resource_labels(resource, identity)
        if project is not None:
            if base.get("project_id", project) != project:
                raise PermissionError("spans may only be written to the key's own project_id")
            base["project_id"] = project
        series = tuple(sorted(base.items()))
        for scope in resource_spans.scope_spans:
            for span in scope.spans:
                spans += 1
                if spans > max_spans:
                    raise OverLimitError("spans", max_spans)
                attributes = {kv.key: any_value(kv.value) for kv in span.attributes}
                observation = span_observation(span, attributes)
                if observation is None:
                    ignored += 1
                    continue
                ids = span.trace_id + span.span_id
                key = (base.get("project_id", ""), ids.hex())
                new = fresh(key)
                span_keys.append(key)
                last_ms = max(last_ms, observation.end_ms)
                window = observation.end_ms // (SKETCH_WINDOW_S * 1000)
                # a failed request's sketch rows carry its error_type (reads merge over it), as the
                # proxy's do; the classic histograms and exemplars keep the resource's labels
                sketch_series = series
                if (error := observation.error_type) is not None:
                    sketch_series = tuple(sorted({**base, catalog.ERROR_TYPE: error}.items()))
                if new:
                    code_labels = to_labels(
                        {**base, METRIC_NAME: catalog.REQUEST_TOTAL, "code": observation.code}
                    )
                    codes[code_labels] = codes.get(code_labels, 0) + 1
                for metric, value in observation.values.items():
                    groups.setdefault((metric, sketch_series, window), []).append((value, ids))
                    if new:
                        counted.setdefault((metric, series), []).append(value)
                    exemplars.append(
                        Exemplar(
                            bucket_series(metric, base, value),
                            exemplar_labels(hex_id(span.trace_id), hex_id(span.span_id)),
                            value,
                            observation.end_ms,
                        )
                    )
    pending: dict[Any, Any] = {}
    samples: list[tuple[Labels, int, float]] = []
    now_ms = max(last_ms, int(time.time() * 1000))
    for labels, n in codes.items():
        key = ("span_counter", labels)
        total = (state.get(key) or 0.0) + n
        pending[key] = total
        samples.append((labels, now_ms, total))
    for (metric, series), values in counted.items():
        samples.extend(_histogram(metric, dict(series), values, state, pending, now_ms))
    return TraceTranslation(samples, _sketch_rows(groups), exemplars, pending, span_keys, ignored)


def bucket_series(metric: str, base: dict[str, str], value: float) -> Labels:
    """The classic histogram bucket series ``value`` of ``metric`` landed in (``le`` the first bound
    at or above it), where its exemplar belongs."""
    le = bucket_bound(_BOUNDS[metric], value)
    return to_labels({**base, METRIC_NAME: f"{metric}_bucket", "le": floatToGoString(le)})


def _histogram(
    metric: str, base: dict[str, str], values: list[float], state: SeriesState, pending: dict, ts_ms: int
) -> list[tuple[Labels, int, float]]:
    """The metric's classic histogram with ``values`` added to its running counts."""
    bounds = _BOUNDS[metric]
    key = ("span_histogram", metric, tuple(sorted(base.items())))
    before = state.get(key) or ([0] * (len(bounds) + 1), 0.0, 0)
    counts = list(before[0])
    places = np.searchsorted(np.asarray(bounds, np.float64), np.asarray(values), side="left")
    for place in places.tolist():
        counts[place] += 1
    total, count = before[1] + float(sum(values)), before[2] + len(values)
    pending[key] = (counts, total, count)
    out, running = [], 0
    for bound, n in zip((*bounds, math.inf), counts, strict=True):
        running += n
        labels = to_labels({**base, METRIC_NAME: f"{metric}_bucket", "le": floatToGoString(bound)})
        out.append((labels, ts_ms, float(running)))
    out.append((to_labels({**base, METRIC_NAME: f"{metric}_sum"}), ts_ms, total))
    out.append((to_labels({**base, METRIC_NAME: f"{metric}_count"}), ts_ms, float(count)))
    return out


def _sketch_rows(groups: dict[tuple[str, Labels, int], list[tuple[float, bytes]]]) -> list[SketchRow]:
    rows = []
    for (metric, series, window), items in sorted(groups.items()):
        histogram = ExponentialHistogram(DEFAULT_SCALE)
        histogram.add_many(np.asarray([value for value, _ in items], np.float64))
        if not histogram.count:
            continue
        digest = hashlib.blake2b(metric.encode(), digest_size=8)
        for _, ids in sorted(items, key=lambda item: item[1]):
            digest.update(ids)
        row_id = int.from_bytes(digest.digest(), "little") or 1
        start_ms = window * SKETCH_WINDOW_S * 1000
        rows.append(SketchRow(metric, series, start_ms, SKETCH_WINDOW_S, to_columns(histogram), row_id))
    return rows
