"""Prometheus remote write into infersight: Debian's real Prometheus 2.42 scrapes itself and remote-writes
to ``/api/v1/write``; what lands in the store equals the raw samples Prometheus holds. Plus the error
answers a sender relies on (400 never retried, 503 retried)."""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import cramjam
import httpx
import pytest

from model.labels import Matcher, MatchOp
from query.api.remote_write import RemoteWriteEndpoint, encode_write_request
from store.backend import StoreUnavailableError
from store.open import Store, open_store
from store.writes import SampleWriter
from tests.query.api.prometheus_writer import prometheus_writing_to

T0 = 1_764_000_000_000


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"chdb://{tmp_path / 'data'}")
    yield opened
    opened.close()


class Poster:
    """POSTs to an app in-process (ASGI), one event loop per call."""

    def __init__(self, writer: SampleWriter) -> None:
        self._transport = httpx.ASGITransport(app=RemoteWriteEndpoint(writer))

    def post(self, body: bytes) -> int:
        async def go() -> int:
            async with httpx.AsyncClient(transport=self._transport, base_url="http://t") as c:
                return (await c.post("/api/v1/write", content=body)).status_code

        return asyncio.run(go())


@pytest.fixture
def client(store: Store) -> Poster:
    return Poster(store.writer)


def _points(store: Store, name: str) -> dict[str, list[tuple[int, float]]]:
    series = store.querier.select([Matcher("__name__", MatchOp.EQ, name)], 0, 2 * T0)
    return {
        s.labels.get("job", ""): list(zip(s.ts_ms.tolist(), s.values.tolist(), strict=True)) for s in series
    }


def test_write_request_is_stored(store: Store, client: Poster) -> None:
    body = encode_write_request(
        [
            ({"__name__": "rw", "job": "a"}, [(T0, 1.0), (T0 + 1000, 2.0)]),
            ({"__name__": "rw", "job": "b"}, [(T0, math.inf)]),
        ]
    )
    assert client.post(body) == 204
    assert _points(store, "rw") == {"a": [(T0, 1.0), (T0 + 1000, 2.0)], "b": [(T0, math.inf)]}


@pytest.mark.parametrize("body", [b"", b"not snappy at all", b"\x05\x00garbage"])
def test_malformed_body_is_400(client: Poster, body: bytes) -> None:
    assert client.post(body) == 400  # as Prometheus: an empty body is not snappy either


def test_protobuf_that_is_not_a_write_request_is_400(client: Poster) -> None:
    body = bytes(cramjam.snappy.compress_raw(b"\x0a\x05\xff\xff\xff\xff\xff"))
    assert client.post(body) == 400


def test_invalid_utf8_label_refuses_the_request_whole(store: Store, client: Poster) -> None:
    body = encode_write_request(
        [
            ({"__name__": "rw", "job": "bad\udcff"}, [(T0, 1.0)]),
            ({"__name__": "rw", "job": "ok"}, [(T0, 2.0)]),
        ]
    )
    assert client.post(body) == 400  # as Prometheus: a request is taken whole or not at all
    assert _points(store, "rw") == {}


def _exchange(app: RemoteWriteEndpoint, method: str, body: bytes, **headers: str) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.request(method, "/api/v1/write", content=body, headers=headers)

    return asyncio.run(go())


def test_body_over_the_limit_is_413_and_nothing_is_written(store: Store) -> None:
    app = RemoteWriteEndpoint(store.writer, max_body_bytes=64)
    body = encode_write_request([({"__name__": "rw", "job": f"j{i}"}, [(T0, 1.0)]) for i in range(20)])
    assert len(body) > 64
    assert _exchange(app, "POST", body).status_code == 413  # told by Content-Length

    async def chunked() -> int:  # no Content-Length: counted while reading
        async def parts() -> AsyncIterator[bytes]:
            for start in range(0, len(body), 16):
                yield body[start : start + 16]

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return (await c.post("/api/v1/write", content=parts())).status_code

    assert asyncio.run(chunked()) == 413
    assert _points(store, "rw") == {}
    small = encode_write_request([({"__name__": "rw", "job": "a"}, [(T0, 1.0)])])
    assert len(small) <= 64
    assert _exchange(app, "POST", small).status_code == 204
    assert _points(store, "rw") == {"a": [(T0, 1.0)]}


def test_a_client_gone_before_its_body_is_whole_gets_no_answer_and_writes_nothing(store: Store) -> None:
    body = encode_write_request([({"__name__": "rw", "job": "a"}, [(T0, 1.0)])])
    messages = [{"type": "http.request", "body": body[:5], "more_body": True}, {"type": "http.disconnect"}]
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        return messages.pop(0)

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/api/v1/write", "headers": []}
    asyncio.run(RemoteWriteEndpoint(store.writer)(scope, receive, send))
    assert sent == []
    assert _points(store, "rw") == {}


def test_only_post_is_served(store: Store) -> None:
    response = _exchange(RemoteWriteEndpoint(store.writer), "GET", b"")
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_error_answers_say_why_in_plain_text(client: Poster, store: Store) -> None:
    response = _exchange(RemoteWriteEndpoint(store.writer), "POST", b"not snappy")
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text.startswith("malformed remote write request: snappy")


def test_store_unavailable_is_503_so_the_sender_retries() -> None:
    class DownBackend:
        database = "x"

        def insert(self, table: str, rows: object) -> None:
            raise StoreUnavailableError("down")

    poster = Poster(SampleWriter(DownBackend()))  # type: ignore[arg-type]
    assert poster.post(encode_write_request([({"__name__": "rw"}, [(T0, 1.0)])])) == 503


def _require_prometheus() -> None:
    if shutil.which("prometheus") is None:
        if os.environ.get("CI"):
            pytest.fail("prometheus not installed (tools/system-deps.sh installs it)")
        pytest.skip("prometheus not installed")


Points = dict[tuple[tuple[str, str], ...], set[tuple[int, float]]]


def _prom_raw(url: str, query: str) -> Points:
    """Raw samples of a range selector, per label set, from Prometheus' own API."""
    params = urllib.parse.urlencode({"query": query})
    with urllib.request.urlopen(f"{url}/api/v1/query?{params}", timeout=10) as response:
        data = json.load(response)["data"]["result"]
    return {
        tuple(sorted(r["metric"].items())): {(round(float(t) * 1000), float(v)) for t, v in r["values"]}
        for r in data
    }


def _ours(store: Store, name: str) -> Points:
    series = store.querier.select([Matcher("__name__", MatchOp.EQ, name)], 0, 2 * T0)
    return {
        tuple(sorted(s.labels.items())): set(zip(s.ts_ms.tolist(), s.values.tolist(), strict=True))
        for s in series
    }


@pytest.mark.integration
def test_real_prometheus_remote_writes_its_own_scrapes(store: Store, tmp_path: Path) -> None:
    _require_prometheus()
    with prometheus_writing_to(RemoteWriteEndpoint(store.writer), tmp_path) as prom_port:
        deadline = time.monotonic() + 60
        ours: dict[str, list[tuple[int, float]]] = {}
        while time.monotonic() < deadline:
            ours = _points(store, "up")
            if len(ours.get("self", [])) >= 4:
                break
            time.sleep(0.5)
        assert len(ours.get("self", [])) >= 4, (tmp_path / "prometheus.log").read_text()[-3000:]
        # Every sample we received is one Prometheus holds: same label set, timestamp and value.
        url = f"http://127.0.0.1:{prom_port}"
        for name in ("up", "prometheus_tsdb_head_samples_appended_total", "prometheus_http_requests_total"):
            ours_by_series, theirs = _ours(store, name), _prom_raw(url, f"{name}[10m]")
            assert ours_by_series, name
            for labels, points in ours_by_series.items():
                assert points <= theirs[labels], (name, labels)
        # Labels arrive as Prometheus attaches them (job, instance, and the target's own).
        (series,) = store.querier.select([Matcher("__name__", MatchOp.EQ, "up")], 0, 2 * T0)
        assert series.labels == {"__name__": "up", "job": "self", "instance": f"127.0.0.1:{prom_port}"}


def test_a_store_refusal_without_a_log_is_that_requests_400_not_a_500() -> None:
    class RefusingBackend:
        database = "x"

        def insert(self, table: str, rows: object) -> None:
            raise RuntimeError("Code: 321. DB::Exception: value out of range")

    class BusyBackend(RefusingBackend):
        def insert(self, table: str, rows: object) -> None:
            raise RuntimeError("Code: 252. DB::Exception: Too many parts")

    body = encode_write_request([({"__name__": "rw"}, [(T0, 1.0)])])
    assert Poster(SampleWriter(RefusingBackend())).post(body) == 400  # type: ignore[arg-type]
    assert Poster(SampleWriter(BusyBackend())).post(body) == 503  # type: ignore[arg-type]
