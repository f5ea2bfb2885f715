"""collector.scrape against a real HTTP server on port 0: size limit, timeout, status, refusal."""

from __future__ import annotations

import asyncio
import gzip
import shutil
import socket
import ssl
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest

from collector.scrape import ScrapeError, fetch, new_client

LIMIT = 32768


async def _fetch(url: str, *, timeout_s: float = 2.0, max_body_bytes: int = LIMIT) -> Any:
    async with new_client(verify_tls=True, timeout_s=timeout_s) as client:
        return await fetch(client, url, timeout_s=timeout_s, max_body_bytes=max_body_bytes)


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_fetch_returns_body_and_content_type(http_stub: Any, canned: Any) -> None:
    async def go() -> Any:
        async with http_stub({"/metrics": canned(b"a 1\n")}) as server:
            fetched = await _fetch(f"http://127.0.0.1:{server.port}/metrics")
            return fetched, server.requests[0]

    fetched, request = _run(go())
    assert fetched.body == b"a 1\n"
    assert fetched.content_type.startswith("text/plain")
    assert fetched.size_bytes == 4
    assert request["accept"].startswith("application/openmetrics-text;version=1.0.0")
    assert "text/plain;version=0.0.4" in request["accept"]


def test_body_at_the_limit_is_accepted(http_stub: Any, canned: Any) -> None:
    body = b"#" * (LIMIT - 1) + b"\n"

    async def go() -> Any:
        async with http_stub({"/metrics": canned(body, chunk_bytes=4096)}) as server:
            return await _fetch(f"http://127.0.0.1:{server.port}/metrics")

    assert _run(go()).size_bytes == LIMIT


@pytest.mark.parametrize(
    "options",
    [
        {"content_length": True},  # refused from the header
        {"content_length": False},  # read until the close, stopped at the limit
        {"chunk_bytes": 1000},  # chunked, stopped at the limit
    ],
)
def test_oversized_body_is_an_error_not_truncated(
    http_stub: Any, canned: Any, options: dict[str, Any]
) -> None:
    body = b"a 1\n" * (LIMIT // 4 + 1)

    async def go() -> None:
        async with http_stub({"/metrics": canned(body, **options)}) as server:
            await _fetch(f"http://127.0.0.1:{server.port}/metrics")

    with pytest.raises(ScrapeError) as err:
        _run(go())
    assert err.value.reason == "body_too_large"
    assert str(err.value) == "body exceeds 32768 bytes"


def test_timeout(http_stub: Any, canned: Any) -> None:
    async def go() -> None:
        async with http_stub({"/metrics": canned(b"a 1\n", delay_s=2.0)}) as server:
            await _fetch(f"http://127.0.0.1:{server.port}/metrics", timeout_s=0.2)

    with pytest.raises(ScrapeError) as err:
        _run(go())
    assert err.value.reason == "timeout"


def test_http_error_status(http_stub: Any, canned: Any) -> None:
    async def go() -> None:
        async with http_stub({}) as server:
            await _fetch(f"http://127.0.0.1:{server.port}/metrics")

    with pytest.raises(ScrapeError, match="404") as err:
        _run(go())
    assert err.value.reason == "http_status"


def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again at once: nothing listens there
    with pytest.raises(ScrapeError) as err:
        _run(_fetch(f"http://127.0.0.1:{port}/metrics"))
    assert err.value.reason == "connection"


def _self_signed(tmp_path: Path) -> ssl.SSLContext:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_https_with_and_without_verification(http_stub: Any, canned: Any, tmp_path: Path) -> None:
    tls = _self_signed(tmp_path)

    async def go(verify: bool) -> Any:
        async with (
            http_stub({"/metrics": canned(b"a 1\n")}, tls=tls) as server,
            new_client(verify_tls=verify, timeout_s=2) as client,
        ):
            url = f"https://127.0.0.1:{server.port}/metrics"
            return await fetch(client, url, timeout_s=2, max_body_bytes=LIMIT)

    assert _run(go(verify=False)).body == b"a 1\n"
    with pytest.raises(ScrapeError) as err:
        _run(go(verify=True))  # self-signed: verification fails
    assert err.value.reason == "connection"


# --- compressed bodies: the limit holds on the inflated size, while inflating -------------------


def _encoded(canned: Any, body: bytes, coding: str) -> Any:
    # the stub writes Content-Type as given: a second header line rides along with it
    return canned(body, content_type=f"text/plain; version=0.0.4\r\nContent-Encoding: {coding}")


def test_gzip_body_is_inflated(http_stub: Any, canned: Any) -> None:
    text = b"a 1\n" * 1000

    async def go(body: bytes, coding: str) -> Any:
        async with http_stub({"/metrics": _encoded(canned, body, coding)}) as server:
            fetched = await _fetch(f"http://127.0.0.1:{server.port}/metrics")
            return fetched, server.requests[0]

    fetched, request = _run(go(gzip.compress(text), "gzip"))
    assert fetched.body == text
    assert request["accept-encoding"] == "gzip"
    fetched, _ = _run(go(zlib.compress(text), "deflate"))
    assert fetched.body == text


@pytest.mark.parametrize(
    ("coding", "body", "reason"),
    [
        ("gzip", b"\x1f\x8b\x08\x00junk-not-deflate", "parse"),
        ("br", b"whatever", "parse"),
        ("gzip", None, "body_too_large"),  # 64 MiB of zeros in ~64 KiB: a compression bomb
        ("gzip", b"truncated", "parse"),
    ],
)
def test_bad_or_huge_compressed_bodies_are_refused(
    http_stub: Any, canned: Any, coding: str, body: bytes | None, reason: str
) -> None:
    if body is None:
        body = gzip.compress(b"\0" * (64 << 20), compresslevel=9)
    elif body == b"truncated":
        body = gzip.compress(b"a 1\n" * 100)[:-12]

    async def go() -> None:
        async with http_stub({"/metrics": _encoded(canned, body, coding)}) as server:
            await _fetch(f"http://127.0.0.1:{server.port}/metrics")

    with pytest.raises(ScrapeError) as err:
        _run(go())
    assert err.value.reason == reason
