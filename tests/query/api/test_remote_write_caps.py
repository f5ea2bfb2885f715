"""Remote write's cap on samples and series per request: over it is a 400 naming the reason,
counted by the endpoint's admission, found while the message is walked — so a pathological
request within the decoded-size bound costs the memory of a request at the cap, not of its size."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Iterator

import cramjam
import httpx
import pytest

from model.labels import Matcher, MatchOp
from query.api.remote_write import RemoteWriteEndpoint, encode_write_request
from query.api.write_request_scan import OverLimitError, scan_write_request
from store.admission import DEFAULT_MAX_SAMPLES_PER_REQUEST, TS_MAX_MS
from store.open import Store, open_store

T0 = 1_764_000_000_000


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    opened = open_store(f"chdb://{tmp_path_factory.mktemp('caps') / 'data'}")
    yield opened
    opened.close()


def _post(endpoint: RemoteWriteEndpoint, body: bytes) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=endpoint)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.post("/api/v1/write", content=body)

    return asyncio.run(go())


def _count(store: Store, name: str) -> int:
    return sum(
        len(s.ts_ms) for s in store.querier.select([Matcher("__name__", MatchOp.EQ, name)], 0, TS_MAX_MS)
    )


def test_samples_over_the_cap_are_400_and_at_the_cap_stored(store: Store) -> None:
    endpoint = RemoteWriteEndpoint(store.writer, max_samples_per_request=10, max_series_per_request=3)
    over = encode_write_request(
        [({"__name__": "cap_a", "i": str(i)}, [(T0 + j, 1.0) for j in range(4)]) for i in range(3)]
    )
    answer = _post(endpoint, over)
    assert answer.status_code == 400
    assert "too_many_samples" in answer.text
    assert "max_samples_per_request" in answer.text
    assert endpoint.admission.refused_requests["too_many_samples"] == 1
    assert _count(store, "cap_a") == 0
    at_cap = encode_write_request(
        [({"__name__": "cap_a", "i": str(i)}, [(T0 + j, 1.0) for j in range(5)]) for i in range(2)]
    )
    assert _post(endpoint, at_cap).status_code == 204
    assert _count(store, "cap_a") == 10


def test_series_over_the_cap_are_400_even_without_samples(store: Store) -> None:
    endpoint = RemoteWriteEndpoint(store.writer, max_samples_per_request=10, max_series_per_request=3)
    over = encode_write_request([({"__name__": "cap_b", "i": str(i)}, []) for i in range(4)])
    answer = _post(endpoint, over)
    assert answer.status_code == 400
    assert "too_many_series" in answer.text
    assert endpoint.admission.refused_requests["too_many_series"] == 1
    assert (
        _post(
            endpoint,
            encode_write_request([({"__name__": "cap_b", "i": str(i)}, [(T0, 1.0)]) for i in range(3)]),
        ).status_code
        == 204
    )
    assert _count(store, "cap_b") == 3


def test_the_parser_path_is_capped_too(store: Store) -> None:
    """A message with labels after samples is read by the protobuf parser: the caps hold there."""
    endpoint = RemoteWriteEndpoint(store.writer, max_samples_per_request=2, max_series_per_request=5)
    sample = b"\x12\x0b\x09" + b"\x00" * 8 + b"\x10\x01"
    label = b"\x0a\x0c\x0a\x08__name__\x12\x00"
    series = sample * 3 + label
    raw = b"\x0a" + bytes([len(series)]) + series
    answer = _post(endpoint, bytes(cramjam.snappy.compress_raw(raw)))
    assert answer.status_code == 400
    assert "too_many_samples" in answer.text


def test_the_walk_stops_at_the_cap() -> None:
    raw = b"\x0a\x04" + b"\x12\x00" * 2
    assert scan_write_request(raw, max_series=1, max_samples=2) is not None
    with pytest.raises(OverLimitError) as err:
        scan_write_request(raw, max_series=1, max_samples=1)
    assert (err.value.kind, err.value.limit) == ("samples", 1)
    with pytest.raises(OverLimitError) as err:
        scan_write_request(raw * 2, max_series=1, max_samples=10)
    assert (err.value.kind, err.value.limit) == ("series", 1)


def test_a_pathological_request_costs_the_memory_of_the_cap(store: Store) -> None:
    """16 million empty samples (32 MiB decoded, the default bound): refused, with the walk's arrays
    sized to the default cap (1 million samples, 24 MB) rather than the body (16 million, 640 MB)."""
    endpoint = RemoteWriteEndpoint(store.writer)
    n = 16_000_000
    series = b"\x0a\x0a\x0a\x08__name__" + b"\x12\x00" * n
    size = len(series)
    head = bytearray(b"\x0a")
    while size >= 0x80:
        head.append((size & 0x7F) | 0x80)
        size >>= 7
    head.append(size)
    raw = bytes(head) + series
    assert len(raw) < endpoint.max_decoded_bytes
    body = bytes(cramjam.snappy.compress_raw(raw))
    del raw, series
    tracemalloc.start()
    try:
        status, text = endpoint.accept(body, None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 400
    assert "too_many_samples" in text
    assert endpoint.admission.refused_requests["too_many_samples"] == 1
    assert endpoint.admission.refused_samples["too_many_samples"] == DEFAULT_MAX_SAMPLES_PER_REQUEST + 1
    # The decoded body (32 MB) plus arrays for the cap (24 MB); the old walk took 640 MB.
    assert peak < 100 << 20, peak
