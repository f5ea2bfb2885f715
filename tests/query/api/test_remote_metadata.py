"""Remote write's ``metadata`` (WriteRequest field 3) read into metadata records."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from model.metadata import FamilyMetadata
from query.api.remote_metadata import metadata_records


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _metadata(kind: int, name: str, help_: str = "", unit: str = "") -> bytes:
    body = _varint(1 << 3) + _varint(kind) + _field(2, name.encode()) + _field(4, help_.encode())
    return _field(3, body + (_field(5, unit.encode()) if unit else b""))


SERIES = _field(1, _field(1, _field(1, b"__name__") + _field(2, b"up")) + _field(2, b"\x09" + b"\0" * 8))


def test_metadata_of_a_write_request() -> None:
    body = (
        SERIES + _metadata(1, "req_total", "Requests.") + _metadata(3, "lat_seconds", "Latency.", "seconds")
    )
    body += _metadata(2, "bad name!", "skipped") + _metadata(99, "odd", "type unknown to us") + SERIES
    records = metadata_records(body, "p1", 5)
    assert [r.family for r in records] == [
        FamilyMetadata("req_total", "counter", "Requests.", ""),
        FamilyMetadata("lat_seconds", "histogram", "Latency.", "seconds"),
        FamilyMetadata("odd", "unknown", "type unknown to us", ""),
    ]
    assert {(r.project_id, r.source, r.ts_ms) for r in records} == {("p1", "remote_write", 5)}


def test_a_truncated_body_gives_what_came_before() -> None:
    body = _metadata(2, "a", "A") + _metadata(2, "b", "B")
    assert [r.family.metric for r in metadata_records(body[:-3], "p", 0)] == ["a"]


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=400))
def test_any_bytes_give_valid_records_or_none(body: bytes) -> None:
    for record in metadata_records(body, "p", 0):
        record.validate()
