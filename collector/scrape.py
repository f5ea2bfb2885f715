"""Fetch one target's exposition: HTTP(S), a whole-scrape timeout, a body-size limit.

The guide caps a response at 32 KB (SEED-SPEC §2): the body is read as a stream and the read
stops as soon as it passes ``max_body_bytes``, so an oversized body is an error, never silently
truncated data. The limit is on the decompressed size and holds while decompressing: a gzip
body is inflated chunk by chunk with ``max_length``, so a small compressed "bomb" costs at most
``max_body_bytes`` of memory before it is refused (httpx would inflate each network read whole).
Only ``gzip`` is asked for, as Prometheus does; ``gzip``/``deflate`` answers are inflated here,
another coding (or a corrupt stream) is a ``parse`` failure. Failures raise ``ScrapeError`` with a
short ``reason`` used as the label of ``infersight_scrape_errors_total``.
"""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass

import httpx

# Prometheus 2.42's Accept header (OpenMetrics first, then the text format) plus
# ``escaping=allow-utf-8``: without it prometheus-client 0.26 (what vLLM serves /metrics with)
# escapes ``:`` to ``_`` in sample names but not in HELP/TYPE lines, and the strict parser
# rightly rejects the result; ``vllm:...`` names are legal OpenMetrics names and need no escaping.
ACCEPT = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8,"
    "application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
USER_AGENT = "infersight-sidecar/0.1"

REASONS = ("timeout", "connection", "http_status", "body_too_large", "parse")


class ScrapeError(Exception):
    """A scrape failed; ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Fetched:
    """A scrape response body, its Content-Type and its size in bytes (as read, decompressed)."""

    body: bytes
    content_type: str

    @property
    def size_bytes(self) -> int:
        return len(self.body)


def body_too_large(limit_bytes: int) -> ScrapeError:
    return ScrapeError("body_too_large", f"body exceeds {limit_bytes} bytes")


async def _read(client: httpx.AsyncClient, url: str, max_body_bytes: int, timeout_s: float) -> Fetched:
    headers = {
        "Accept": ACCEPT,
        "Accept-Encoding": "gzip",
        "User-Agent": USER_AGENT,
        "X-Prometheus-Scrape-Timeout-Seconds": f"{timeout_s:g}",
    }
    async with client.stream("GET", url, headers=headers) as response:
        if response.status_code != 200:
            raise ScrapeError("http_status", f"server returned HTTP status {response.status_code}")
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_body_bytes:
            raise body_too_large(max_body_bytes)
        inflate = _inflater(response.headers.get("content-encoding", ""))
        chunks: list[bytes] = []
        size = 0
        async for raw in response.aiter_raw():
            chunk = _inflate(inflate, raw, max_body_bytes - size) if inflate else raw
            size += len(chunk)
            if size > max_body_bytes:
                raise body_too_large(max_body_bytes)
            chunks.append(chunk)
        if inflate is not None:
            tail = _inflate_end(inflate)
            size += len(tail)
            if size > max_body_bytes:
                raise body_too_large(max_body_bytes)
            chunks.append(tail)
        return Fetched(b"".join(chunks), response.headers.get("content-type", ""))


def _inflater(content_encoding: str) -> zlib._Decompress | None:
    """A decompressor for the response's coding (gzip, or deflate in its zlib wrapper); None for none."""
    coding = content_encoding.strip().lower()
    if coding in ("", "identity"):
        return None
    if coding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if coding == "deflate":
        return zlib.decompressobj(32 + zlib.MAX_WBITS)  # a zlib (or gzip) header, detected
    raise ScrapeError("parse", f"unsupported Content-Encoding {coding[:40]!r}")


def _inflate(inflate: zlib._Decompress, raw: bytes, room: int) -> bytes:
    """At most ``room + 1`` bytes out of ``raw``: one more than fits tells the caller it is too large."""
    try:
        return inflate.decompress(raw, max(room, 0) + 1)
    except zlib.error as exc:
        raise ScrapeError("parse", f"compressed body is corrupt: {exc}") from exc


def _inflate_end(inflate: zlib._Decompress) -> bytes:
    try:
        tail = inflate.flush()
    except zlib.error as exc:
        raise ScrapeError("parse", f"compressed body is corrupt: {exc}") from exc
    if not inflate.eof:
        raise ScrapeError("parse", "compressed body is truncated")
    return tail


async def fetch(client: httpx.AsyncClient, url: str, *, timeout_s: float, max_body_bytes: int) -> Fetched:
    """GET ``url`` within ``timeout_s`` overall; raise ScrapeError on any failure."""
    try:
        async with asyncio.timeout(timeout_s):
            return await _read(client, url, max_body_bytes, timeout_s)
    except TimeoutError as exc:
        raise ScrapeError("timeout", f"scrape timed out after {timeout_s:g}s") from exc
    except httpx.TimeoutException as exc:
        raise ScrapeError("timeout", f"scrape timed out: {exc!r}") from exc
    except httpx.HTTPError as exc:
        raise ScrapeError("connection", f"{type(exc).__name__}: {exc}") from exc
    except OSError as exc:
        raise ScrapeError("connection", f"{type(exc).__name__}: {exc}") from exc


def new_client(*, verify_tls: bool, timeout_s: float) -> httpx.AsyncClient:
    """One client per sidecar, reused across scrapes (keep-alive, TLS session reuse)."""
    return httpx.AsyncClient(verify=verify_tls, timeout=timeout_s, follow_redirects=True)
