"""``POST /api/v1/write``: Prometheus remote write 1.0 (snappy block-compressed protobuf ``WriteRequest``).

Prometheus, vmagent and the OpenTelemetry Collector write here. Answers as Prometheus' own receiver:
204 once the samples are safe — with the server's ingest log (``exporters/ingest_log.py``, what
``infersight server`` runs) once the request is written to that write-ahead log, as Prometheus answers
once samples are in its head and WAL; without one, once they are in the store —; 400 (the sender drops
the request, never retries) for a body that is not what it claims (not snappy, not a ``WriteRequest``,
a Content-Type or Content-Encoding we do not read) and for a request the store would refuse; 413 for
a body over ``max_body_bytes``, or one that decodes to more than ``max_decoded_bytes`` (snappy's
stated length is read first, before anything is allocated; ``request_body``); 503 (the sender
retries) when the samples cannot be kept: without a log while the store is unreachable, with one only
while the log is full (the store has been down long) or its disk fails.

Door checks (``store.admission``): a request holding one sample the store would refuse — a
timestamp outside what its tables hold or outside the guard's window, a label set that is not valid
(not UTF-8, a bad or duplicate label name, no metric name, over the label limits) — is refused whole
with a 400 that names the series and the reason, as Prometheus 2.42 rolls back and answers 400 for an
``out of bounds`` sample. So nothing acknowledged can later fail an insert block that also holds
other clients' samples. A request of more than ``max_samples_per_request`` samples (default
1,000,000) or ``max_series_per_request`` series (250,000) is a 400 too, found while the message is
walked, before its arrays outgrow the cap or a label set is decoded.
Exemplars, histograms and metadata are skipped.
Spec: https://prometheus.io/docs/concepts/remote_write_spec/
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from itertools import chain
from typing import Any

import cramjam
import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from loguru import logger
from starlette.concurrency import run_in_threadpool

from exporters.errors import is_retryable
from exporters.ingest_log import IngestLog, IngestLogFull
from exporters.segments import Columns, tagged
from model.labels import Labels, to_labels
from model.series import Sample
from query.api.ingest import confine
from query.api.remote_metadata import metadata_records
from query.api.request_body import DEFAULT_MAX_DECODED_BYTES, BodyTooLargeError, decode_body
from query.api.series_cache import LabelSetCache
from query.api.tenancy import current_project
from query.api.write_request_scan import OverLimitError, scan_write_request
from query.api.write_request_scan import warm as warm_scan
from store.admission import (
    DEFAULT_MAX_SAMPLES_PER_REQUEST,
    DEFAULT_MAX_SERIES_PER_REQUEST,
    Admission,
    Refusal,
    RefusedSeriesError,
    count_refusal,
    label_refusal,
)
from store.backend import StoreUnavailableError
from store.insert_errors import is_transient
from store.limits import Limits
from store.metadata import MetadataStore
from store.writes import SampleWriter

_F = descriptor_pb2.FieldDescriptorProto


def _message_classes() -> dict[str, Any]:
    """prometheus/prompb ``types.proto`` + ``remote.proto``, the parts we read; label fields as bytes.

    Bytes rather than proto3 ``string`` so that a label which is not UTF-8 reaches our checks instead
    of failing the whole request in the protobuf parser.
    """
    file = descriptor_pb2.FileDescriptorProto(
        name="infersight/prompb.proto", package="prometheus", syntax="proto3"
    )

    def message(name: str, *fields: tuple[str, int, int, int, str]) -> None:
        proto = file.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            field = proto.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = type_name

    one, many = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
    message("Label", ("name", 1, _F.TYPE_BYTES, one, ""), ("value", 2, _F.TYPE_BYTES, one, ""))
    message("Sample", ("value", 1, _F.TYPE_DOUBLE, one, ""), ("timestamp", 2, _F.TYPE_INT64, one, ""))
    message(
        "TimeSeries",
        ("labels", 1, _F.TYPE_MESSAGE, many, ".prometheus.Label"),
        ("samples", 2, _F.TYPE_MESSAGE, many, ".prometheus.Sample"),
    )
    message("WriteRequest", ("timeseries", 1, _F.TYPE_MESSAGE, many, ".prometheus.TimeSeries"))
    # The same wire format read with each Label and Sample left as its encoded bytes (an embedded
    # message is length-delimited like bytes): samples are parsed all at once instead of one object
    # each, and a series' label bytes are the key of a cache of decoded label sets.
    message(
        "RawTimeSeries",
        ("labels", 1, _F.TYPE_BYTES, many, ""),
        ("samples", 2, _F.TYPE_BYTES, many, ""),
    )
    message("RawWriteRequest", ("timeseries", 1, _F.TYPE_MESSAGE, many, ".prometheus.RawTimeSeries"))
    # A series' labels alone.
    message("LabelSection", ("labels", 1, _F.TYPE_MESSAGE, many, ".prometheus.Label"))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    names = (
        "Label",
        "Sample",
        "TimeSeries",
        "WriteRequest",
        "RawWriteRequest",
        "LabelSection",
    )
    return {n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"prometheus.{n}")) for n in names}


MESSAGES = _message_classes()
WriteRequest = MESSAGES["WriteRequest"]
RawWriteRequest = MESSAGES["RawWriteRequest"]
LabelSection = MESSAGES["LabelSection"]
_LABEL_TAG = 0x0A
# With the ingest log, a body this small (about 5,000 samples of known series) is decoded and logged
# on the event loop in about a millisecond: less than handing it to a worker thread and back costs.
# Larger bodies, and every insert into the store, run in a worker thread.
_INLINE_BODY_BYTES = 64 << 10
_PARSE_MAX_BYTES = 256 << 10


@dataclass(frozen=True, slots=True)
class SeriesColumns:
    """A decoded ``WriteRequest``: ``labels[i]`` owns the next ``counts[i]`` of ``ts_ms``/``values``."""

    labels: list[Labels]
    counts: np.ndarray
    ts_ms: np.ndarray
    values: np.ndarray

    def samples(self) -> list[Sample]:
        owners = [
            key for key, count in zip(self.labels, self.counts.tolist(), strict=True) for _ in range(count)
        ]
        return list(map(Sample, owners, self.ts_ms.tolist(), self.values.tolist()))

    def columns(self) -> Columns:
        """The ingest log's form: a label index per sample."""
        index = np.repeat(np.arange(len(self.labels), dtype=np.uint32), self.counts)
        return Columns(self.labels, index, self.ts_ms, self.values)


# The ingest log keeps a remote-write request as its body (segments.tagged): kind and its decoder.
LOG_KIND = 1


def decode_logged(data: memoryview) -> Columns:
    """A logged request's columns (replayed after a restart; it was within the bounds when taken)."""
    return decode_columns(bytes(data), max_decoded_bytes=1 << 32)


LOG_DECODERS = {LOG_KIND: decode_logged}


def decode_write_request_columns(body: bytes) -> SeriesColumns:
    """The series and samples of a snappy-compressed ``WriteRequest``, grouped by series; ValueError
    if it is not one."""
    columns = decode_columns(body)
    order = np.argsort(columns.index, kind="stable")
    counts = np.bincount(columns.index, minlength=len(columns.labels)).astype(np.intp)
    return SeriesColumns(columns.labels, counts, columns.ts_ms[order], columns.values[order])


def decode_columns(
    body: bytes,
    *,
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
    content_encoding: str | None = None,
    label_sets: LabelSetCache | None = None,
    max_series: int | None = None,
    max_samples: int | None = None,
) -> Columns:
    """The samples of a snappy-compressed ``WriteRequest`` with a series index each, in the order of
    each series' samples (series interleaved); ValueError if it is not one (``BodyTooLargeError``
    past ``max_decoded_bytes``; ``RefusedSeriesError`` for a label set ``label_sets``' decoder
    refuses; ``OverLimitError`` past ``max_series`` or ``max_samples``, counted while walking, before
    any label set is decoded). ``content_encoding``: the body's, as its header says (None: snappy)."""
    raw = decode_body(body, content_encoding, max_decoded_bytes)
    label_sets = _label_sets if label_sets is None else label_sets
    scanned = _scan(raw, label_sets, max_series, max_samples)
    if scanned is not None:
        return scanned
    parsed = _parse(raw, label_sets)
    if max_series is not None and len(parsed.labels) > max_series:
        raise OverLimitError("series", max_series)
    if max_samples is not None and len(parsed.ts_ms) > max_samples:
        raise OverLimitError("samples", max_samples)
    return parsed


def _scan(
    raw: bytes, label_sets: LabelSetCache, max_series: int | None, max_samples: int | None
) -> Columns | None:
    """The compiled walk over the message (``write_request_scan``); None: the parser decides."""
    found = scan_write_request(raw, max_series, max_samples)
    if found is None:
        return None
    label_from, label_to, owner, ts, values = found
    try:
        labels = label_sets.resolve(np.frombuffer(raw, np.uint8), label_from, label_to)
    except RefusedSeriesError as err:
        err.samples = len(ts)
        raise
    return Columns(labels, owner.astype(np.uint32), ts, values)


def _parse(raw: bytes, label_sets: LabelSetCache) -> Columns:
    """Any layout (labels between samples, say), through the protobuf parser; its errors are ours.

    Bounded: the parser makes an object per sample and holds the GIL throughout (about 7 µs a
    sample: 400,000 samples took 2.7 s, 4 million 118 s and 1.4 GB), so a message the compiled walk
    cannot read is parsed only up to ``_PARSE_MAX_BYTES`` (at most about 0.9 s). Senders write each
    series' labels first, which the walk reads at any size.
    """
    if len(raw) > _PARSE_MAX_BYTES:
        raise ValueError(
            f"not a WriteRequest the receiver reads at {len(raw)} bytes (malformed, or labels after"
            f" samples; that layout is read up to {_PARSE_MAX_BYTES} bytes)"
        )
    try:
        request = RawWriteRequest.FromString(raw)
        typed = WriteRequest.FromString(raw)
    except DecodeError as err:
        raise ValueError(f"protobuf: {err}") from None
    keys = [b"".join(_label_record(label) for label in ts.labels) for ts in request.timeseries]
    sizes = np.fromiter(map(len, keys), np.int64, len(keys))
    ends = np.cumsum(sizes)
    labels = label_sets.resolve(np.frombuffer(b"".join(keys), np.uint8), ends - sizes, ends)
    samples = [list(ts.samples) for ts in typed.timeseries]
    counts = np.fromiter(map(len, samples), np.intp, len(samples))
    flat = list(chain.from_iterable(samples))
    ts = np.fromiter((sample.timestamp for sample in flat), np.int64, len(flat))
    values = np.fromiter((sample.value for sample in flat), np.float64, len(flat))
    index = np.repeat(np.arange(len(labels), dtype=np.uint32), counts)
    return Columns(labels, index, ts, values)


def _label_record(encoded: bytes) -> bytes:
    """A Label message as its record inside a TimeSeries (the key the scanner uses)."""
    size, head = len(encoded), bytearray()
    while size >= 0x80:
        head.append((size & 0x7F) | 0x80)
        size >>= 7
    return bytes((_LABEL_TAG, *head, size)) + encoded


def _label_pairs(section: bytes) -> list[tuple[str, str]]:
    try:
        pairs = LabelSection.FromString(section).labels
    except DecodeError as err:
        raise ValueError(f"protobuf: {err}") from None
    # surrogateescape keeps undecodable bytes visible to the checks (``store.limits.label_problem``).
    return [
        (p.name.decode("utf-8", "surrogateescape"), p.value.decode("utf-8", "surrogateescape")) for p in pairs
    ]


def _decode_label_section(section: bytes) -> Labels:
    """A series' label set as sent (the writer's guard drops what is not valid)."""
    return to_labels(dict(_label_pairs(section)))


def _decode_checked_label_section(section: bytes, limits: Limits) -> Labels:
    """A series' label set, or ``RefusedSeriesError`` where the door refuses it (``store.admission``):
    checked once per distinct series, when it first enters the endpoint's cache."""
    pairs = _label_pairs(section)
    named = dict(pairs)
    labels = to_labels(named)
    if len(named) != len(pairs):
        seen: set[str] = set()
        twice = next(name for name, _ in pairs if name in seen or seen.add(name))  # type: ignore[func-returns-value]
        detail = f"label name {twice!r} appears more than once"
        raise RefusedSeriesError(Refusal("duplicate_label", tuple(pairs), detail))
    refusal = label_refusal(labels, limits)
    if refusal is not None:
        raise RefusedSeriesError(refusal)
    return labels


# Senders repeat the same series in every request: each one's label set, by its encoded Label records.
# This one decodes without checks (replay, ``decode_write_request``); each endpoint keeps its own
# checked cache with its writer's limits.
_label_sets = LabelSetCache(_decode_label_section)


def decode_write_request(body: bytes) -> list[Sample]:
    """Samples of a snappy-compressed ``WriteRequest``; ValueError if it is not one."""
    return decode_write_request_columns(body).samples()


def encode_write_request(series: list[tuple[dict[str, str], list[tuple[int, float]]]]) -> bytes:
    """A snappy-compressed ``WriteRequest``: (labels, [(ts_ms, value), ...]) per series (tests, bench)."""
    request = WriteRequest()
    for labels, points in series:
        ts = request.timeseries.add()
        for name, value in sorted(labels.items()):
            ts.labels.add(
                name=name.encode("utf-8", "surrogateescape"), value=value.encode("utf-8", "surrogateescape")
            )
        for t, v in points:
            ts.samples.add(timestamp=t, value=v)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


PATH = "/api/v1/write"
_Scope = dict[str, Any]
_Receive = Callable[[], Awaitable[dict[str, Any]]]
_Send = Callable[[dict[str, Any]], Awaitable[None]]


class RemoteWriteEndpoint:
    """The receiver as a bare ASGI app, served at ``PATH`` ahead of the API's router
    (``app.ExactRoutes``): a sender posts many small requests, and FastAPI's routing, request and
    response objects cost about as much per request as decoding 1,000 samples. With ``log`` a request
    is acknowledged once logged (built with ``decoders=LOG_DECODERS``), else once stored.

    ``max_body_bytes`` bounds the body as sent, ``max_decoded_bytes`` as decoded (413 past either);
    ``max_samples_per_request`` and ``max_series_per_request`` what one request may hold (400
    ``too_many_samples``/``too_many_series``, found while walking the message, before its label sets
    are decoded). ``admission`` counts the requests refused at the door per reason.

    ``httpx.ASGITransport(app=RemoteWriteEndpoint(writer))`` serves it alone (tests).
    """

    def __init__(
        self,
        writer: SampleWriter,
        max_body_bytes: int = 64 << 20,
        log: IngestLog | None = None,
        max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
        max_samples_per_request: int = DEFAULT_MAX_SAMPLES_PER_REQUEST,
        max_series_per_request: int = DEFAULT_MAX_SERIES_PER_REQUEST,
        metadata: MetadataStore | None = None,
    ):
        self._writer = writer
        self._metadata = metadata
        # Metadata requests are kept one at a time, off the event loop and off the samples' answer.
        self._metadata_worker = ThreadPoolExecutor(1, thread_name_prefix="remote-write-metadata")
        self._log = log
        self.max_body_bytes = max_body_bytes
        self.max_decoded_bytes = max_decoded_bytes
        self.admission = Admission(writer.guard, max_samples_per_request, max_series_per_request)
        # Label sets checked with this writer's limits as they enter the cache: a request of known
        # series costs no label check at all.
        self._label_sets = LabelSetCache(partial(_decode_checked_label_section, limits=writer.guard.limits))
        warm_scan()
        self._label_sets.warm()

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["method"] != "POST":
            await answer(send, 405, b"method not allowed: remote write takes POST\n", [(b"allow", b"POST")])
            return
        try:
            body = await read_body(scope, receive, self.max_body_bytes)
        except ClientGone:
            return  # nothing to answer, nothing taken
        if body is None:
            await answer(send, 413, f"request body over {self.max_body_bytes} bytes\n".encode())
            return
        headers = headers_of(scope)
        unreadable = _unreadable_content_type(headers.get(b"content-type"))
        if unreadable is not None:
            await answer(send, 400, unreadable.encode())
            return
        encoding = headers.get(b"content-encoding")
        project = current_project()
        if self._log is not None and len(body) <= _INLINE_BODY_BYTES:  # decoded and logged on the loop
            status, text = self.accept(body, project, encoding)
        else:
            status, text = await run_in_threadpool(self.accept, body, project, encoding)
        await answer(send, status, text.encode())

    def accept(
        self, body: bytes, project: str | None, content_encoding: str | None = None
    ) -> tuple[int, str]:
        """(status, text) for a whole request body, from ``project``'s caller (None: any project),
        sent with ``content_encoding`` (None: snappy, as the spec says)."""
        try:
            columns = decode_columns(
                body,
                max_decoded_bytes=self.max_decoded_bytes,
                content_encoding=content_encoding,
                label_sets=self._label_sets,
                max_series=self.admission.max_series_per_request,
                max_samples=self.admission.max_samples_per_request,
            )
        except RefusedSeriesError as err:
            self.admission.count(err.refusal, err.samples)
            return 400, f"{err.refusal}\n"
        except OverLimitError as err:
            refusal = count_refusal(err.kind, err.limit)
            self.admission.count(refusal, err.limit + 1 if err.kind == "samples" else 0)
            return 400, f"{refusal}\n"
        except BodyTooLargeError as err:
            return 413, f"{err}\n"
        except ValueError as err:
            return 400, f"malformed remote write request: {err}\n"
        labels_checked = True
        if project is not None:
            try:  # the ingest API's rule, applied once per series
                confined = confine([Sample(key, 0, 0.0) for key in columns.labels], project)
            except PermissionError as err:
                return 403, f"{err}\n"
            labels = [sample.labels for sample in confined]
            labels_checked = labels == columns.labels  # a label added: checked again below
            columns = Columns(labels, columns.index, columns.ts_ms, columns.values)
        refusal = self.admission.check_columns(
            columns.labels, columns.index, columns.ts_ms, labels_checked=labels_checked
        )
        if refusal is not None:
            return 400, f"{refusal}\n"
        if not len(columns.ts_ms) and self._metadata is not None:
            self._keep_metadata(body, project, content_encoding)
        return self._keep(columns, body if project is None and content_encoding is None else None)

    def _keep_metadata(self, body: bytes, project: str | None, content_encoding: str | None) -> None:
        """The families' TYPE/HELP/UNIT of a request without samples, as Prometheus sends them (a
        metadata request every ``metadata_config.send_interval``), stored in the background: a
        failure loses only metadata, which the sender sends again, and never fails the answer.
        Requests that carry samples are not searched for metadata: that pass would cost every
        request a walk over its series."""

        def keep() -> None:
            try:
                raw = decode_body(body, content_encoding, self.max_decoded_bytes)
                records = metadata_records(raw, project or "", int(time.time() * 1000))
                self._metadata.write(records)  # type: ignore[union-attr]
            except Exception as err:  # best effort, by design: see the docstring
                logger.warning("remote write metadata not kept: {}: {}", type(err).__name__, err)

        self._metadata_worker.submit(keep)

    def _keep(self, columns: Columns, snappy_body: bytes | None) -> tuple[int, str]:
        """Log (or store) an admitted request; ``snappy_body``: the request as sent, the smallest
        record, where its columns are exactly what it decodes to."""
        try:
            if self._log is None:
                self._writer.write_indexed(columns.labels, columns.index, columns.ts_ms, columns.values)
            elif snappy_body is not None:
                self._log.append(columns, tagged(LOG_KIND, len(columns), snappy_body))
            else:  # labels changed by confinement, or another encoding: logged as columns
                self._log.append(columns)
        except StoreUnavailableError as err:
            return 503, f"store unavailable: {err}\n"
        except (IngestLogFull, OSError) as err:
            return 503, f"ingest log cannot take the request: {err}\n"
        except Exception as err:  # the store refused what the door let through: this request only
            if is_retryable(err) or is_transient(err):
                return 503, f"store unavailable: {err}\n"
            return 400, f"store refused the request: {type(err).__name__}: {err}\n"
        return 204, ""


def headers_of(scope: _Scope) -> dict[bytes, str]:
    """The request's headers by lower-case name (the last of a repeated one), values as text."""
    return {name.lower(): value.decode("latin-1") for name, value in scope.get("headers", ())}


# What a remote-write 1.0 body may be labelled (senders send the first; some test clients none).
_CONTENT_TYPES = {"application/x-protobuf", "application/octet-stream", "application/protobuf"}


def _unreadable_content_type(value: str | None) -> str | None:
    """Why a Content-Type is not one we read, or None (absent: as the spec's body)."""
    if value is None or not value.strip():
        return None
    kind, _, params = value.partition(";")
    if kind.strip().lower() not in _CONTENT_TYPES:
        return f"unsupported Content-Type {value!r}: remote write 1.0 takes application/x-protobuf\n"
    proto = next(
        (p.split("=", 1)[1].strip() for p in params.split(";") if p.strip().startswith("proto=")), None
    )
    if proto is not None and proto != "prometheus.WriteRequest":
        return f"unsupported protobuf message {proto!r}: remote write 1.0 takes prometheus.WriteRequest\n"
    return None


class ClientGone(Exception):
    """The client disconnected before its request body was whole."""


async def read_body(scope: _Scope, receive: _Receive, max_body_bytes: int) -> bytes | None:
    """A bare ASGI request's whole body; None past ``max_body_bytes`` (by Content-Length before
    reading); ``ClientGone`` when the client disconnects first."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > max_body_bytes:
            return None
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_body_bytes:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def answer(send: _Send, status: int, body: bytes, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    head = [*headers, (b"content-length", b"%d" % len(body))]
    if body:
        head.append((b"content-type", b"text/plain; charset=utf-8"))
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})
