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

from dataclasses import dataclass
from itertools import chain
from operator import attrgetter, getitem
from typing import Any

import cramjam
import numpy as np
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from exporters.ingest_log import IngestLog, IngestLogFull
from exporters.segments import Columns, tagged
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
    # Each series as its encoded bytes (the scanner reads them with numpy); a series' labels alone.
    message("SplitWriteRequest", ("timeseries", 1, _F.TYPE_BYTES, many, ""))
    message("LabelSection", ("labels", 1, _F.TYPE_MESSAGE, many, ".prometheus.Label"))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    names = (
        "Label",
        "Sample",
        "TimeSeries",
        "WriteRequest",
        "RawWriteRequest",
        "SplitWriteRequest",
        "LabelSection",
    )
    return {n: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"prometheus.{n}")) for n in names}


MESSAGES = _message_classes()
WriteRequest = MESSAGES["WriteRequest"]
RawWriteRequest = MESSAGES["RawWriteRequest"]
SplitWriteRequest = MESSAGES["SplitWriteRequest"]
LabelSection = MESSAGES["LabelSection"]
SampleMessage = MESSAGES["Sample"]
LabelMessage = MESSAGES["Label"]
_LABELS, _SAMPLES = attrgetter("labels"), attrgetter("samples")
_LABEL_CACHE_SIZE = 50_000
# A series' encoded labels (its Label records, end to end) → its label set. Senders repeat the same
# series in every request.
_label_sets: dict[bytes, Labels] = {}
# Series longer than this (about 450 samples) take the protobuf parser: the scanner below steps
# through every series' records together, one step per record of the longest series.
_SCAN_MAX_SERIES_BYTES = 8192
_LABEL_TAG, _SAMPLE_TAG = 0x0A, 0x12
_PAD = 16  # spare zero bytes after the data scanned: a header or a word read past the end
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
    try:
        series = SplitWriteRequest.FromString(raw).timeseries
    except DecodeError as err:
        raise ValueError(f"protobuf: {err}") from None
    scanned = _scan(series)
    return scanned if scanned is not None else _parse(raw)


def _scan(series: list[bytes]) -> Columns | None:
    """The usual layout, read with numpy: each series' Label records (lengths of one or two varint
    bytes), then its Sample records (one-byte lengths). All series are stepped through at once, one
    record of each per step. None for anything else (other fields, a label after a sample, a record
    past its series' end, long series): the protobuf parser decides those."""
    n = len(series)
    lengths = np.fromiter(map(len, series), np.intp, n)
    if n == 0:
        return Columns([], np.zeros(0, np.uint32), np.zeros(0, np.int64), np.zeros(0, np.float64))
    if int(lengths.max()) > _SCAN_MAX_SERIES_BYTES:
        return None
    data = np.frombuffer(b"".join(series) + bytes(_PAD), np.uint8)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    labels_end = _skip_labels(data, starts, ends)
    if labels_end is None:
        return None
    ids = np.flatnonzero(labels_end < ends)
    pos, end = labels_end[ids], ends[ids]
    owners, at, sizes, tags = [], [], [], []
    overshoot = False
    while len(ids):  # one Sample record of every series that has one left
        size = data[pos + 1].astype(np.intp)
        tags.append(data[pos])
        owners.append(ids)
        at.append(pos + 2)
        sizes.append(size)
        pos = pos + 2 + size
        more = pos < end
        if not more.all():
            overshoot = overshoot or bool((pos > end).any())
            ids, pos, end = ids[more], pos[more], end[more]
    keys = list(map(getitem, series, map(slice, (labels_end - starts).tolist())))
    label_sets = list(map(_label_sets.get, keys))
    if not owners:
        return _with_labels(label_sets, keys, None)
    size_all = np.concatenate(sizes)
    if overshoot or (np.concatenate(tags) != _SAMPLE_TAG).any() or int(size_all.max()) >= 0x80:
        return None
    ts, values = _decode_samples(data, np.concatenate(at), size_all)
    return _with_labels(label_sets, keys, (np.concatenate(owners).astype(np.uint32), ts, values))


def _skip_labels(data: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray | None:
    """Where each series' first non-Label record starts (its end if none), stepping through the
    Label records of every series at once; None for a length of three varint bytes or past the end."""
    pos = starts.copy()
    ids = np.flatnonzero(starts < ends)
    p, end = pos[ids], ends[ids]
    while len(ids):
        label = data[p] == _LABEL_TAG
        if not label.all():  # series at their first Sample record are done
            pos[ids[~label]] = p[~label]
            ids, p, end = ids[label], p[label], end[label]
            if not len(ids):
                break
        size = data[p + 1].astype(np.intp)
        if int(size.max()) >= 0x80:  # a two-byte length (a long label)
            high = data[p + 2].astype(np.intp)
            long = size >= 0x80
            if (long & (high >= 0x80)).any():
                return None
            p = p + np.where(long, 3 + ((size & 0x7F) | (high << 7)), 2 + size)
        else:
            p = p + 2 + size
        more = p < end
        if not more.all():
            if (p > end).any():
                return None
            pos[ids[~more]] = p[~more]
            ids, p, end = ids[more], p[more], end[more]
    return pos


def _with_labels(
    label_sets: list[Labels | None],
    keys: list[bytes],
    samples: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
) -> Columns:
    """Columns with every series' label set, decoding those the cache does not hold."""
    if None in label_sets:
        label_sets = [
            _decode_label_section(key) if found is None else found
            for found, key in zip(label_sets, keys, strict=True)
        ]
    if samples is None:
        samples = (np.zeros(0, np.uint32), np.zeros(0, np.int64), np.zeros(0, np.float64))
    return Columns(label_sets, *samples)  # type: ignore[arg-type]


def _parse(raw: bytes) -> Columns:
    """Any layout, through the protobuf parser (each Sample as its encoded bytes)."""
    try:
        request = RawWriteRequest.FromString(raw)
    except DecodeError as err:
        raise ValueError(f"protobuf: {err}") from None
    series = request.timeseries
    keys = [b"".join(_label_record(label) for label in ts.labels) for ts in series]
    labels = list(map(_label_sets.get, keys))
    if None in labels:
        labels = [
            _decode_label_section(key) if label_set is None else label_set
            for label_set, key in zip(labels, keys, strict=True)
        ]
    samples = list(map(_SAMPLES, series))
    counts = np.fromiter(map(len, samples), np.intp, len(samples))
    encoded = list(chain.from_iterable(samples))
    sizes = np.fromiter(map(len, encoded), np.intp, len(encoded))
    data = np.frombuffer(b"".join(encoded) + bytes(_PAD), np.uint8)
    ts, values = _decode_samples(data, np.cumsum(sizes) - sizes, sizes)
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
    label_set = to_labels(
        {p.name.decode("utf-8", "surrogateescape"): p.value.decode("utf-8", "surrogateescape") for p in pairs}
    )
    if len(_label_sets) >= _LABEL_CACHE_SIZE:
        _label_sets.clear()
    _label_sets[section] = label_set
    return label_set


def decode_write_request(body: bytes) -> list[Sample]:
    """Samples of a snappy-compressed ``WriteRequest``; ValueError if it is not one."""
    return decode_write_request_columns(body).samples()


def _decode_samples(
    data: np.ndarray, starts: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(timestamps, values) of the encoded ``Sample`` messages at ``data[starts[i]:][:lengths[i]]``,
    vectorised for the layouts senders write: ``value`` (tag 0x09, 8 bytes) then ``timestamp`` (tag
    0x10, varint), either left out when zero (proto3). Messages of one length are decoded together as
    the rows of a byte matrix; any other layout goes through the protobuf parser, one at a time."""
    n = len(lengths)
    ts = np.zeros(n, np.int64)
    values = np.zeros(n, np.float64)
    done = lengths == 0  # an empty message: both zero
    distinct = np.flatnonzero(np.bincount(lengths)).tolist() if n else []
    _decode_sample_words(data, starts, lengths, distinct, ts, values, done)
    for length in distinct:
        if length == 0:
            continue
        rows = np.flatnonzero((lengths == length) & ~done)
        if not len(rows):
            continue
        matrix = data[starts[rows][:, None] + np.arange(length)]
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
        start = int(starts[i])
        try:
            message = SampleMessage.FromString(data[start : start + int(lengths[i])].tobytes())
        except DecodeError as err:
            raise ValueError(f"protobuf: {err}") from None
        ts[i], values[i] = message.timestamp, message.value
    return ts, values


def _decode_sample_words(
    data: np.ndarray,
    starts: np.ndarray,
    lengths: np.ndarray,
    distinct: list[int],
    ts: np.ndarray,
    values: np.ndarray,
    done: np.ndarray,
) -> None:
    """``_decode_samples``' usual messages, each field read as one unaligned 8-byte word: a value, a
    timestamp varint of up to 8 bytes (since 2004 a millisecond timestamp takes 6), or both. Fills
    ``ts``/``values`` and marks ``done``; needs ``_PAD`` readable bytes after the last message."""
    words = np.ndarray((len(data) - 7,), "<u8", data, 0, (1,))
    for length in distinct:
        # (value at, timestamp tag at, timestamp varint bytes) of the layouts this length can be
        layouts = [(0, 9, length - 10)] if 11 <= length <= 18 else []
        if length == 9:
            layouts.append((0, None, 0))
        if 2 <= length <= 9:
            layouts.append((None, 0, length - 1))
        if not layouts:
            continue
        rows = np.flatnonzero(lengths == length)
        at = starts[rows]
        for value_at, ts_at, k in layouts:
            ok = ~done[rows]
            if value_at is not None:
                ok &= data[at + value_at] == 0x09
            if ts_at is not None:
                ok &= data[at + ts_at] == 0x10
                word = words[at + ts_at + 1]
                more = sum(0x80 << (8 * i) for i in range(k - 1))  # continuation bits, then none
                ok &= (word & np.uint64(more | 0x80 << (8 * (k - 1)))) == np.uint64(more)
            if not ok.any():
                continue
            hit = rows[ok]
            if value_at is not None:
                values[hit] = words[at[ok] + value_at + 1].view(np.float64)
            if ts_at is not None:
                word = word[ok]
                stamp = word & np.uint64(0x7F)
                for i in range(1, k):
                    stamp |= (word >> np.uint64(i)) & np.uint64(0x7F << (7 * i))
                ts[hit] = stamp.view(np.int64)
            done[hit] = True


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


def build_remote_write_router(
    writer: SampleWriter, max_body_bytes: int = 64 << 20, log: IngestLog | None = None
) -> APIRouter:
    """The receiver; include it in the API app (``app.include_router(...)``). With ``log`` a request
    is acknowledged once logged (built with ``decoders=LOG_DECODERS``), else once stored."""
    router = APIRouter(prefix="/api/v1")

    def accept(body: bytes, project: str | None) -> Response:
        try:
            columns = decode_columns(body)
        except ValueError as err:
            return Response(f"malformed remote write request: {err}\n", status_code=400)
        if project is not None:
            try:  # the ingest API's rule, applied once per series
                confined = confine([Sample(key, 0, 0.0) for key in columns.labels], project)
            except PermissionError as err:
                return Response(f"{err}\n", status_code=403)
            labels = [sample.labels for sample in confined]
            columns = Columns(labels, columns.index, columns.ts_ms, columns.values)
        try:
            if log is None:
                writer.write_indexed(columns.labels, columns.index, columns.ts_ms, columns.values)
            elif project is None:  # the body as it came: the smallest record, nothing to encode
                log.append(columns, tagged(LOG_KIND, len(columns), body))
            else:  # labels changed by confinement: logged as columns
                log.append(columns)
        except StoreUnavailableError as err:
            return Response(f"store unavailable: {err}\n", status_code=503)
        except (IngestLogFull, OSError) as err:
            return Response(f"ingest log cannot take the request: {err}\n", status_code=503)
        return Response(status_code=204)

    @router.post("/write")
    async def remote_write(request: Request) -> Response:
        body = await request.body()
        if len(body) > max_body_bytes:
            return Response(f"request body over {max_body_bytes} bytes\n", status_code=413)
        if log is not None and len(body) <= _INLINE_BODY_BYTES:  # decoded and logged in about 1 ms
            return accept(body, current_project())
        return await run_in_threadpool(accept, body, current_project())

    return router
