"""Hostile remote-write bodies through the real endpoint, in front of the ingest log and a chDB store
(as ``infersight server`` runs it): random bytes, snappy-wrapped garbage, hand-built protobufs with
hostile labels, timestamps and values, truncated bodies, lying length headers, gzip bombs and odd
headers. Never a 5xx; whatever is answered 204 is stored, all of it; a good request that follows
is answered 204 and stored, all of it."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import math
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import cramjam
import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from exporters.ingest_log import IngestLog
from model.labels import Matcher, MatchOp
from query.api.remote_write import (
    LOG_DECODERS,
    RemoteWriteEndpoint,
    decode_write_request,
    encode_write_request,
)
from store.admission import TS_MAX_MS
from store.open import Store, open_store

T0 = 1_764_000_000_000
FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)


class Server:
    """The endpoint with a log over a chDB store; ``post`` sends one request in-process (ASGI)."""

    def __init__(self, store: Store, folder: Path) -> None:
        self.store = store
        self.log = IngestLog(store.writer, folder, decoders=LOG_DECODERS, retry_interval_s=0.0)
        self.app = RemoteWriteEndpoint(store.writer, log=self.log, max_decoded_bytes=1 << 20)
        self.transport = httpx.ASGITransport(app=self.app)
        self._good = itertools.count()

    def post(self, body: bytes, **headers: str) -> httpx.Response:
        async def go() -> httpx.Response:
            async with httpx.AsyncClient(transport=self.transport, base_url="http://t") as c:
                return await c.post("/api/v1/write", content=body, headers=headers)

        return asyncio.run(go())

    def check(self, body: bytes, accepted: bytes | None = None, **headers: str) -> int:
        """Post a hostile body, then a good one; both hold the property (see the module docstring).
        ``accepted``: the snappy form of the body, to read what a 204 promised."""
        answer = self.post(body, **headers)
        assert answer.status_code in (204, 400, 413), (answer.status_code, answer.text)
        assert answer.status_code == 204 or answer.text  # a refusal says why
        if currently_in_test_context():
            event(f"answered {answer.status_code}")
        good_name = f"good_{next(self._good)}"
        good = encode_write_request([({"__name__": good_name, "job": "g"}, [(T0, 1.0), (T0 + 1, math.nan)])])
        assert self.post(good).status_code == 204
        assert self.log.flush()
        assert self._stamps(good_name) == {(("job", "g"),): [T0, T0 + 1]}
        if answer.status_code == 204 and accepted is not None:
            self._all_stored(accepted)
        return answer.status_code

    def _stamps(self, name: str) -> dict[tuple[tuple[str, str], ...], list[int]]:
        series = self.store.querier.select([Matcher("__name__", MatchOp.EQ, name)], 0, TS_MAX_MS)
        return {
            tuple(sorted((k, v) for k, v in s.labels.items() if k != "__name__")): s.ts_ms.tolist()
            for s in series
        }

    def _all_stored(self, snappy_body: bytes) -> None:
        expected: dict[str, set[tuple[tuple[tuple[str, str], ...], int]]] = {}
        for sample in decode_write_request(snappy_body):
            labels = dict(sample.labels)
            name = labels.pop("__name__")
            expected.setdefault(name, set()).add((tuple(sorted(labels.items())), sample.ts_ms))
        for name, points in expected.items():
            stored = {(labels, t) for labels, stamps in self._stamps(name).items() for t in stamps}
            assert points <= stored, name


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("fuzz")
    store = open_store(f"chdb://{folder / 'data'}")
    yield Server(store, folder / "wal")
    store.close()


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _sample(value: float, ts: int) -> bytes:
    return b"\x09" + struct.pack("<d", value) + b"\x10" + _varint(ts)


_names = st.one_of(
    st.sampled_from([b"__name__", b"job", b"", b"1bad", b"a-b", b"\xff\xfe", b"le", b"__name__"]),
    st.binary(max_size=12),
    st.from_regex(rb"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True),
)
_values = st.one_of(
    st.sampled_from([b"", b"up", b"x" * 5000, b"\xc3\x28", b"ok:name", b"\x00"]),
    st.binary(max_size=16),
    st.text(max_size=8).map(lambda t: t.encode("utf-8", "surrogatepass")),
)
_stamps = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, -1, TS_MAX_MS, TS_MAX_MS + 1, T0, T0 + 3_600_001, 2**63 - 1, -(2**63)]),
    st.integers(T0 - 10**10, T0 + 10**6),
)
_floats = st.floats(allow_nan=True, allow_infinity=True)
_hostile_series = st.tuples(
    st.lists(st.tuples(_names, _values), max_size=6),
    st.lists(st.tuples(_floats, _stamps), max_size=5),
)
_valid_name = st.from_regex(rb"[a-zA-Z_][a-zA-Z0-9_]{0,6}", fullmatch=True).filter(lambda n: n != b"__name__")
_valid_series = st.tuples(
    st.tuples(st.from_regex(rb"[a-zA-Z_:][a-zA-Z0-9_:]{0,8}", fullmatch=True))
    .map(lambda n: [(b"__name__", n[0])])
    .flatmap(
        lambda name: st.dictionaries(_valid_name, st.text(max_size=6).map(str.encode), max_size=4).map(
            lambda rest: name + list(rest.items())
        )
    ),
    st.lists(st.tuples(_floats, st.integers(0, T0)), max_size=5),
)
# Mostly well-formed series, now and then a hostile one: some requests pass the door.
_series = st.one_of(_valid_series, _valid_series, _hostile_series)


def _write_request(series: list[tuple[list[tuple[bytes, bytes]], list[tuple[float, int]]]]) -> bytes:
    out = b""
    for labels, samples in series:
        body = b"".join(_field(1, _field(1, n) + _field(2, v)) for n, v in labels)
        body += b"".join(_field(2, _sample(v, t)) for v, t in samples)
        out += _field(1, body)
    return out


@FUZZ
@given(st.binary(max_size=3000))
def test_random_bytes(server: Server, body: bytes) -> None:
    server.check(body)


@FUZZ
@given(st.binary(max_size=3000))
def test_snappy_wrapped_garbage(server: Server, raw: bytes) -> None:
    body = bytes(cramjam.snappy.compress_raw(raw))
    server.check(body, accepted=body)


@FUZZ
@given(st.lists(_series, min_size=1, max_size=5))
def test_hostile_labels_stamps_and_values(server: Server, series: list) -> None:  # type: ignore[type-arg]
    body = bytes(cramjam.snappy.compress_raw(_write_request(series)))
    server.check(body, accepted=body)


@FUZZ
@given(st.lists(_series, min_size=1, max_size=4), st.data())
def test_truncated_bodies(server: Server, series: list, data: st.DataObject) -> None:  # type: ignore[type-arg]
    raw = _write_request(series)
    cut_raw = raw[: data.draw(st.integers(0, max(0, len(raw) - 1)))]
    body = bytes(cramjam.snappy.compress_raw(cut_raw))
    server.check(body, accepted=body)
    whole = bytes(cramjam.snappy.compress_raw(raw))
    server.check(whole[: data.draw(st.integers(0, len(whole) - 1))])


@FUZZ
@given(st.integers(0, 2**64 - 1), st.binary(max_size=64), st.sampled_from([1, 2, 3]))
def test_lying_lengths(server: Server, declared: int, tail: bytes, where: int) -> None:
    if where == 1:  # the snappy header
        body = _varint(declared)[:5] + tail
    elif where == 2:  # a TimeSeries' length
        body = bytes(cramjam.snappy.compress_raw(b"\x0a" + _varint(declared) + tail))
    else:  # a Label's length inside a well-formed TimeSeries
        series = b"\x0a" + _varint(declared) + tail
        body = bytes(cramjam.snappy.compress_raw(_field(1, series)))
    assert server.check(body) in (400, 413, 204)


def test_bombs_and_zeros(server: Server) -> None:
    zeros = bytes(10_000)
    assert server.check(zeros) == 400  # not snappy: one zero byte is an empty block, many are not
    assert server.check(b"\x00") == 204  # a real empty WriteRequest
    assert server.check(_varint(1 << 31) + b"\x00" * 100) == 413  # refused before allocation
    big = bytes(cramjam.snappy.compress_raw(b"\x0a\x00" * (1 << 20)))
    assert len(big) < 100_000
    assert server.check(big) == 413  # 2 MiB decoded, over this server's 1 MiB
    bomb = gzip.compress(bytes(64 << 20))
    assert server.check(bomb, **{"content-encoding": "gzip"}) == 413
    assert server.check(zlib.compress(bytes(64 << 20)), **{"content-encoding": "deflate"}) == 413
    assert server.check(gzip.compress(b"")[:-3], **{"content-encoding": "gzip"}) == 400  # truncated
    assert server.check(b"garbage", **{"content-encoding": "gzip"}) == 400
    assert server.check(b"\x00", **{"content-encoding": "zstd"}) == 400
    assert server.check(b"\x00", **{"content-type": "application/json"}) == 400
    assert (
        server.check(
            b"\x00", **{"content-type": "application/x-protobuf;proto=io.prometheus.write.v2.Request"}
        )
        == 400
    )


def test_gzip_and_deflate_bodies_are_read(server: Server) -> None:
    raw = _write_request([([(b"__name__", b"gz"), (b"job", b"z")], [(1.0, T0)])])
    for encoding, body in (("gzip", gzip.compress(raw)), ("deflate", zlib.compress(raw))):
        assert server.check(body, **{"content-encoding": encoding}) == 204
    assert server._stamps("gz") == {(("job", "z"),): [T0]}


@pytest.mark.parametrize(
    ("labels", "reason"),
    [
        ([(b"__name__", b"m"), (b"job", b"a"), (b"job", b"b")], "duplicate_label"),
        ([(b"job", b"a")], "missing_metric_name"),
        ([(b"__name__", b"m"), (b"", b"x")], "invalid_label"),
        ([(b"__name__", b"m"), (b"a-b", b"x")], "invalid_label"),
        ([(b"__name__", b"1m")], "invalid_label"),
        ([(b"__name__", b"m"), (b"job", b"\xff")], "invalid_utf8"),
        ([(b"__name__", b"m"), (b"job", b"x" * 5000)], "label_too_long"),
        ([(b"__name__", b"m"), *[(b"l%d" % i, b"v") for i in range(65)]], "too_many_labels"),
    ],
)
def test_each_refusal_names_the_series_and_the_reason(
    server: Server, labels: list[tuple[bytes, bytes]], reason: str
) -> None:
    good = ([(b"__name__", b"fine"), (b"job", b"ok")], [(1.0, T0)])
    body = bytes(cramjam.snappy.compress_raw(_write_request([good, (labels, [(1.0, T0)])])))
    answer = server.post(body)
    assert answer.status_code == 400
    assert f"({reason}): series {{" in answer.text
    assert server._stamps("fine") == {}  # the request is refused whole


@pytest.mark.parametrize(
    ("ts", "reason"),
    [(-1, "timestamp_out_of_range"), (TS_MAX_MS + 1, "timestamp_out_of_range"), (None, "too_far_in_future")],
)
def test_out_of_bounds_stamps_are_400_naming_the_series(server: Server, ts: int | None, reason: str) -> None:
    if ts is None:  # a day ahead of the server's clock (the guard allows an hour)
        ts = int(time.time() * 1000) + 86_400_000
    body = encode_write_request([({"__name__": "oob", "job": "x"}, [(T0, 1.0), (ts, 2.0)])])
    answer = server.post(body)
    assert answer.status_code == 400
    assert answer.text.startswith(f'out of bounds ({reason}): series {{__name__="oob", job="x"}}')
    assert server._stamps("oob") == {}


def test_labels_after_samples_are_read_when_small_and_refused_when_large(server: Server) -> None:
    """That layout goes through the protobuf parser (an object per sample, the GIL held): bounded."""

    def body(n: int, name: bytes) -> bytes:
        series = _field(1, _field(1, b"__name__") + _field(2, name))
        series += b"".join(_field(2, _sample(1.0, T0 + k)) for k in range(n))
        series += _field(1, _field(1, b"job") + _field(2, b"late"))
        return bytes(cramjam.snappy.compress_raw(_field(1, series)))

    assert server.check(body(3, b"scattered")) == 204
    assert server._stamps("scattered") == {(("job", "late"),): [T0, T0 + 1, T0 + 2]}
    answer = server.post(body(20_000, b"scattered_big"))
    assert answer.status_code == 400
    assert "labels after samples" in answer.text
