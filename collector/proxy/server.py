"""The proxy's server: a bare ``asyncio.Protocol`` HTTP/1.1 server forwarding each request upstream.

Callback-driven end to end for the proxy's CPU per request (``bench.proxy``, docs/collector.md):
a read from the upstream goes from ``data_received`` (upstream.py) through ``on_body`` straight to
the client's ``transport.write``, timed and scanned on the way, with no coroutine, task switch or
ASGI message per chunk; the request head is parsed once (http1.py). It replaced an ASGI app on
uvicorn (~2.2 ms of proxy CPU per streamed request).

What it promises, and how:

- bytes unchanged: request and response bodies are passed as they come (no decompression, no
  re-encoding), headers as bytes; only hop-by-hop headers (RFC 9110 §7.6.1) and ``host`` are
  dropped (the framing is the proxy's own on each side: chunked bodies are re-chunked);
- no buffering: each upstream read is written to the client as it arrives; transport flow
  control both ways (a full client buffer pauses reading the upstream, a full upstream buffer
  pauses reading the client's upload), so memory stays bounded;
- client disconnects reach the upstream: the client connection's loss aborts the upstream
  connection (the engine sees the abort), or cancels the connect in progress;
- bad upstreams give the status a user expects, with a body that names no address: refused /
  unreachable / TLS failure → 502, no connection or answer in time → 504; a reset or stall after
  the response started aborts the client connection (a clean end would pass a truncated stream
  off as complete);
- a reused keep-alive connection the upstream closed before any byte of its answer (upstream.py's
  ``on_stale``) is retried once on a fresh connection, when the request is whole in memory (no
  body, or one up to ``SMALL_BODY_BYTES``); a streamed upload is not (its bytes are gone) and
  nothing has gone to the client yet by construction; counted in ``upstream_retries``;
- a stream whose final event went out (``data: [DONE]``, or an engine's own last payload: sse.py)
  is complete however the client then leaves: the ``openai`` client closes on ``[DONE]``, often
  before the upstream's end of the chunked body arrives;
- request bodies over ``max_body_bytes`` → 413; bodies never go to the log; malformed requests →
  400 (the strict parsing of http1.py: nothing ambiguous is passed on to be read differently);
- WebSocket (any ``Upgrade``) passes through: the upgrade request goes upstream with its
  ``Upgrade``/``Connection`` headers; on 101 both connections become a byte tunnel, whose
  WebSocket messages are counted per direction (ws.py).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from urllib.parse import unquote

from loguru import logger

from collector.config import ProxyConfig
from collector.proxy.exemplars import new_request_id, request_id_of, trace_id_of
from collector.proxy.http1 import (
    CHUNKED,
    MAX_HEAD_BYTES,
    ChunkedDecoder,
    Headers,
    ProtocolError,
    body_length,
    parse_request_head,
)
from collector.proxy.sse import StreamScanner, Usage, id_of, usage_of
from collector.proxy.timing import RequestObservation, StreamTimer, observe_request
from collector.proxy.upstream import Connection, Upstream, UpstreamRefusedError
from collector.proxy.ws import FrameCounter

HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"te", b"trailer", b"upgrade",
     b"proxy-authenticate", b"proxy-authorization", b"host"}
)  # fmt: skip
STREAM_TYPES = (b"text/event-stream", b"application/x-ndjson", b"application/jsonl", b"application/json-seq")
USAGE_COPY_BYTES = 1 << 20
SMALL_BODY_BYTES = 64 << 10  # a request body with a content-length up to this size goes up in one write
MAX_PIPELINED_BYTES = 1 << 16  # a next request's bytes held while one is answered before reading pauses
DISCARD_MAX_BYTES = 16 << 20  # after a 413, a body up to this size is read and dropped (else: close)

_HEAD, _WHOLE, _BODY, _WAIT, _DISCARD, _TUNNEL, _CLOSED = range(7)
# why reading from the client is paused (bits): a pipelined request waits, the upload waits
# for the upstream to take it, the upstream connection is being made
_PIPELINE, _UPLOAD, _CONNECTING = 1, 2, 4

_KINDS = {
    400: "BadRequest", 413: "PayloadTooLarge", 431: "RequestHeaderFieldsTooLarge", 501: "NotImplemented",
    502: "BadGateway", 504: "GatewayTimeout", 505: "HTTPVersionNotSupported",
}  # fmt: skip
_FAILURES = {
    "upstream_timeout": (504, "the upstream did not answer in time"),
    "upstream_refused": (502, "the upstream is unreachable"),
    "upstream_reset": (502, "the upstream closed the connection"),
}


def _error(status: int, message: str, *, close: bool = False) -> bytes:
    body = json.dumps({"error": {"message": message, "type": _KINDS[status], "code": status}}).encode()
    return b"HTTP/1.1 %d %b\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%b\r\n%b" % (
        status, _KINDS[status].encode(), len(body), b"connection: close\r\n" if close else b"", body,
    )  # fmt: skip


def _is_stream(headers: Headers) -> bool:
    ctype, sized = b"", False
    for name, value in headers:
        name = name.lower()
        if name == b"content-type":
            ctype = value.lower()
        elif name == b"content-length":
            sized = True
    if ctype.startswith(STREAM_TYPES):
        return True
    return ctype.startswith(b"application/json") and not sized


class ProxyApp:
    """The proxy server for ``config.upstream``; ``on_request`` gets one record per request.

    >>> app = ProxyApp(ProxyConfig(upstream="http://127.0.0.1:8000"), on_request=print)
    >>> port = await app.start("127.0.0.1", 0)
    >>> await app.stop(); await app.aclose()
    """

    def __init__(
        self,
        config: ProxyConfig,
        on_request: Callable[[RequestObservation], None],
        *,
        monotonic: Callable[[], float] = time.perf_counter,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.on_request = on_request
        self.monotonic = monotonic
        self.wall = wall
        self.upstream = config.upstream.rstrip("/")
        self.connections = 0  # requests in flight + open tunnels
        self.ws_messages: Counter[str] = Counter()  # WebSocket messages relayed, by direction
        self.upstream_retries = 0  # requests sent again after a reused connection closed unanswered
        self.stopping = False
        self._last_warned: dict[str, float] = {}
        self._server: asyncio.Server | None = None
        self._clients: set[_Client] = set()
        self.client = Upstream(
            self.upstream,
            connect_timeout_s=config.connect_timeout_s,
            read_timeout_s=config.read_timeout_s,
            max_connections=config.max_connections,
            verify_tls=config.verify_tls,
        )

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port. A port in use raises OSError naming the address."""
        loop = asyncio.get_running_loop()
        self.stopping = False
        self._server = await loop.create_server(lambda: _Client(self), host, port, backlog=4096)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self, grace_s: float = 2.0) -> None:
        """Stop listening, close idle connections, let requests in flight end for ``grace_s``; safe twice."""
        server, self._server = self._server, None
        if server is None:
            return
        self.stopping = True
        server.close()
        for client in list(self._clients):
            if client.ex is None:
                client.transport.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        while any(c.ex is not None for c in self._clients) and loop.time() < deadline:
            await asyncio.sleep(0.01)
        for client in list(self._clients):
            client.transport.abort()
        await asyncio.sleep(0)  # connection_lost callbacks run
        await server.wait_closed()

    async def aclose(self) -> None:
        await self.client.aclose()

    def warn(self, outcome: str, ex: _Exchange, status: int) -> None:
        # One warning per outcome a minute: an engine that is down would otherwise flood the log.
        now = self.monotonic()
        level = "WARNING" if now - self._last_warned.get(outcome, -60.0) >= 60.0 else "DEBUG"
        if level == "WARNING":
            self._last_warned[outcome] = now
        path = ex.path()
        logger.bind(path=path).log(level, "proxy: {} {} → {} ({})", ex.method.decode(), path, status, outcome)

    def record(self, ex: _Exchange) -> None:
        obs = observe_request(
            ts_s=self.wall(),
            start_s=ex.timer.start_s,
            end_s=ex.final_s or self.monotonic(),
            method=ex.method.decode("latin-1"),
            path=ex.path(),
            status=ex.status,
            timer=ex.timer if ex.scanner is not None else None,  # no stream: the first token is not visible
            usage=ex.usage,
            outcome=ex.outcome,
            request_id=ex.request_id
            or (ex.scanner.response_id if ex.scanner is not None else "")
            or new_request_id(),
            trace_id=ex.trace_id,
        )
        try:
            self.on_request(obs)
        except Exception:
            logger.exception("proxy: the per-request callback failed; continuing")


class _Exchange:
    """One request while it is forwarded."""

    __slots__ = (
        "chunk_out", "complete", "copied", "copy", "decoder", "final_s", "headers", "keep_alive", "left",
        "method", "outcome", "replay", "request_id", "retried", "scanner", "started", "status", "target",
        "task", "timer", "trace_id", "tunnel", "until_s", "upgrade", "usage", "version",
    )  # fmt: skip

    def __init__(self, method: bytes, target: bytes, version: bytes, start_s: float) -> None:
        self.method = method
        self.target = target
        self.version = version
        self.timer = StreamTimer(start_s)
        self.status = 0
        self.started = False  # the response head went to the client
        self.complete = False
        self.outcome = "ok"
        self.keep_alive = True
        self.upgrade = False
        self.tunnel = False
        self.headers: Headers = []  # the request headers that go upstream
        self.left = 0  # request body bytes still to come (content-length)
        self.decoder: ChunkedDecoder | None = None  # a chunked request body
        self.chunk_out = False  # the response goes to the client chunked
        self.scanner: StreamScanner | None = None
        self.usage: Usage | None = None
        self.copy: list[bytes] = []  # the start of a non-streamed body, for its usage
        self.copied = 0
        self.task: asyncio.Task[None] | None = None  # connecting to the upstream
        self.until_s = 0.0  # the end-to-end deadline (loop.time() clock)
        self.replay: bytes | None = None  # the whole request body as sent (None: streamed, not replayable)
        self.retried = False
        self.final_s = 0.0  # when the stream's final event went out (0: not yet)
        self.request_id = ""  # for exemplars (exemplars.py): the client's, the engine's, the body's
        self.trace_id = ""  # of the client's traceparent, which goes upstream unchanged

    def path(self) -> str:
        raw = self.target.partition(b"?")[0].decode("latin-1")
        return unquote(raw) if "%" in raw else raw


class _Client(asyncio.Protocol):
    """One client connection: requests one at a time (pipelined ones wait), each to an upstream connection."""

    def __init__(self, app: ProxyApp) -> None:
        self.app = app
        self.transport: asyncio.Transport = None  # type: ignore[assignment]  # set by connection_made
        self.buf = b""  # bytes read and not yet used
        self.phase = _HEAD
        self.ex: _Exchange | None = None
        self.upstream: Connection | None = None
        self.blocks = 0  # why reading is paused
        self.writing_paused = False
        self.discard_left = 0
        self.frames_up: FrameCounter | None = None
        self.frames_down: FrameCounter | None = None

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.app._clients.add(self)

    def data_received(self, data: bytes) -> None:
        phase = self.phase
        if phase == _TUNNEL:
            self._tunnel_up(data)
            return
        if phase == _BODY and self.upstream is not None:
            self._upload(data)
            return
        self.buf = self.buf + data if self.buf else data
        if phase == _HEAD:
            self._next_request()
        elif phase == _WHOLE:
            self._whole_body()
        elif phase == _DISCARD:
            self._discard()
        elif phase == _WAIT and len(self.buf) > MAX_PIPELINED_BYTES:
            self._block(_PIPELINE, True)
        # _BODY while connecting: held in buf (reading is paused) until the connection is there

    def eof_received(self) -> bool:
        return False  # the client is gone: close (connection_lost follows)

    def connection_lost(self, exc: Exception | None) -> None:
        self.app._clients.discard(self)
        phase, self.phase = self.phase, _CLOSED
        if phase == _TUNNEL and self.upstream is not None:
            up, self.upstream = self.upstream, None
            up.close_tunnel()
        ex = self.ex
        if ex is not None and not ex.complete:
            # A stream whose final event went out is whole, however the client leaves after it.
            self._finish(None if ex.scanner is not None and ex.scanner.final else "client_disconnect")

    def pause_writing(self) -> None:
        self.writing_paused = True
        if self.upstream is not None:
            self.upstream.pause_reading(True)

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self.upstream is not None:
            self.upstream.pause_reading(False)

    # -- requests

    def _next_request(self) -> None:
        buf = self.buf
        if buf[:1] in (b"\r", b"\n"):
            buf = buf.lstrip(b"\r\n")  # empty lines before a request are ignored (RFC 9112 §2.2)
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            self.buf = buf
            if len(buf) > MAX_HEAD_BYTES:
                self._refuse(431)
            return
        app = self.app
        start_s = app.monotonic()
        self.buf = buf[end + 4 :]
        try:
            method, target, version, headers = parse_request_head(buf[:end])
            length = body_length(headers, request=True)
        except ProtocolError as exc:
            self._refuse(exc.status)
            return
        ex = _Exchange(method, target, version, start_s)
        forward: Headers = []
        tokens = b""
        upgrade: bytes | None = None
        expect = False
        for name, value in headers:
            lname = name.lower()
            if lname in HOP_BY_HOP:
                if lname == b"connection":
                    tokens += b"," + value.lower()
                elif lname == b"upgrade":
                    upgrade = value
                continue
            if lname == b"expect" and value.lower() == b"100-continue":
                expect = True
            elif lname == b"x-request-id":
                ex.request_id = request_id_of(value)
            elif lname == b"traceparent":
                ex.trace_id = trace_id_of(value)
            forward.append((name, value))
        connection = {t.strip() for t in tokens.split(b",")}
        ex.keep_alive = version == b"HTTP/1.1" and b"close" not in connection and not app.stopping
        if upgrade is not None and b"upgrade" in connection and version == b"HTTP/1.1":
            ex.upgrade = True
            forward += [(b"connection", b"upgrade"), (b"upgrade", upgrade)]
        ex.headers = forward
        self.ex = ex
        app.connections += 1
        if length > app.config.max_body_bytes:
            self._too_large(length)
            return
        if length == 0:
            self.phase = _WAIT
            self._start(b"")
            return
        if expect:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # type: ignore[union-attr]
        if 0 < length <= SMALL_BODY_BYTES:
            self.phase, ex.left = _WHOLE, length
            self._whole_body()
            return
        self.phase = _BODY
        if length == CHUNKED:
            ex.decoder = ChunkedDecoder()
        else:
            ex.left = length
        self._start(None)

    def _whole_body(self) -> None:
        ex = self.ex
        assert ex is not None
        if len(self.buf) < ex.left:
            return
        body, self.buf = self.buf[: ex.left], self.buf[ex.left :]
        self.phase = _WAIT
        self._start(body)
        if len(self.buf) > MAX_PIPELINED_BYTES:
            self._block(_PIPELINE, True)

    def _start(self, body: bytes | None) -> None:
        """Hand the request to an upstream connection: an idle one now, else once one is there."""
        ex = self.ex
        assert ex is not None
        app = self.app
        loop = asyncio.get_running_loop()
        ex.until_s = loop.time() + app.config.total_timeout_s  # the upstream connection's watchdog keeps it
        conn = app.client.try_acquire()
        if conn is not None:
            self._send(conn, body)
        else:
            self._block(_CONNECTING, True)
            ex.task = loop.create_task(self._connect(ex, body))

    async def _connect(self, ex: _Exchange, body: bytes | None, *, fresh: bool = False) -> None:
        try:
            async with asyncio.timeout_at(ex.until_s):
                conn = await self.app.client.acquire(fresh=fresh)
        except (TimeoutError, UpstreamRefusedError) as exc:
            ex.task = None
            if self.ex is ex:
                self._fail("upstream_timeout" if isinstance(exc, TimeoutError) else "upstream_refused")
            return
        ex.task = None
        if self.ex is not ex or ex.complete:  # pragma: no cover - finishing cancels this task first
            self.app.client.release(conn, reusable=True)
            return
        self._send(conn, body)
        self._block(_CONNECTING, False)

    def _send(self, conn: Connection, body: bytes | None) -> None:
        ex = self.ex
        assert ex is not None
        self.upstream = conn
        ex.replay = body
        if self.writing_paused:
            conn.pause_reading(True)
        conn.begin(
            self,
            ex.method,
            ex.target,
            ex.headers,
            body,
            chunked=ex.decoder is not None,
            upgrade=ex.upgrade,
            until_s=ex.until_s,
        )
        if self.phase == _BODY and self.buf and self.upstream is conn:
            data, self.buf = self.buf, b""
            self._upload(data)

    def _upload(self, data: bytes) -> None:
        """A piece of a streamed request body from the client: on to the upstream."""
        ex, up = self.ex, self.upstream
        assert ex is not None
        assert up is not None
        rest: bytes | None = None
        if ex.decoder is not None:
            try:
                parts, rest = ex.decoder.feed(data)
            except ProtocolError:
                self._client_error(400, "malformed chunked request body")
                return
            if ex.decoder.size > self.app.config.max_body_bytes:
                self._client_error(413, "request body too large")
                return
            for part in parts:
                up.send_body(part)
        else:
            if len(data) >= ex.left:
                data, rest = data[: ex.left], data[ex.left :]
            ex.left -= len(data)
            up.send_body(data)
        if rest is not None:
            up.end_body()
            self.phase = _WAIT
            if rest:
                self.buf = rest
                if len(rest) > MAX_PIPELINED_BYTES:
                    self._block(_PIPELINE, True)

    def _discard(self) -> None:
        """After a 413: read the rest of the body and drop it, then the next request."""
        take = min(self.discard_left, len(self.buf))
        self.discard_left -= take
        self.buf = self.buf[take:]
        if not self.discard_left:
            self.phase = _HEAD
            self._block(_PIPELINE | _UPLOAD | _CONNECTING, False)
            if self.buf:
                self._next_request()

    # -- the upstream's side (upstream.Handler)

    def on_head(self, status: int, reason: bytes, headers: Headers) -> None:
        ex = self.ex
        assert ex is not None
        ex.status = status
        ex.started = True
        if status == 101:
            self._tunnel(reason, headers)
            return
        if _is_stream(headers):
            ex.scanner = StreamScanner()
        no_body = ex.method == b"HEAD" or status in (204, 304)
        parts = [b"HTTP/1.1 %d %b\r\n" % (status, reason)]
        sized = False
        for name, value in headers:
            lname = name.lower()
            if lname in HOP_BY_HOP:
                continue
            if lname == b"content-length":
                sized = True
            elif lname == b"x-request-id" and not ex.request_id:
                ex.request_id = request_id_of(value)
            parts += (name, b": ", value, b"\r\n")
        if not no_body and not sized:
            if ex.version == b"HTTP/1.1":
                parts.append(b"transfer-encoding: chunked\r\n")
                ex.chunk_out = True
            else:
                ex.keep_alive = False  # HTTP/1.0: the body ends when the connection does
        if not ex.keep_alive:
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        self.transport.write(b"".join(parts))

    def on_body(self, data: bytes) -> None:
        ex = self.ex
        assert ex is not None
        now = self.app.monotonic()
        self.transport.write(b"%x\r\n%b\r\n" % (len(data), data) if ex.chunk_out else data)
        self._scan(ex, data, now)

    def on_end(self, last: bytes) -> None:
        ex = self.ex
        assert ex is not None
        now = self.app.monotonic()
        self.upstream = None  # released to the pool already
        if ex.chunk_out:
            self.transport.write(b"%x\r\n%b\r\n0\r\n\r\n" % (len(last), last) if last else b"0\r\n\r\n")
        elif last:
            self.transport.write(last)
        if last:
            self._scan(ex, last, now)
        if ex.scanner is not None:
            ex.usage = ex.scanner.finish().usage or ex.usage
        elif ex.copy and ex.copied <= USAGE_COPY_BYTES:
            ex.usage, body_id = _usage_of_body(b"".join(ex.copy))
            ex.request_id = ex.request_id or body_id
        self._finish()

    @staticmethod
    def _scan(ex: _Exchange, data: bytes, now: float) -> None:
        scanner = ex.scanner
        if scanner is not None:
            if not scanner.done:
                found = scanner.feed(data)
                if found.steps:
                    ex.timer.content(now, found.steps)
                if found.usage is not None:
                    ex.usage = found.usage
                if scanner.final and not ex.final_s:
                    ex.final_s = now
        elif ex.copied < USAGE_COPY_BYTES:
            ex.copy.append(data)
            ex.copied += len(data)

    def on_failure(self, outcome: str) -> None:
        self.upstream = None
        self._fail(outcome)

    def on_stale(self) -> None:
        """The reused upstream connection closed unanswered: once more on a fresh one, if replayable."""
        self.upstream = None
        ex = self.ex
        assert ex is not None
        if ex.retried or ex.started or ex.replay is None or self.phase != _WAIT:
            self._fail("upstream_reset")
            return
        ex.retried = True
        self.app.upstream_retries += 1
        self._block(_CONNECTING, True)
        ex.task = asyncio.get_running_loop().create_task(self._connect(ex, ex.replay, fresh=True))

    def pause_upload(self, paused: bool) -> None:
        self._block(_UPLOAD, paused)

    def on_tunnel(self, data: bytes) -> None:
        assert self.frames_down is not None
        n = self.frames_down.feed(data)
        if n:
            self.app.ws_messages["to_client"] += n
        self.transport.write(data)

    def on_tunnel_closed(self) -> None:
        self.upstream = None
        self._finish()

    # -- WebSocket (any upgrade): a byte tunnel once the upstream said 101

    def _tunnel(self, reason: bytes, headers: Headers) -> None:
        ex = self.ex
        assert ex is not None
        ex.tunnel, ex.keep_alive = True, False
        self.phase = _TUNNEL
        self.frames_up, self.frames_down = FrameCounter(), FrameCounter()
        head = [b"HTTP/1.1 101 %b\r\n" % reason]
        for name, value in headers:
            head += (name, b": ", value, b"\r\n")
        head.append(b"\r\n")
        self.transport.write(b"".join(head))
        self._block(_PIPELINE | _UPLOAD | _CONNECTING, False)
        if self.buf:
            data, self.buf = self.buf, b""
            self._tunnel_up(data)

    def _tunnel_up(self, data: bytes) -> None:
        if self.upstream is None or self.frames_up is None:
            return
        n = self.frames_up.feed(data)
        if n:
            self.app.ws_messages["to_upstream"] += n
        self.upstream.tunnel_write(data)

    # -- endings

    def _finish(self, outcome: str | None = None) -> None:
        """The exchange is over (whichever way): record it, then the next request or close."""
        ex = self.ex
        if ex is None or ex.complete:
            return
        ex.complete = True
        if outcome is not None:
            ex.outcome = outcome
        if ex.task is not None:
            ex.task.cancel()
        self.ex = None
        self.app.connections -= 1
        up, self.upstream = self.upstream, None
        if up is not None:
            up.abandon()  # the upstream sees the request cut off
        if not ex.tunnel:
            self.app.record(ex)
        transport = self.transport
        if self.phase in (_WHOLE, _BODY):
            ex.keep_alive = False  # the rest of the request body was not read
        if transport.is_closing() or self.phase == _CLOSED:
            self.phase = _CLOSED
            return
        if not ex.keep_alive or self.app.stopping:
            self.phase = _CLOSED
            transport.close()  # what was written still goes out
            return
        if self.phase == _DISCARD:
            self._discard()  # then the next request
            return
        self.phase = _HEAD
        self._block(_PIPELINE | _UPLOAD | _CONNECTING, False)
        if self.buf:
            self._next_request()

    def _fail(self, outcome: str) -> None:
        ex = self.ex
        assert ex is not None
        status, message = _FAILURES[outcome]
        self.app.warn(outcome, ex, status)
        if ex.started:  # headers went out: cut the client connection
            self.transport.abort()
            self._finish(outcome)
        else:
            self._reply(status, message, outcome)

    def _reply(self, status: int, message: str, outcome: str) -> None:
        ex = self.ex
        assert ex is not None
        ex.status, ex.outcome, ex.started = status, outcome, True
        close = not ex.keep_alive or self.phase in (_WHOLE, _BODY)
        self.transport.write(_error(status, message, close=close))
        self._finish()

    def _too_large(self, length: int) -> None:
        """413 for a content-length over the limit; the body is then read and dropped unless huge."""
        ex = self.ex
        assert ex is not None
        if length - len(self.buf) <= DISCARD_MAX_BYTES:
            self.phase, self.discard_left = _DISCARD, length
        else:
            ex.keep_alive = False
        self._reply(413, "request body too large", "ok")

    def _client_error(self, status: int, message: str) -> None:
        """The client's upload went wrong after the upstream got the request: cut it there."""
        if self.upstream is not None:
            up, self.upstream = self.upstream, None
            up.abandon()
        ex = self.ex
        assert ex is not None
        if ex.started:
            self.transport.abort()
            self._finish()
        else:
            ex.keep_alive = False
            self._reply(status, message, "ok")

    def _refuse(self, status: int) -> None:
        """A request that cannot be read: answer, close, record nothing (no request was forwarded)."""
        self.phase = _CLOSED
        self.transport.write(_error(status, "malformed request", close=True))
        self.transport.close()

    def _block(self, bit: int, on: bool) -> None:
        before = self.blocks
        self.blocks = before | bit if on else before & ~bit
        transport = self.transport
        if bool(before) == bool(self.blocks) or transport.is_closing():
            return
        if self.blocks:
            transport.pause_reading()
        else:
            transport.resume_reading()


def _usage_of_body(body: bytes) -> tuple[Usage | None, str]:
    """The usage and ``id`` of a whole JSON answer (``None``, "" where it has none or is no JSON)."""
    try:
        obj = json.loads(body)
    except ValueError:
        return None, ""
    return usage_of(obj), id_of(obj) if isinstance(obj, dict) else ""
