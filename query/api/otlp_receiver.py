"""``POST /v1/metrics`` (and Prometheus' path ``/api/v1/otlp/v1/metrics``) and ``/v1/traces``: OTLP/HTTP.

OpenTelemetry SDKs, the Collector's ``otlphttp`` exporter and gateways push here, in protobuf or
JSON, gzip or not. Served as a bare ASGI app ahead of the API's router, as remote write is, and
held to the same rules (docs/opentelemetry.md):

- tenancy: the caller's key confines every series to its project (``project_id`` added, another
  project's refused with 403); auth on, the ``write`` permission is needed;
- limits: ``max_body_bytes`` as sent and ``max_decoded_bytes`` once decompressed (413), at most
  ``max_samples_per_request`` samples and ``max_series_per_request`` series (400), and the store's
  door checks (``store.admission``: timestamps, label sets) refuse the request whole with a 400;
- the ingest log: with one, samples are acknowledged once logged, as remote write's; exponential
  histograms' sketch rows go straight to the sketch store (as the sidecars' ``/api/v1/sketches``),
  so a request holding any is answered 503 while the store is down and retried;
- exactly once: see ``otlp_metrics`` (samples by series and time, sketch rows by a derived id,
  delta points by their times).

What it took and refused is counted in ``admission`` like remote write's door (the server's own
series), and the points skipped as resent or out of order in ``skipped``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from loguru import logger
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.concurrency import run_in_threadpool

from collector.proxy.exemplars import Exemplar
from collector.window import SketchRow
from exporters.errors import is_retryable
from exporters.ingest_log import IngestLog, IngestLogFull
from exporters.segments import Columns, columns_of
from model.series import Sample
from query.api.otlp_metrics import DEFAULT_MAX_STATE_SERIES, SeriesCache, SeriesState, translate
from query.api.otlp_names import IDENTITY_ATTRIBUTES
from query.api.otlp_request import UnsupportedMediaError, decode_request, media_type, send_answer
from query.api.otlp_traces import translate_spans
from query.api.recent_ids import RecentIds
from query.api.remote_write import ClientGone, headers_of, read_body
from query.api.request_body import DEFAULT_MAX_DECODED_BYTES, BodyTooLargeError
from query.api.tenancy import current_project
from query.api.write_request_scan import OverLimitError
from store.admission import (
    DEFAULT_MAX_SAMPLES_PER_REQUEST,
    DEFAULT_MAX_SERIES_PER_REQUEST,
    Admission,
    count_refusal,
    in_time_window,
)
from store.backend import StoreUnavailableError
from store.exemplars import ExemplarStore
from store.insert_errors import is_transient
from store.sketches import SketchWriter
from store.writes import SampleWriter

_Scope = dict[str, Any]
_Receive = Callable[[], Awaitable[dict[str, Any]]]
_Send = Callable[[dict[str, Any]], Awaitable[None]]
Answer = tuple[int, Any]  # (HTTP status, a response message or an error text)


class OtlpEndpoint:
    """The ASGI side shared by the OTLP receivers: method, body bounds, media type, the caller's
    project; ``accept(request, project)`` of the signal's receiver does the rest off the loop."""

    def __init__(self, receiver: Any, max_body_bytes: int = 64 << 20) -> None:
        self.receiver = receiver
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        headers = headers_of(scope)
        try:
            media = media_type(headers.get(b"content-type"))
        except UnsupportedMediaError as err:
            await send_answer(send, 415, "application/x-protobuf", f"{err}".encode())
            return
        if scope["method"] != "POST":
            await send_answer(send, 405, media, b"method not allowed: OTLP/HTTP takes POST")
            return
        try:
            body = await read_body(scope, receive, self.max_body_bytes)
        except ClientGone:
            return
        if body is None:
            await send_answer(send, 413, media, f"request body over {self.max_body_bytes} bytes".encode())
            return
        project = current_project()
        encoding = headers.get(b"content-encoding")
        status, payload = await run_in_threadpool(self.receiver.handle, body, media, encoding, project)
        await send_answer(send, status, media, payload if not isinstance(payload, str) else payload.encode())


class OtlpMetricsReceiver:
    """OTLP metrics into the samples (through ``log`` when given) and the sketch store.

    ``identity``: resource attribute → identity label pairs (``otlp_names.IDENTITY_ATTRIBUTES``);
    ``exemplar_store``: where points' and spans' exemplars go; ``max_state_series``: series whose delta or
    cumulative state is kept (least recently used forgotten first)."""

    def __init__(
        self,
        writer: SampleWriter,
        sketches: SketchWriter | None = None,
        log: IngestLog | None = None,
        *,
        max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
        max_samples_per_request: int = DEFAULT_MAX_SAMPLES_PER_REQUEST,
        max_series_per_request: int = DEFAULT_MAX_SERIES_PER_REQUEST,
        identity: Iterable[tuple[str, str]] = IDENTITY_ATTRIBUTES,
        exemplar_store: ExemplarStore | None = None,
        max_state_series: int = DEFAULT_MAX_STATE_SERIES,
    ) -> None:
        self.writer = writer
        self.sketch_writer = sketches
        self.log = log
        self.max_decoded_bytes = max_decoded_bytes
        self.admission = Admission(writer.guard, max_samples_per_request, max_series_per_request)
        self.identity = tuple(identity)
        self.exemplar_store = exemplar_store
        self.state = SeriesState(max_state_series)
        self.series_cache = SeriesCache()
        self.skipped: dict[str, int] = {}
        self.started_ns = time.time_ns()
        # One request translates and commits at a time: delta state must see requests in order.
        self._lock = threading.Lock()

    def handle(self, body: bytes, media: str, encoding: str | None, project: str | None) -> Answer:
        """(status, response or error text) for one request body from ``project``'s caller."""
        try:
            request = decode_request(
                body, media, encoding, self.max_decoded_bytes, ExportMetricsServiceRequest
            )
        except BodyTooLargeError as err:
            return 413, str(err)
        except ValueError as err:
            return 400, f"malformed OTLP metrics request: {err}"
        with self._lock:
            return self.accept(request, project)

    def accept(self, request: ExportMetricsServiceRequest, project: str | None) -> Answer:
        door = self.admission
        try:
            result = translate(
                request,
                self.state,
                project=project,
                identity=self.identity,
                max_samples=door.max_samples_per_request,
                started_ns=self.started_ns,
                cache=self.series_cache,
            )
        except OverLimitError as err:
            refusal = count_refusal(err.kind, err.limit)
            door.count(refusal, err.limit + 1)
            return 400, str(refusal)
        except PermissionError as err:
            return 403, str(err)
        except (ValueError, OverflowError) as err:
            return 400, f"malformed OTLP metrics request: {err}"
        columns = result.columns
        if len(columns.labels) > door.max_series_per_request:
            refusal = count_refusal("series", door.max_series_per_request)
            door.count(refusal, len(columns))
            return 400, str(refusal)
        refusal = door.check_columns(columns.labels, columns.index, columns.ts_ms)
        if refusal is not None:
            return 400, str(refusal)
        failed = keep(self.writer, self.sketch_writer, self.log, result.sketches, result.columns)
        if failed is not None:
            return failed
        self.state.commit(result.pending)
        outside = store_exemplars(self.exemplar_store, door, result.exemplars, "otlp metrics")
        if outside:
            result.skipped["exemplar_out_of_bounds"] = outside
        for reason, count in result.skipped.items():
            self.skipped[reason] = self.skipped.get(reason, 0) + count
        return 200, ExportMetricsServiceResponse()


class OtlpTracesReceiver:
    """OTLP spans into per-request observations (``otlp_traces``): sketch rows, the guide's
    histograms and request counts, exemplars. Shares the metrics receiver's writers and door."""

    def __init__(self, metrics: OtlpMetricsReceiver, max_recent_spans: int = 200_000) -> None:
        self.metrics = metrics
        self.recent = RecentIds(max_recent_spans)
        self.ignored_spans = 0
        self.sketch_rows_out_of_bounds = 0
        self._lock = threading.Lock()

    def handle(self, body: bytes, media: str, encoding: str | None, project: str | None) -> Answer:
        m = self.metrics
        try:
            request = decode_request(body, media, encoding, m.max_decoded_bytes, ExportTraceServiceRequest)
        except BodyTooLargeError as err:
            return 413, str(err)
        except ValueError as err:
            return 400, f"malformed OTLP traces request: {err}"
        with self._lock:
            return self.accept(request, project)

    def accept(self, request: ExportTraceServiceRequest, project: str | None) -> Answer:
        m, door = self.metrics, self.metrics.admission
        try:
            result = translate_spans(
                request,
                m.state,
                lambda key: not self.recent.seen(key),
                project=project,
                identity=m.identity,
                max_spans=door.max_samples_per_request,
            )
        except OverLimitError as err:
            refusal = count_refusal(err.kind if err.kind != "spans" else "samples", err.limit)
            door.count(refusal, err.limit + 1)
            return 400, str(refusal)
        except PermissionError as err:
            return 403, str(err)
        except (ValueError, OverflowError) as err:
            return 400, f"malformed OTLP traces request: {err}"
        columns = columns_of([Sample(labels, ts, value) for labels, ts, value in result.samples])
        refusal = door.check_columns(columns.labels, columns.index, columns.ts_ms)
        if refusal is not None:
            return 400, str(refusal)
        # A span's rows are dated by its end, which nothing else checks: one ending where no sample
        # may be is not kept in the sketches (its counts, dated now, are).
        sketches = in_time_window(result.sketches, lambda row: row.window_start_ms, door.guard)
        self.sketch_rows_out_of_bounds += len(result.sketches) - len(sketches)
        failed = keep(m.writer, m.sketch_writer, m.log, sketches, columns)
        if failed is not None:
            return failed
        m.state.commit(result.pending)
        self.recent.remember(result.span_keys)
        # each observation's ids on the bucket it landed in: Grafana links a slow bucket to the trace
        store_exemplars(m.exemplar_store, door, result.exemplars, "otlp traces")
        self.ignored_spans += result.ignored
        return 200, ExportTraceServiceResponse()


def store_exemplars(
    store: ExemplarStore | None, door: Admission, exemplars: list[Exemplar], what: str
) -> int:
    """Write the exemplars whose time the door admits; returns how many it did not. Best-effort, as
    the proxy's: the values are kept already, so a failed write of the ids behind them is logged and
    dropped, and the request stays answered."""
    if store is None or not exemplars:
        return 0
    kept = in_time_window(exemplars, lambda e: e.ts_ms, door.guard)
    try:
        store.write(kept)
    except Exception as err:  # the store's library's errors
        logger.warning("{}: {} exemplar(s) dropped: {}", what, len(kept), err)
    return len(exemplars) - len(kept)


def keep(
    writer: SampleWriter,
    sketch_writer: SketchWriter | None,
    log: IngestLog | None,
    sketches: list[SketchRow],
    columns: Columns,
) -> Answer | None:
    """Store the sketch rows, then log (or store) the samples; an answer where either failed."""
    try:
        if sketches:
            if sketch_writer is None:
                return (
                    400,
                    "exponential histograms and spans need the sketch store, which this receiver has not",
                )
            sketch_writer.write(sketches)
        if len(columns):
            if log is None:
                writer.write_indexed(columns.labels, columns.index, columns.ts_ms, columns.values)
            else:
                log.append(columns)
    except StoreUnavailableError as err:
        return 503, f"store unavailable: {err}"
    except (IngestLogFull, OSError) as err:
        return 503, f"ingest log cannot take the request: {err}"
    except Exception as err:  # the store refused what the door let through: this request only
        if is_retryable(err) or is_transient(err):
            return 503, f"store unavailable: {err}"
        return 400, f"store refused the request: {type(err).__name__}: {err}"
    return None
