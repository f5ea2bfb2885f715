"""``POST /api/v1/write``: Prometheus remote write 1.0 (snappy block-compressed protobuf ``WriteRequest``).

Prometheus, vmagent and the OpenTelemetry Collector write here. Answers as Prometheus' own receiver:
204 when stored; 400 (the sender drops the request, never retries) for a body that is not snappy or
not a ``WriteRequest``; 503 (the sender retries) while the store is unreachable. Label bytes that are
not UTF-8 do not fail the request: that series is dropped and counted (``invalid_utf8``) by the
writer's guard like every other bad input (``store.limits``). Exemplars, histograms and metadata are
skipped. Spec: https://prometheus.io/docs/concepts/remote_write_spec/
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from operator import attrgetter
from typing import Any

import cramjam
import numpy as np
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from model.labels import Labels, to_labels
from model.series import Sample
from query.api.ingest import confine
from query.api.tenancy import current_project
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
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    names = ("Label", "Sample", "TimeSeries", "WriteRequest", "RawWriteRequest")
    return {n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"prometheus.{n}")) for n in names}


MESSAGES = _message_classes()
WriteRequest = MESSAGES["WriteRequest"]
RawWriteRequest = MESSAGES["RawWriteRequest"]
SampleMessage = MESSAGES["Sample"]
LabelMessage = MESSAGES["Label"]
_LABELS, _SAMPLES = attrgetter("labels"), attrgetter("samples")
_LABEL_CACHE_SIZE = 50_000
# Encoded labels of a series → its label set. Senders repeat the same series in every request.
_label_sets: dict[tuple[bytes, ...], Labels] = {}


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


def decode_write_request_columns(body: bytes) -> SeriesColumns:
    """The series and samples of a snappy-compressed ``WriteRequest``; ValueError if it is not one."""
    try:
        raw = bytes(cramjam.snappy.decompress_raw(body))
    except Exception as err:  # cramjam raises its own DecompressionError
        raise ValueError(f"snappy: {err}") from None
    try:
        request = RawWriteRequest.FromString(raw)
    except DecodeError as err:
        raise ValueError(f"protobuf: {err}") from None
    # C-level map()s over the series rather than a Python loop: a request may hold thousands.
    series = request.timeseries
    keys = list(map(tuple, map(_LABELS, series)))
    labels = list(map(_label_sets.get, keys))
    if None in labels:
        labels = [
            _decode_labels(key) if label_set is None else label_set
            for label_set, key in zip(labels, keys, strict=True)
        ]
    samples = list(map(_SAMPLES, series))
    counts = np.fromiter(map(len, samples), np.intp, len(samples))
    ts, values = _decode_samples(list(chain.from_iterable(samples)))
    return SeriesColumns(labels, counts, ts, values)


def _decode_labels(encoded: tuple[bytes, ...]) -> Labels:
    try:
        pairs = [LabelMessage.FromString(label) for label in encoded]
    except DecodeError as err:
        raise ValueError(f"protobuf: {err}") from None
    # surrogateescape keeps undecodable bytes visible to the guard, which drops and counts them.
    label_set = to_labels(
        {p.name.decode("utf-8", "surrogateescape"): p.value.decode("utf-8", "surrogateescape") for p in pairs}
    )
    if len(_label_sets) >= _LABEL_CACHE_SIZE:
        _label_sets.clear()
    _label_sets[encoded] = label_set
    return label_set


def decode_write_request(body: bytes) -> list[Sample]:
    """Samples of a snappy-compressed ``WriteRequest``; ValueError if it is not one."""
    return decode_write_request_columns(body).samples()


def _decode_samples(encoded: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """(timestamps, values) of encoded ``Sample`` messages, vectorised for the layouts senders write:
    ``value`` (tag 0x09, 8 bytes) then ``timestamp`` (tag 0x10, varint), either left out when zero
    (proto3). Messages of one length are decoded together as the rows of a byte matrix; any other
    layout goes through the protobuf parser, one message at a time."""
    n = len(encoded)
    lengths = np.fromiter(map(len, encoded), np.intp, n)
    data = np.frombuffer(b"".join(encoded), np.uint8)
    starts = np.cumsum(lengths) - lengths
    ts = np.zeros(n, np.int64)
    values = np.zeros(n, np.float64)
    done = lengths == 0  # an empty message: both zero
    for length in np.unique(lengths).tolist():
        if length == 0:
            continue
        rows = np.flatnonzero(lengths == length)
        matrix = data[starts[rows][:, None] + np.arange(length)] if len(rows) < n else data.reshape(n, length)
        # value then timestamp, value only, timestamp only
        for value_at, ts_at in ((0, 9), (0, None), (None, 0)):
            size = (9 if value_at is not None else 0) + (length - ts_at if ts_at is not None else 0)
            if size != length or (ts_at is not None and not 2 <= length - ts_at <= 11):
                continue
            ok = ~done[rows]
            if value_at is not None:
                ok &= matrix[:, value_at] == 0x09
            if ts_at is not None:
                ok &= matrix[:, ts_at] == 0x10
                stamp = np.zeros(len(rows), np.uint64)
                last = length - 1
                for shift, column in enumerate(range(ts_at + 1, length)):
                    byte = matrix[:, column]
                    ok &= (byte >= 0x80) if column < last else (byte < 0x80)
                    stamp |= (byte & 0x7F).astype(np.uint64) << np.uint64(7 * shift)
            if not ok.any():
                continue
            hit = rows[ok]
            if value_at is not None:
                values[hit] = matrix[ok, value_at + 1 : value_at + 9].copy().view("<f8").ravel()
            if ts_at is not None:
                ts[hit] = stamp[ok].view(np.int64)
            done[hit] = True
    for i in np.flatnonzero(~done).tolist():  # anything unusual: the protobuf parser decides
        try:
            message = SampleMessage.FromString(encoded[i])
        except DecodeError as err:
            raise ValueError(f"protobuf: {err}") from None
        ts[i], values[i] = message.timestamp, message.value
    return ts, values


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


def build_remote_write_router(writer: SampleWriter, max_body_bytes: int = 64 << 20) -> APIRouter:
    """The receiver; include it in the API app (``app.include_router(...)``)."""
    router = APIRouter(prefix="/api/v1")

    @router.post("/write")
    async def remote_write(request: Request) -> Response:
        body = await request.body()
        if len(body) > max_body_bytes:
            return Response(f"request body over {max_body_bytes} bytes\n", status_code=413)
        try:
            columns = await run_in_threadpool(decode_write_request_columns, body)
        except ValueError as err:
            return Response(f"malformed remote write request: {err}\n", status_code=400)
        labels = columns.labels
        project = current_project()
        if project is not None:
            try:  # the ingest API's rule, applied once per series
                confined = confine([Sample(key, 0, 0.0) for key in labels], project)
                labels = [sample.labels for sample in confined]
            except PermissionError as err:
                return Response(f"{err}\n", status_code=403)
        try:
            await run_in_threadpool(
                writer.write_columns, labels, columns.counts, columns.ts_ms, columns.values
            )
        except StoreUnavailableError as err:
            return Response(f"store unavailable: {err}\n", status_code=503)
        return Response(status_code=204)

    return router
