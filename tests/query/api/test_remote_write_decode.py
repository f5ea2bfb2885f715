"""The vectorised remote-write decoder reads exactly what the protobuf parser reads, whatever the
layout of each encoded Sample; and the receiver stores through the columnar writer."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import cramjam
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.labels import to_labels
from query.api.remote_write import (
    MESSAGES,
    decode_write_request,
    decode_write_request_columns,
    encode_write_request,
)
from store.open import open_store
from store.writes import SampleWriter

WriteRequest = MESSAGES["WriteRequest"]
T0 = 1_764_000_000_000


def _reference(body: bytes) -> list[tuple[tuple[tuple[str, str], ...], int, int]]:
    """(labels, timestamp, value bits) per sample, as the protobuf parser reads them."""
    request = WriteRequest.FromString(bytes(cramjam.snappy.decompress_raw(body)))
    out = []
    for series in request.timeseries:
        labels = to_labels({label.name.decode(): label.value.decode() for label in series.labels})
        out.extend((labels, p.timestamp, _bits(p.value)) for p in series.samples)
    return out


def _bits(value: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", value))[0]


def _ours(body: bytes) -> list[tuple[tuple[tuple[str, str], ...], int, int]]:
    columns = decode_write_request_columns(body)
    owners = [key for key, n in zip(columns.labels, columns.counts.tolist(), strict=True) for _ in range(n)]
    values = columns.values.view(np.uint64).tolist()
    return list(zip(owners, columns.ts_ms.tolist(), values, strict=True))


_values = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1.0, math.nan, 2.0**-1074]),
    st.integers(0, 10**6).map(float),
)
_timestamps = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, 1, 127, 128, -1, T0, 2**63 - 1, -(2**63)]),
    st.integers(T0, T0 + 10**9),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.tuples(_timestamps, _values), max_size=12), min_size=1, max_size=6))
def test_decoder_matches_the_protobuf_parser(series: list[list[tuple[int, float]]]) -> None:
    body = encode_write_request([({"__name__": "m", "i": str(i)}, pts) for i, pts in enumerate(series)])
    assert _ours(body) == _reference(body)


def _body(*encoded_samples: bytes) -> bytes:
    """A WriteRequest with one series whose Samples are the given encoded messages."""
    label = b"\x0a\x08__name__\x12\x01m"
    series = b"\x0a" + bytes([len(label)]) + label
    for sample in encoded_samples:
        series += b"\x12" + bytes([len(sample)]) + sample
    request = b"\x0a" + _varint(len(series)) + series
    return bytes(cramjam.snappy.compress_raw(request))


def _varint(n: int) -> bytes:
    out = b""
    n &= (1 << 64) - 1
    while True:
        byte, n = n & 0x7F, n >> 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


def _value(v: float) -> bytes:
    return b"\x09" + struct.pack("<d", v)


def _ts(t: int) -> bytes:
    return b"\x10" + _varint(t)


@pytest.mark.parametrize(
    "encoded",
    [
        _ts(T0) + _value(2.5),  # timestamp before value
        _value(1.0) + _value(2.5) + _ts(T0),  # a repeated field: the last wins
        _value(2.5) + _ts(5) + _ts(T0),
        _value(2.5) + _ts(T0) + b"\x18\x07",  # an unknown field after the known ones
        b"\x18\x07" + _value(2.5) + _ts(T0),  # and before them
        _value(2.5) + b"\x10\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00",  # an over-long varint for 0
        _value(2.5) + b"\x10\x81\x00",  # a padded varint for 1
        b"",
        _value(0.0),
        _ts(-1),
    ],
)
def test_unusual_layouts_decode_as_the_protobuf_parser(encoded: bytes) -> None:
    body = _body(_value(1.0) + _ts(T0), encoded, _ts(T0 + 1))
    assert _ours(body) == _reference(body)


@pytest.mark.parametrize("encoded", [_value(1.0)[:5], b"\x10", b"\x10\x80", b"\x09" + bytes(7) + b"\x10\x01"])
def test_a_broken_sample_is_a_value_error(encoded: bytes) -> None:
    with pytest.raises(ValueError, match="protobuf"):
        decode_write_request_columns(_body(_value(1.0) + _ts(T0), encoded))


def test_samples_view_keeps_the_old_interface() -> None:
    body = encode_write_request([({"__name__": "m", "a": "1"}, [(T0, 1.0), (T0 + 1, 2.0)])])
    samples = decode_write_request(body)
    assert [(s.labels, s.ts_ms, s.value) for s in samples] == [
        (to_labels({"__name__": "m", "a": "1"}), T0, 1.0),
        (to_labels({"__name__": "m", "a": "1"}), T0 + 1, 2.0),
    ]


def test_columns_write_like_samples(tmp_path: Path) -> None:
    body = encode_write_request(
        [({"__name__": "m", "a": str(i % 3)}, [(T0 + k, float(i * k)) for k in range(5)]) for i in range(6)]
    )
    stores = [open_store(f"chdb://{tmp_path / 'data'}", database) for database in ("rows", "columns")]
    try:
        rows, columns = (SampleWriter(store.backend) for store in stores)
        rows.write(decode_write_request(body))
        decoded = decode_write_request_columns(body)
        columns.write_columns(decoded.labels, decoded.counts, decoded.ts_ms, decoded.values)
        read = [
            store.backend.query(
                f"SELECT metric_name, fingerprint, ts_ms, value FROM {store.backend.database}.samples FINAL "
                "ORDER BY fingerprint, ts_ms"
            ).to_pylist()
            for store in stores
        ]
        assert read[0] == read[1]
        assert len(read[0]) == 15  # 3 series of 5 points; later series overwrite earlier ones' points
    finally:
        for store in stores:
            store.close()


def _record(field: int, payload: bytes) -> bytes:
    return bytes([field << 3 | 2]) + _varint(len(payload)) + payload


_LABEL_A = _record(1, _record(1, b"__name__") + _record(2, b"m"))
_LABEL_B = _record(1, _record(1, b"b") + _record(2, b"2"))
_SAMPLE_1 = _record(2, _value(1.5) + _ts(T0))
_SAMPLE_2 = _record(2, _value(2.5) + _ts(T0 + 1))


@pytest.mark.parametrize(
    "series",
    [
        _LABEL_A + _LABEL_B + _SAMPLE_1 + _SAMPLE_2,
        _LABEL_A + _SAMPLE_1 + _LABEL_B + _SAMPLE_2,  # a label after a sample: the parser decides
        _SAMPLE_1 + _LABEL_A + _LABEL_B,  # labels after the samples
        _LABEL_A + _LABEL_B + _record(3, b"\x0a\x00") + _SAMPLE_1,  # an exemplar: skipped
        _LABEL_A + _record(4, b"\x08\x01") + _SAMPLE_2,  # a native histogram: skipped
        _LABEL_A + b"\x28\x07" + _SAMPLE_1,  # an unknown varint field
        b"",  # no labels, no samples
    ],
)
def test_series_layouts_decode_as_the_protobuf_parser(series: bytes) -> None:
    metadata = _record(3, _record(2, b"m"))  # WriteRequest.metadata: skipped
    request = metadata + _record(1, series) + _record(1, _LABEL_A + _SAMPLE_2)
    body = bytes(cramjam.snappy.compress_raw(request))
    assert _ours(body) == _reference(body)


@pytest.mark.parametrize(
    "request_bytes", [b"\x0a\x05\x0a", b"\x0f", b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"]
)
def test_a_broken_request_is_a_value_error(request_bytes: bytes) -> None:
    with pytest.raises(ValueError, match="protobuf"):
        decode_write_request_columns(bytes(cramjam.snappy.compress_raw(request_bytes)))
