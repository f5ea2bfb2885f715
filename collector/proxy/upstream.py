"""The proxy's HTTP/1.1 client for its one upstream: ``asyncio.Protocol`` connections in a keep-alive pool.

Callback-driven on purpose, for the proxy's CPU per request (``bench.proxy``, docs/collector.md):
the response head is parsed once, then every read of the body goes straight from
``data_received`` to the exchange's ``on_body`` (no coroutine, no task switch, no per-read
timeout object); chunked bodies are decoded by ``http1.ChunkedDecoder``. Before this, asyncio
streams + h11 (~2.2 ms of proxy CPU per streamed request with uvicorn in front), before that httpx
(~5-10 ms). What it does not do, by design: redirects, cookies, decompression, HTTP/2, retries of
a request that may have reached the engine. One case is retried, by the handler (server.py): a
*reused* keep-alive connection that the upstream closes before any byte of the answer (``on_stale``).
Servers close idle keep-alive connections whenever they like (llama.cpp's right after a streamed
answer it announced ``Keep-Alive`` on), and the close can cross the next request on the wire;
nginx (``proxy_next_upstream error``), Envoy (``reset-before-request``) and Go's ``http.Transport``
send such a request again on a fresh connection.

An exchange is driven by a *handler* (the server side, server.py) with ``on_head(status, reason,
headers)``, ``on_body(data)``, ``on_end()``, ``on_failure(outcome)``, ``on_stale()``,
``on_tunnel(data)``, ``on_tunnel_closed()`` and ``pause_upload(paused)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import ssl
import time
from collections import deque
from typing import Protocol
from urllib.parse import urlsplit

from collector.proxy.http1 import (
    CHUNKED,
    MAX_HEAD_BYTES,
    UNTIL_CLOSE,
    ChunkedDecoder,
    Headers,
    ProtocolError,
    body_length,
    has_token,
    parse_response_head,
)

IDLE_EXPIRY_S = 4.0  # before uvicorn's (vLLM's, SGLang's) default 5 s keep-alive closes it under us
MAX_IDLE = 256

_IDLE, _HEAD, _BODY, _TUNNEL = range(4)
_LENGTH, _CHUNKED, _CLOSE = range(3)
_monotonic = time.monotonic  # asyncio's loop.time(): deadlines are on this clock


class UpstreamRefusedError(Exception):
    """No connection could be made: refused, unreachable, unknown name, TLS handshake failed."""


class Handler(Protocol):
    """What receives one exchange's response (server.py's client connection)."""

    def on_head(self, status: int, reason: bytes, headers: Headers) -> None: ...
    def on_body(self, data: bytes) -> None: ...
    def on_end(self, last: bytes) -> None: ...
    def on_failure(self, outcome: str) -> None: ...
    def on_stale(self) -> None:
        """A reused connection closed before any byte of the answer: send again, or fail it."""

    def on_tunnel(self, data: bytes) -> None: ...
    def on_tunnel_closed(self) -> None: ...
    def pause_upload(self, paused: bool) -> None: ...


class Connection(asyncio.Protocol):
    """One HTTP/1.1 connection to the upstream, one exchange at a time.

    Timeouts are one watchdog timer per connection, kept across the exchanges it serves and
    re-armed only when it fires early: each read moves the read deadline, and the exchange's end-to-end
    deadline (``until_s``) is checked alongside; a timer per read, or two per request, would cost
    more than they do.
    """

    def __init__(self, pool: Upstream) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.handler: Handler | None = None  # the exchange in progress; None when idle
        self.state = _IDLE
        self.buf = b""  # a response head still incomplete
        self.mode = _LENGTH
        self.left = 0  # body bytes still to come (content-length framing)
        self.decoder: ChunkedDecoder | None = None
        self.keep_alive = True
        self.reused = False  # it served an exchange before: the upstream may have closed it since
        self.answered = False  # a byte of this exchange's answer arrived
        self.request_done = False  # the whole request (with its body) went out
        self.chunked_upload = False
        self.head_request = False
        self.upgrade = False
        self.closed = False
        self.timed_out = False
        self.reading_paused = False
        self.timeout_s = 0.0
        self.deadline_s = 0.0  # no read until then: timed out
        self.until_s = math.inf  # the exchange's end-to-end deadline
        self.expires_s = 0.0  # when idle in the pool: not reused after this
        self.watchdog: asyncio.TimerHandle | None = None
        self.watchdog_at = 0.0

    # -- the exchange, from the handler's side

    def begin(
        self,
        handler: Handler,
        method: bytes,
        target: bytes,
        headers: Headers,
        body: bytes | None,
        *,
        chunked: bool = False,
        upgrade: bool = False,
        until_s: float = math.inf,
    ) -> None:
        """Send a request head (+ ``body`` when given whole; ``None``: ``send_body`` follows).

        ``until_s``: when the whole exchange times out (``loop.time()`` clock), reads or not.
        """
        assert self.transport is not None
        self.handler = handler
        self.state = _HEAD
        self.buf = b""
        self.timed_out = False
        self.answered = False
        self.head_request = method == b"HEAD"
        self.upgrade = upgrade
        self.chunked_upload = chunked
        self.request_done = body is not None
        self._arm(self.pool.read_timeout_s, until_s)  # also bounds an upload the upstream does not read
        pool = self.pool
        parts = [method, b" ", pool.prefix, target, b" HTTP/1.1\r\nhost: ", pool.host_header, b"\r\n"]
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
        if chunked:
            parts.append(b"transfer-encoding: chunked\r\n")
        parts.append(b"\r\n")
        if body:
            parts.append(body)
        self.transport.write(b"".join(parts))

    def send_body(self, data: bytes) -> None:
        """A piece of a streamed request body."""
        if self.handler is None or self.transport is None or not data:
            return
        self.deadline_s = _monotonic() + self.timeout_s
        self.transport.write(b"%x\r\n%b\r\n" % (len(data), data) if self.chunked_upload else data)

    def end_body(self) -> None:
        if self.handler is None or self.transport is None:
            return
        if self.chunked_upload:
            self.transport.write(b"0\r\n\r\n")
        self.request_done = True

    def pause_reading(self, paused: bool) -> None:
        """Flow control: stop (start) reading the response while the client's buffer is full."""
        if self.transport is None or self.closed or paused == self.reading_paused:
            return
        self.reading_paused = paused
        if paused:
            self.transport.pause_reading()
        else:
            self.deadline_s = _monotonic() + self.timeout_s  # a slow client's time is not the upstream's
            self.transport.resume_reading()

    def abandon(self) -> None:
        """Drop the exchange now: the connection closes, the upstream sees the request cut off."""
        self._detach(reusable=False)

    def tunnel_write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def close_tunnel(self) -> None:
        if self.transport is not None:
            self.transport.close()  # what was written still goes out

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        state = self.state
        if state == _BODY:
            self.deadline_s = _monotonic() + self.timeout_s
            self._body(data)
        elif state == _HEAD:
            self.deadline_s = _monotonic() + self.timeout_s
            self.answered = True
            self._head(data)
        elif state == _TUNNEL:
            if self.handler is not None:
                self.handler.on_tunnel(data)
        else:  # bytes while idle: nothing to answer; not safe to reuse
            self.closed = True
            if self.transport is not None:
                self.transport.abort()

    def eof_received(self) -> bool:
        return False  # close; connection_lost says what it meant

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._disarm()
        if self.handler is None:
            return
        if self.state == _BODY and self.mode == _CLOSE:
            self._done(b"")  # a body without framing ends with the connection
        elif self.state == _TUNNEL:
            handler = self.handler
            self._detach(reusable=False)
            handler.on_tunnel_closed()
        elif self.state == _HEAD and self.reused and not self.answered and not self.timed_out:
            handler = self.handler
            self._detach(reusable=False)
            handler.on_stale()
        else:
            self._fail("upstream_timeout" if self.timed_out else "upstream_reset")

    def pause_writing(self) -> None:
        if self.handler is not None:
            self.handler.pause_upload(True)

    def resume_writing(self) -> None:
        if self.handler is not None:
            self.handler.pause_upload(False)

    # -- parsing

    def _head(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD_BYTES:
                    self._fail("upstream_reset")
                else:
                    self.buf = buf
                return
            try:
                version, status, reason, headers = parse_response_head(buf[:end])
                length = (
                    0 if self.head_request or status in (204, 304) else body_length(headers, request=False)
                )
            except ProtocolError:
                self._fail("upstream_reset")
                return
            buf = buf[end + 4 :]
            if 100 <= status < 200 and status != 101:
                continue  # informational (100 Continue, 103 Early Hints): the real answer follows
            break
        self.buf = b""
        handler = self.handler
        assert handler is not None
        if status == 101:
            if not self.upgrade:
                self._fail("upstream_reset")
                return
            self.state = _TUNNEL
            self._disarm()  # a WebSocket may stay quiet for as long as it likes
            handler.on_head(status, reason, headers)
            if buf and self.handler is not None:
                handler.on_tunnel(buf)
            return
        self.keep_alive = version == b"HTTP/1.1" and not has_token(headers, b"connection", b"close")
        if length == CHUNKED:
            self.mode, self.decoder = _CHUNKED, ChunkedDecoder()
        elif length == UNTIL_CLOSE:
            self.mode, self.keep_alive = _CLOSE, False
        else:
            self.mode, self.left = _LENGTH, length
        self.state = _BODY
        handler.on_head(status, reason, headers)
        if self.handler is None:
            return  # the handler gave up on it
        if length == 0:
            self._done(buf)
        elif buf:
            self._body(buf)

    def _body(self, data: bytes) -> None:
        handler = self.handler
        assert handler is not None
        mode = self.mode
        if mode == _LENGTH:
            left = self.left
            if len(data) < left:
                self.left = left - len(data)
                handler.on_body(data)
                return
            self.left = 0
            if len(data) > left:
                data, rest = data[:left], data[left:]
            else:
                rest = b""
            self._done(rest, data)
        elif mode == _CHUNKED:
            assert self.decoder is not None
            try:
                parts, rest_or_none = self.decoder.feed(data)
            except ProtocolError:
                self._fail("upstream_reset")
                return
            data = parts[0] if len(parts) == 1 else b"".join(parts)
            if rest_or_none is not None:
                self._done(rest_or_none, data)  # the last piece and the end go out together
            elif data:
                handler.on_body(data)
        else:
            handler.on_body(data)

    # -- endings

    def _done(self, rest: bytes, last: bytes = b"") -> None:
        """The response ended; ``last``: its final body bytes, ``rest``: bytes after it (none expected)."""
        handler = self.handler
        assert handler is not None
        self._detach(reusable=self.keep_alive and self.request_done and not rest)
        handler.on_end(last)

    def _fail(self, outcome: str) -> None:
        handler = self.handler
        assert handler is not None
        self._detach(reusable=False)
        handler.on_failure(outcome)

    def _detach(self, *, reusable: bool) -> None:
        """The exchange is over: hand the connection (or its slot) back to the pool, once."""
        if self.handler is None:
            return
        self.handler = None
        self.state = _IDLE
        self.decoder = None  # the watchdog stays: the next exchange re-arms it without a new timer
        if self.reading_paused and reusable:
            self.pause_reading(False)  # an idle connection reads, to see the upstream close it
        self.pool.release(self, reusable=reusable)

    # -- read timeout

    def _arm(self, timeout_s: float, until_s: float) -> None:
        self.timeout_s = timeout_s
        self.deadline_s = _monotonic() + timeout_s
        self.until_s = until_s
        due = min(self.deadline_s, until_s)
        if self.watchdog is not None and self.watchdog_at > due:  # pending, but too late for this one
            self._disarm()
        if self.watchdog is None:
            self.watchdog = asyncio.get_running_loop().call_at(due, self._check)
            self.watchdog_at = due

    def _disarm(self) -> None:
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None

    def _check(self) -> None:
        self.watchdog = None
        if self.handler is None or self.transport is None or self.closed:
            return  # idle: the next exchange arms it again
        now = _monotonic()
        if self.reading_paused:  # a slow client holds the response back, not the upstream
            self.deadline_s = now + self.timeout_s
        due = min(self.deadline_s, self.until_s)
        if now < due:
            self.watchdog = asyncio.get_running_loop().call_at(due, self._check)
            self.watchdog_at = due
            return
        self.timed_out = True
        self.transport.abort()  # connection_lost reports upstream_timeout


class Upstream:
    """``http(s)://host[:port][/prefix]``, at most ``max_connections`` exchanges at a time.

    >>> upstream = Upstream("http://127.0.0.1:8000", connect_timeout_s=5, read_timeout_s=60)
    >>> conn = upstream.try_acquire() or await upstream.acquire()
    >>> conn.begin(handler, b"GET", b"/v1/models", [(b"accept", b"*/*")], b"")
    """

    def __init__(
        self,
        url: str,
        *,
        connect_timeout_s: float,
        read_timeout_s: float,
        max_connections: int = 1000,
        verify_tls: bool = True,
    ) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.host_header = parts.netloc.rpartition("@")[2].encode("idna")
        self.prefix = parts.path.rstrip("/").encode()  # an upstream URL's path goes before each target
        self.ssl: ssl.SSLContext | None = None
        if parts.scheme == "https":
            self.ssl = ssl.create_default_context()
            if not verify_tls:
                self.ssl.check_hostname = False
                self.ssl.verify_mode = ssl.CERT_NONE
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.max_connections = max_connections
        self.active = 0  # exchanges holding a slot
        self._idle: deque[Connection] = deque()
        self._waiters: deque[asyncio.Future[None]] = deque()

    def try_acquire(self) -> Connection | None:
        """An idle connection with a free slot, now; ``None``: ``acquire()`` must wait or connect."""
        if self.active >= self.max_connections or self._waiters:
            return None
        conn = self._pop_idle()
        if conn is not None:
            self.active += 1
        return conn

    async def acquire(self, *, fresh: bool = False) -> Connection:
        """A connection for one exchange: waits for a slot, reuses an idle one (not when ``fresh``)
        or connects.

        Raises ``UpstreamRefusedError`` or ``TimeoutError`` (no connection within the connect timeout).
        """
        if self.active >= self.max_connections or self._waiters:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter  # the slot is handed over with the result
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._release_slot()
                else:
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(waiter)
                raise
        else:
            self.active += 1
        try:
            return (None if fresh else self._pop_idle()) or await self._connect()
        except BaseException:
            self._release_slot()
            raise

    def _pop_idle(self) -> Connection | None:
        now = _monotonic()
        while self._idle:
            conn = self._idle.pop()  # the most recently used: the least likely to be closing
            if conn.expires_s > now and not conn.closed:
                return conn
            if conn.transport is not None:
                conn.transport.abort()
        return None

    async def _connect(self) -> Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                _, conn = await loop.create_connection(
                    lambda: Connection(self), self.host, self.port, ssl=self.ssl
                )
        except TimeoutError:
            raise
        except OSError as exc:  # refused, unreachable, DNS, TLS (ssl.SSLError is an OSError)
            raise UpstreamRefusedError(type(exc).__name__) from exc
        return conn

    def _release_slot(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes on
                return
        self.active -= 1

    def release(self, conn: Connection, *, reusable: bool) -> None:
        """The exchange on ``conn`` ended: keep the connection when it can serve another one."""
        self._release_slot()
        if reusable and not conn.closed and len(self._idle) < MAX_IDLE:
            conn.expires_s = _monotonic() + IDLE_EXPIRY_S
            conn.reused = True
            self._idle.append(conn)
        elif conn.transport is not None and not conn.closed:
            conn.closed = True
            conn.transport.abort()

    async def aclose(self) -> None:
        """Close the idle connections (exchanges in flight close with their responses)."""
        while self._idle:
            conn = self._idle.pop()
            if conn.transport is not None:
                conn.transport.close()
