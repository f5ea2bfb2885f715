"""``POST /api/v1/write``: Prometheus remote write 1.0 (snappy block-compressed protobuf ``WriteRequest``).

Prometheus, vmagent and the OpenTelemetry Collector write here. Answers as Prometheus' own receiver:
204 once the samples are safe — with the server's ingest log (``exporters/ingest_log.py``, what
``infersight server`` runs) once the request is written to that write-ahead log, as Prometheus answers
once samples are in its head and WAL; without one, once they are in the store —; 400 (the sender drops
the request, never retries) for a body that is not snappy or not a ``WriteRequest``; 503 (the sender
retries) when the samples cannot be kept: without a log while the store is unreachable, with one only
while the log is full (the store has been down long) or its disk fails. Label bytes that are
not UTF-8 do not fail the request: that series is dropped and counted (``invalid_utf8``) by the
writer's guard like every other bad input (``store.limits``). Exemplars, histograms and metadata are
skipped. Spec: https://prometheus.io/docs/concepts/remote_write_spec/
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

import cramjam
import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from starlette.concurrency import run_in_threadpool

from exporters.ingest_log import IngestLog, IngestLogFull
from exporters.segments import Columns, tagged
from model.labels import Labels, to_labels
from model.series import Sample
from query.api.ingest import confine
from query.api.series_cache import LabelSetCache
from query.api.tenancy import current_project
from query.api.write_request_scan import scan_write_request
from query.api.write_request_scan import warm as warm_scan
from store.backend import StoreUnavailableError
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
    """A logged request's columns (replayed after a restart)."""
    return decode_columns(bytes(data))


LOG_DECODERS = {LOG_KIND: decode_logged}


def decode_write_request_columns(body: bytes) -> SeriesColumns:
    """The series and samples of a snappy-compressed ``WriteRequest``, grouped by series; ValueError
    if it is not one."""
    columns = decode_columns(body)
    order = np.argsort(columns.index, kind="stable")
    counts = np.bincount(columns.index, minlength=len(columns.labels)).astype(np.intp)
    return SeriesColumns(columns.labels, counts, columns.ts_ms[order], columns.values[order])


def decode_columns(body: bytes) -> Columns:
    """The samples of a snappy-compressed ``WriteRequest`` with a series index each, in the order of
    each series' samples (series interleaved); ValueError if it is not one."""
    try:
        raw = bytes(cramjam.snappy.decompress_raw(body))
    except Exception as err:  # cramjam raises its own DecompressionError
        raise ValueError(f"snappy: {err}") from None
    scanned = _scan(raw)
    return scanned if scanned is not None else _parse(raw)


def _scan(raw: bytes) -> Columns | None:
    """The compiled walk over the message (``write_request_scan``); None: the parser decides."""
    found = scan_write_request(raw)
    if found is None:
        return None
    label_from, label_to, owner, ts, values = found
    labels = _label_sets.resolve(np.frombuffer(raw, np.uint8), label_from, label_to)
    return Columns(labels, owner.astype(np.uint32), ts, values)


def _parse(raw: bytes) -> Columns:
    """Any layout (labels between samples, say), through the protobuf parser; its errors are ours."""
    try:
        request = RawWriteRequest.FromString(raw)
        typed = WriteRequest.FromString(raw)
    except DecodeError as err:
        raise ValueError(f"protobuf: {err}") from None
    keys = [b"".join(_label_record(label) for label in ts.labels) for ts in request.timeseries]
    sizes = np.fromiter(map(len, keys), np.int64, len(keys))
    ends = np.cumsum(sizes)
    labels = _label_sets.resolve(np.frombuffer(b"".join(keys), np.uint8), ends - sizes, ends)
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


def _decode_label_section(section: bytes) -> Labels:
    try:
        pairs = LabelSection.FromString(section).labels
    except DecodeError as err:
        raise ValueError(f"protobuf: {err}") from None
    # surrogateescape keeps undecodable bytes visible to the guard, which drops and counts them.
    return to_labels(
        {p.name.decode("utf-8", "surrogateescape"): p.value.decode("utf-8", "surrogateescape") for p in pairs}
    )


# Senders repeat the same series in every request: each one's label set, by its encoded Label records.
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

    ``httpx.ASGITransport(app=RemoteWriteEndpoint(writer))`` serves it alone (tests).
    """

    def __init__(self, writer: SampleWriter, max_body_bytes: int = 64 << 20, log: IngestLog | None = None):
        self._writer = writer
        self._log = log
        self.max_body_bytes = max_body_bytes
        warm_scan()
        _label_sets.warm()

    async def __call__(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["method"] != "POST":
            await _answer(send, 405, b"method not allowed: remote write takes POST\n", [(b"allow", b"POST")])
            return
        try:
            body = await self._body(scope, receive)
        except _ClientGone:
            return  # nothing to answer, nothing taken
        if body is None:
            await _answer(send, 413, f"request body over {self.max_body_bytes} bytes\n".encode())
            return
        project = current_project()
        if self._log is not None and len(body) <= _INLINE_BODY_BYTES:  # decoded and logged on the loop
            status, text = self.accept(body, project)
        else:
            status, text = await run_in_threadpool(self.accept, body, project)
        await _answer(send, status, text.encode())

    async def _body(self, scope: _Scope, receive: _Receive) -> bytes | None:
        """The whole body; None past ``max_body_bytes`` (by Content-Length before reading);
        ``_ClientGone`` when the client disconnects first."""
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body_bytes:
                return None
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def accept(self, body: bytes, project: str | None) -> tuple[int, str]:
        """(status, text) for a whole request body, from ``project``'s caller (None: any project)."""
        try:
            columns = decode_columns(body)
        except ValueError as err:
            return 400, f"malformed remote write request: {err}\n"
        if project is not None:
            try:  # the ingest API's rule, applied once per series
                confined = confine([Sample(key, 0, 0.0) for key in columns.labels], project)
            except PermissionError as err:
                return 403, f"{err}\n"
            labels = [sample.labels for sample in confined]
            columns = Columns(labels, columns.index, columns.ts_ms, columns.values)
        try:
            if self._log is None:
                self._writer.write_indexed(columns.labels, columns.index, columns.ts_ms, columns.values)
            elif project is None:  # the body as it came: the smallest record, nothing to encode
                self._log.append(columns, tagged(LOG_KIND, len(columns), body))
            else:  # labels changed by confinement: logged as columns
                self._log.append(columns)
        except StoreUnavailableError as err:
            return 503, f"store unavailable: {err}\n"
        except (IngestLogFull, OSError) as err:
            return 503, f"ingest log cannot take the request: {err}\n"
        return 204, ""


class _ClientGone(Exception):
    """The client disconnected before its request body was whole."""


async def _answer(send: _Send, status: int, body: bytes, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
    head = [*headers, (b"content-length", b"%d" % len(body))]
    if body:
        head.append((b"content-type", b"text/plain; charset=utf-8"))
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})
