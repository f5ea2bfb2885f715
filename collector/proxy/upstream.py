"""A lean HTTP/1.1 client for the proxy's one upstream: asyncio streams + h11, with a keep-alive pool.

Hand-written on purpose (the project prefers libraries), for what ``bench.proxy`` measured
(docs/collector.md): the proxy's CPU per streamed request (18 chunks) was 4.8-6.8 ms at 50 streams
and 8.7-9.9 ms at 200 through httpx (its pool scans every connection on each request, its anyio
layer costs per chunk), 2.4-2.6 ms through this. aiohttp's client measured within ~5 % of this,
but takes headers as ``str`` and writes them UTF-8 encoded, so a header byte that is not UTF-8
would not pass unchanged; h11 takes and gives bytes, and comes with uvicorn already.
What it does not do, by design: redirects, cookies, decompression, retries (a request may have
reached the engine), HTTP/2.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import h11

READ_BYTES = 1 << 16
MAX_HEAD_BYTES = 1 << 16  # the largest response head accepted
IDLE_EXPIRY_S = 4.0  # before uvicorn's (vLLM's, SGLang's) default 5 s keep-alive closes it under us
MAX_IDLE = 256


class UpstreamRefusedError(Exception):
    """No connection could be made: refused, unreachable, unknown name, TLS handshake failed."""


class UpstreamResetError(Exception):
    """The connection broke, or the upstream spoke bad HTTP, after it was made."""


class Connection:
    """One HTTP/1.1 connection, one exchange at a time.

    The read timeout is a watchdog armed once per exchange and re-armed only when it fires early
    (the deadline moves with each read): an ``asyncio.timeout`` per read costs ~5 % of the proxy's CPU.
    """

    __slots__ = ("deadline_s", "expires_s", "h11", "reader", "timed_out", "timeout_s", "watchdog", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)
        self.expires_s = 0.0  # when idle in the pool: not reused after this
        self.timeout_s = 0.0
        self.deadline_s = 0.0
        self.timed_out = False
        self.watchdog: asyncio.TimerHandle | None = None

    def arm(self, timeout_s: float) -> None:
        """Start timing reads: no bytes for ``timeout_s`` aborts the connection as timed out."""
        loop = asyncio.get_running_loop()
        self.timeout_s = timeout_s
        self.deadline_s = loop.time() + timeout_s
        self.watchdog = loop.call_at(self.deadline_s, self._check)

    def disarm(self) -> None:
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None

    def _check(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() < self.deadline_s:
            self.watchdog = loop.call_at(self.deadline_s, self._check)
            return
        self.watchdog = None
        self.timed_out = True
        self.writer.transport.abort()  # the pending read ends; next_event raises TimeoutError

    def abort(self) -> None:
        """Drop the connection now: the upstream sees the request cut off."""
        self.disarm()
        self.writer.transport.abort()

    async def next_event(self) -> h11.Event:
        """The next h11 event, reading as needed."""
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise UpstreamResetError(str(exc)) from exc
            if event is not h11.NEED_DATA:
                return event  # type: ignore[return-value]
            try:
                data = await self.reader.read(READ_BYTES)
            except OSError as exc:
                if self.timed_out:
                    raise TimeoutError from None
                raise UpstreamResetError(type(exc).__name__) from exc
            if self.timed_out:
                raise TimeoutError
            self.deadline_s = asyncio.get_running_loop().time() + self.timeout_s
            self.h11.receive_data(data)  # b"": the upstream closed; h11 says what that means


class Response:
    """The response head; ``read()`` gives the body as it arrives and frees the connection at its end."""

    __slots__ = ("_conn", "_upstream", "headers", "status")

    def __init__(self, upstream: Upstream, conn: Connection, head: h11.Response) -> None:
        self.status: int = head.status_code
        self.headers: list[tuple[bytes, bytes]] = head.headers.raw_items()  # names as the upstream wrote them
        self._upstream = upstream
        self._conn: Connection | None = conn

    async def read(self) -> bytes:
        """The body bytes that have arrived (all of them, at once), ``b""`` at the end."""
        conn = self._conn
        if conn is None:
            return b""
        event = await conn.next_event()
        if type(event) is h11.Data:
            return event.data  # type: ignore[no-any-return]
        if type(event) is h11.EndOfMessage:
            self._conn = None
            self._upstream.release(conn)
            return b""
        raise UpstreamResetError("the upstream closed the connection before the end of the body")

    def close(self) -> None:
        """Abandon the response: a connection not read to its end is closed, never reused."""
        if self._conn is not None:
            self._conn.abort()
            self._conn = None
            self._upstream.slots.release()


class Upstream:
    """``http(s)://host:port``, at most ``max_connections`` exchanges at a time.

    >>> upstream = Upstream("http://127.0.0.1:8000", connect_timeout_s=5, read_timeout_s=60)
    >>> response = await upstream.request(b"GET", b"/v1/models", [(b"accept", b"*/*")], b"")
    >>> while chunk := await response.read(): ...
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
        self.slots = asyncio.Semaphore(max_connections)
        self._idle: deque[Connection] = deque()

    async def request(
        self,
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterator[bytes],
    ) -> Response:
        """Send a request; return once the response head has arrived.

        ``headers`` go out as given after ``host``; an iterated body without a ``content-length``
        goes chunked. Raises ``UpstreamRefusedError``, ``UpstreamResetError`` or ``TimeoutError``;
        the connection is then closed.
        """
        await self.slots.acquire()
        conn: Connection | None = None
        try:
            conn = await self._connection()
            conn.arm(self.read_timeout_s)  # also bounds a body upload the upstream does not read
            await self._send(conn, method, target, headers, body)
            while True:
                event = await conn.next_event()
                if type(event) is h11.Response:
                    return Response(self, conn, event)  # type: ignore[arg-type]
                if type(event) is not h11.InformationalResponse:  # 1xx: the real answer follows
                    raise UpstreamResetError("the upstream closed the connection without answering")
        except BaseException:
            if conn is not None:
                conn.abort()
            self.slots.release()
            raise

    async def _send(
        self,
        conn: Connection,
        method: bytes,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes | AsyncIterator[bytes],
    ) -> None:
        target = self.prefix + target
        head = [(b"host", self.host_header), *headers]
        if not isinstance(body, bytes) and all(k != b"content-length" for k, _ in headers):
            head.append((b"transfer-encoding", b"chunked"))
        send, write = conn.h11.send, conn.writer.write
        try:
            if isinstance(body, bytes):  # one write: head and body together
                write(
                    send(h11.Request(method=method, target=target, headers=head)) + send(h11.Data(data=body))
                )
            else:
                write(send(h11.Request(method=method, target=target, headers=head)))
                async for chunk in body:
                    write(send(h11.Data(data=chunk)))
                    await conn.writer.drain()
                    conn.deadline_s = asyncio.get_running_loop().time() + conn.timeout_s
            write(send(h11.EndOfMessage()))
            await conn.writer.drain()
        except h11.LocalProtocolError as exc:  # e.g. a body that does not match its content-length
            raise UpstreamResetError(str(exc)) from exc
        except OSError as exc:
            if conn.timed_out:
                raise TimeoutError from None
            raise UpstreamResetError(type(exc).__name__) from exc

    async def _connection(self) -> Connection:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()  # the most recently used: the least likely to be closing
            if conn.expires_s > now and not conn.reader.at_eof() and not conn.writer.transport.is_closing():
                return conn
            conn.abort()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                reader, writer = await asyncio.open_connection(
                    self.host, self.port, ssl=self.ssl, limit=READ_BYTES
                )
        except TimeoutError:
            raise
        except OSError as exc:  # refused, unreachable, DNS, TLS (ssl.SSLError is an OSError)
            raise UpstreamRefusedError(type(exc).__name__) from exc
        return Connection(reader, writer)

    def release(self, conn: Connection) -> None:
        """The exchange on ``conn`` ended cleanly: keep the connection if both sides allow it."""
        self.slots.release()
        conn.disarm()
        if conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE and len(self._idle) < MAX_IDLE:
            conn.h11.start_next_cycle()
            conn.expires_s = time.monotonic() + IDLE_EXPIRY_S
            self._idle.append(conn)
        else:
            conn.abort()

    async def aclose(self) -> None:
        """Close the idle connections (exchanges in flight close with their responses)."""
        while self._idle:
            conn = self._idle.pop()
            with contextlib.suppress(OSError):
                conn.writer.close()
