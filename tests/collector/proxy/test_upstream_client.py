"""The proxy's upstream client (upstream.py): keep-alive, body framings, big bodies, stalls, HTTPS, logs."""

from __future__ import annotations

import asyncio
import os
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import h11
import httpx
import pytest
from loguru import logger

from collector.proxy.timing import RequestObservation
from tests.collector.conftest import LoopbackServer
from tests.collector.proxy.conftest import proxy_to, token


class H11Upstream(LoopbackServer):
    """A keep-alive HTTP/1.1 upstream: echoes each request body (any framing) with a content-length;
    ``/stall`` sends a streamed head and one token, then nothing. Counts connections."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.connections = 0
        self.requests: list[tuple[h11.Request, bytes]] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 20)
        try:
            while True:
                request: h11.Request | None = None
                body = bytearray()
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        conn.receive_data(await reader.read(1 << 16))
                    elif isinstance(event, h11.Request):
                        request = event
                    elif isinstance(event, h11.Data):
                        body += event.data
                    elif isinstance(event, h11.EndOfMessage):
                        break
                    else:  # the client closed the connection
                        return
                assert request is not None
                self.requests.append((request, bytes(body)))
                if request.target == b"/stall":
                    head = h11.Response(status_code=200, headers=[(b"content-type", b"text/event-stream")])
                    writer.write(conn.send(head) + conn.send(h11.Data(data=token("a"))))
                    await writer.drain()
                    await asyncio.sleep(3600)
                head = h11.Response(status_code=200, headers=[(b"content-length", b"%d" % len(body))])
                writer.write(
                    conn.send(head) + conn.send(h11.Data(data=bytes(body))) + conn.send(h11.EndOfMessage())
                )
                await writer.drain()
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError):
            pass
        finally:
            writer.close()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"


def test_keep_alive_reuses_the_upstream_connection() -> None:
    async def go() -> tuple[list[int], int]:
        async with H11Upstream() as up, proxy_to(up.url) as (proxy, _), httpx.AsyncClient() as client:
            statuses = [(await client.post(f"{proxy.url}/echo", content=b"x")).status_code for _ in range(5)]
            return statuses, up.connections

    statuses, connections = asyncio.run(go())
    assert statuses == [200] * 5
    assert connections == 1  # one connection, kept alive between requests


def test_an_upstream_path_prefixes_every_target() -> None:
    async def go() -> bytes:
        async with (
            H11Upstream() as up,
            proxy_to(up.url + "/base/") as (proxy, _),
            httpx.AsyncClient() as client,
        ):
            await client.get(f"{proxy.url}/v1/models?a=%2F")
            return up.requests[0][0].target

    assert asyncio.run(go()) == b"/base/v1/models?a=%2F"


def test_chunked_request_body_passes_unchanged() -> None:
    parts = [os.urandom(n) for n in (1, 5000, 70_000, 3)]

    async def body() -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    async def go() -> tuple[httpx.Response, h11.Request, bytes]:
        async with H11Upstream() as up, proxy_to(up.url) as (proxy, _), httpx.AsyncClient() as client:
            response = await client.post(f"{proxy.url}/echo", content=body())  # no length: chunked
            return response, *up.requests[0]

    response, request, received = asyncio.run(go())
    assert received == response.content == b"".join(parts)
    assert dict(request.headers)[b"transfer-encoding"] == b"chunked"


def test_huge_bodies_stream_both_ways() -> None:
    body = os.urandom(16 << 20)

    async def go() -> httpx.Response:
        async with (
            H11Upstream() as up,
            proxy_to(up.url) as (proxy, _),
            httpx.AsyncClient(timeout=60) as client,
        ):
            return await client.post(f"{proxy.url}/echo", content=body)

    response = asyncio.run(go())
    assert response.status_code == 200
    assert response.content == body


def test_a_stall_mid_stream_is_a_timeout_that_cuts_the_client() -> None:
    async def go() -> tuple[bytes, Exception | None, list[RequestObservation]]:
        got = b""
        error: Exception | None = None
        async with (
            H11Upstream() as up,
            proxy_to(up.url, read_timeout_s=0.3) as (proxy, seen),
            httpx.AsyncClient() as client,
        ):
            try:
                async with client.stream("GET", f"{proxy.url}/stall") as response:
                    async for part in response.aiter_raw():
                        got += part
            except httpx.HTTPError as exc:
                error = exc
            for _ in range(100):
                if seen:
                    break
                await asyncio.sleep(0.01)
        return got, error, seen

    got, error, seen = asyncio.run(go())
    assert got == token("a")  # what came before the stall was passed on
    assert isinstance(error, httpx.RemoteProtocolError)  # then the connection was cut, not ended cleanly
    assert (seen[0].status, seen[0].outcome) == (200, "upstream_timeout")


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.parametrize("verify_tls", [False, True])
def test_https_upstream(tls_files: tuple[Path, Path], verify_tls: bool) -> None:
    cert, key = tls_files
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)

    async def go() -> tuple[httpx.Response, list[RequestObservation]]:
        async with (
            H11Upstream(tls) as up,
            proxy_to(up.url, verify_tls=verify_tls) as (proxy, seen),
            httpx.AsyncClient() as client,
        ):
            response = await client.post(f"{proxy.url}/echo", content=b"over tls")
            await asyncio.sleep(0.02)
            return response, seen

    response, seen = asyncio.run(go())
    if verify_tls:  # a self-signed certificate is not trusted: no connection to the upstream
        assert response.status_code == 502
        assert seen[0].outcome == "upstream_refused"
    else:
        assert response.status_code == 200
        assert response.content == b"over tls"


def test_request_bodies_stay_out_of_the_log() -> None:
    secret = b"the-secret-prompt-7f3a"
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="DEBUG")

    async def go() -> list[int]:
        statuses = []
        async with H11Upstream() as up:
            async with (
                proxy_to(up.url, max_body_bytes=100) as (proxy, _),
                httpx.AsyncClient() as client,
            ):
                statuses.append((await client.post(f"{proxy.url}/echo", content=secret)).status_code)
                statuses.append((await client.post(f"{proxy.url}/echo", content=secret * 10)).status_code)
            port = up.port
        async with proxy_to(f"http://127.0.0.1:{port}") as (proxy, _), httpx.AsyncClient() as client:
            statuses.append((await client.post(f"{proxy.url}/v1/x?q=1", content=secret)).status_code)
        return statuses

    try:
        statuses = asyncio.run(go())
    finally:
        logger.remove(sink)
    assert statuses == [200, 413, 502]  # passed, too large, upstream gone
    assert lines  # the proxy did log (start, the 502)
    assert not any(secret.decode() in line for line in lines)
