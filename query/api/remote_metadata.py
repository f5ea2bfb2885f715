"""The ``metadata`` of a remote-write 1.0 ``WriteRequest`` (field 3), as metadata records to keep.

Prometheus (and agents such as Grafana Alloy) send each family's type, help and unit in the same
request as the samples, every minute by default. Reading them costs one pass over the top-level
fields of the already-decompressed body: each time series (field 1) is skipped by its length.

``MetricMetadata{1: enum type, 2: string metric_family_name, 4: string help, 5: string unit}``;
the type numbers are ``prompb.MetricMetadata_MetricType``. A sender has no target in our sense: its
records are kept under ``source="remote_write"``, in the caller's project. A malformed body gives
what was read before the damage (the samples' own decoder decides whether the request is refused);
a record whose name is not a metric name is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator

from model.metadata import FamilyMetadata, MetadataError, MetadataRecord

SOURCE = "remote_write"
MAX_RECORDS = 10_000
_TYPES = ("unknown", "counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset")


class _Truncated(ValueError):
    pass


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise _Truncated
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> Iterator[tuple[int, int, int]]:
    """The fields of one message, lazily: (field number, varint value or start, end) — a
    length-delimited field's bytes are ``data[start:end]``, not copied unless wanted."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, value, -1
        elif wire == 2:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise _Truncated
            yield number, pos, pos + size
            pos += size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
            if pos > len(data):
                raise _Truncated
        else:
            raise _Truncated


def _family(data: bytes) -> FamilyMetadata:
    kind, text = 0, {2: "", 4: "", 5: ""}
    for number, value, end in _fields(data):
        if number == 1 and end < 0:
            kind = value
        elif number in text and end >= 0:
            text[number] = data[value:end].decode("utf-8", "replace")
    type_ = _TYPES[kind] if 0 <= kind < len(_TYPES) else "unknown"
    return FamilyMetadata.bounded(text[2], type_, text[4], text[5])


def metadata_records(body: bytes, project_id: str, ts_ms: int) -> list[MetadataRecord]:
    """The metadata records of a decompressed ``WriteRequest`` body, for ``MetadataStore.write``."""
    records: list[MetadataRecord] = []
    try:
        for number, start, end in _fields(body):
            if number != 3 or end < 0:
                continue
            record = MetadataRecord(_family(body[start:end]), project_id, "", "", SOURCE, ts_ms)
            try:
                record.validate()
            except MetadataError:
                continue
            records.append(record)
            if len(records) >= MAX_RECORDS:
                break
    except _Truncated:
        pass
    return records
