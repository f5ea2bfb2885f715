"""A dashboard's HTTP client for benchmarks: keep-alive GETs whose own cost stays out of the figures.

Grafana's queries leave from a Go process that spends tens of microseconds on one request. httpx,
called from a pool of threads as a browser's six connections, spent about 0.6 ms of client CPU per
request on this 2-core machine: a refresh of the generated dashboards against a server that answers
at once took 9.7 ms (median), most of every system's measured refresh, which hid the servers'
differences. This client parses responses with httptools (llhttp, as uvicorn does) on one event
loop, keeps at most ``connections`` keep-alive connections per browser, asks for gzip as Grafana's
Go transport does, and leaves JSON decoding to whoever reads the answer.

``python -m bench.browser --answer-at-once PORT`` serves a fixed, empty answer to every request:
the floor a benchmark measures its client against (``answer_at_once``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlencode, urlsplit

import httptools


@dataclass(frozen=True, slots=True)
class Response:
    """A whole answer: status and body, already inflated when the server sent gzip."""

    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time on it."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Response] | None = None
        self._chunks: list[bytes] = []
        self._gzip = False
        self.closed = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as err:
            self._fail(err)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(exc or ConnectionError("the server closed the connection"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"content-encoding" and value.strip().lower() == b"gzip":
            self._gzip = True

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        body = b"".join(self._chunks)
        if self._gzip:
            body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
        if not self._parser.should_keep_alive():
            self.closed = True
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(Response(self._parser.get_status_code(), body))

    def _fail(self, err: BaseException) -> None:
        self.closed = True
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(err)

    async def send(self, request: bytes) -> Response:
        assert self._transport is not None
        assert self._waiter is None
        self._chunks, self._gzip = [], False
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return await self._waiter

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class Browser:
    """A browser's connections to one server: at most ``connections`` requests in flight."""

    def __init__(self, base: str, connections: int = 6, timeout_s: float = 600) -> None:
        url = urlsplit(base)
        self._host, self._port = url.hostname or "127.0.0.1", url.port or 80
        self._prefix = url.path.rstrip("/")
        self._head = (
            f"Host: {url.netloc}\r\nAccept: application/json\r\nAccept-Encoding: gzip\r\n"
            "User-Agent: bench.browser\r\n\r\n"
        ).encode()
        self._limit = connections
        self._timeout_s = timeout_s
        self._idle: list[_Connection] = []
        self._open = 0
        self._freed: asyncio.Condition | None = None

    async def _take(self) -> _Connection:
        if self._freed is None:
            self._freed = asyncio.Condition()
        async with self._freed:
            while True:
                while self._idle:
                    conn = self._idle.pop()
                    if not conn.closed:
                        return conn
                    self._open -= 1
                if self._open < self._limit:
                    self._open += 1
                    break
                await self._freed.wait()
        try:
            _, conn = await asyncio.get_running_loop().create_connection(_Connection, self._host, self._port)
        except BaseException:
            async with self._freed:
                self._open -= 1
                self._freed.notify()
            raise
        return conn

    async def _give(self, conn: _Connection) -> None:
        assert self._freed is not None
        async with self._freed:
            if conn.closed:
                conn.close()
                self._open -= 1
            else:
                self._idle.append(conn)
            self._freed.notify()

    async def get(self, path: str, params: tuple[tuple[str, str], ...] = ()) -> Response:
        target = self._prefix + path + ("?" + urlencode(params) if params else "")
        request = f"GET {target} HTTP/1.1\r\n".encode() + self._head
        conn = await self._take()
        try:
            return await asyncio.wait_for(conn.send(request), self._timeout_s)
        except BaseException:
            conn.closed = True
            raise
        finally:
            await self._give(conn)

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()
        self._open = 0


# -- a server that answers at once ---------------------------------------------------------------------

_EMPTY = b'{"status":"success","data":{"resultType":"matrix","result":[]}}'
_ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(_EMPTY)
) + _EMPTY


class _AnswerAtOnce(asyncio.Protocol):
    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.close()

    def on_message_complete(self) -> None:
        if self._transport is not None:
            self._transport.write(_ANSWER)


async def _serve_at_once(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_AnswerAtOnce, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


async def _probe(base: str) -> None:
    browser = Browser(base)
    try:
        await browser.get("/")
    finally:
        browser.close()


@contextmanager
def answer_at_once(port: int) -> Iterator[str]:
    """A process answering every request at once with an empty result; yields its base URL."""
    proc = subprocess.Popen([sys.executable, "-m", "bench.browser", "--answer-at-once", str(port)])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                asyncio.run(_probe(base))
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answer-at-once", type=int, required=True, metavar="PORT")
    args = parser.parse_args(argv)
    with suppress(KeyboardInterrupt):
        asyncio.run(_serve_at_once(args.answer_at_once))


if __name__ == "__main__":
    main()
