"""The proxy's ASGI app: forward each request to the upstream (upstream.py), streaming both ways.

What it promises, and how:

- bytes unchanged: request and response bodies are passed as they come (no decompression, no
  re-encoding), headers as bytes; only hop-by-hop headers (RFC 9110 §7.6.1) are dropped;
- no buffering: each upstream chunk is sent to the client as it arrives; uvicorn's flow control
  makes a slow client slow the upstream read down, so memory stays bounded;
- client disconnects reach the upstream: a watcher waits for ``http.disconnect`` and cancels the
  forwarding task, which closes the upstream connection (the engine sees the abort);
- bad upstreams give the status a user expects, with a body that names no address: refused /
  unreachable / TLS failure → 502, no connection or answer in time → 504; a reset or stall after
  the response started aborts the client connection (a clean end would pass a truncated stream
  off as complete);
- request bodies over ``max_body_bytes`` → 413; bodies never go to the log.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

from loguru import logger

from collector.config import ProxyConfig
from collector.proxy.sse import StreamScanner, Usage, usage_of
from collector.proxy.timing import RequestObservation, StreamTimer, observe_request
from collector.proxy.upstream import Response, Upstream, UpstreamRefusedError, UpstreamResetError
from collector.proxy.ws import relay_websocket
from collector.serve import AbortConnection

HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"te", b"trailer", b"upgrade",
     b"proxy-authenticate", b"proxy-authorization", b"host"}
)  # fmt: skip
STREAM_TYPES = (b"text/event-stream", b"application/x-ndjson", b"application/jsonl", b"application/json-seq")
USAGE_COPY_BYTES = 1 << 20
SMALL_BODY_BYTES = 64 << 10  # a request body with a content-length up to this size is read whole

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


class _BodyTooLargeError(Exception):
    pass


class _ClientGoneError(Exception):
    pass


def _error(status: int, message: str) -> tuple[int, bytes]:
    kind = {413: "PayloadTooLarge", 502: "BadGateway", 504: "GatewayTimeout"}[status]
    return status, json.dumps({"error": {"message": message, "type": kind, "code": status}}).encode()


def _is_stream(headers: list[tuple[bytes, bytes]]) -> bool:
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
    """ASGI app forwarding to ``config.upstream``; ``on_request`` gets one record per request.

    >>> app = ProxyApp(ProxyConfig(upstream="http://127.0.0.1:8000"), on_request=print)
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
        self.connections = 0
        self.ws_messages: Counter[str] = Counter()  # WebSocket messages relayed, by direction
        self._last_warned: dict[str, float] = {}
        self.client = Upstream(
            self.upstream,
            connect_timeout_s=config.connect_timeout_s,
            read_timeout_s=config.read_timeout_s,
            max_connections=config.max_connections,
            verify_tls=config.verify_tls,
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.connections += 1
            try:
                await self._http(scope, receive, send)
            finally:
                self.connections -= 1
        elif scope["type"] == "websocket":
            self.connections += 1
            try:
                await relay_websocket(self.upstream, scope, receive, send, self.ws_messages)
            finally:
                self.connections -= 1

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        # forwarding runs in this task (one task less per request: ~0.1 ms of TTFT); the watcher
        # cancels it when the client leaves before the response is complete
        state = _Exchange(scope, StreamTimer(self.monotonic()))
        body_done = asyncio.Event()
        me = asyncio.current_task()
        assert me is not None

        def on_watcher_done(task: asyncio.Task[None]) -> None:
            if not task.cancelled() and task.exception() is None and not state.complete:
                state.client_gone = True
                me.cancel()

        watcher = asyncio.create_task(_watch_disconnect(receive, body_done))
        watcher.add_done_callback(on_watcher_done)
        try:
            await self._forward(scope, receive, send, state, body_done)
        except asyncio.CancelledError:
            if not state.client_gone:
                raise
            me.uncancel()
            state.outcome = "client_disconnect"
        finally:
            state.complete = True
            watcher.cancel()
            self._record(state)

    def _record(self, state: _Exchange) -> None:
        obs = observe_request(
            ts_s=self.wall(),
            start_s=state.timer.start_s,
            end_s=self.monotonic(),
            method=state.method,
            path=state.path,
            status=state.status,
            timer=state.timer if state.streamed else None,  # no stream: the first token is not visible
            usage=state.usage,
            outcome=state.outcome,
        )
        try:
            self.on_request(obs)
        except Exception:
            logger.exception("proxy: the per-request callback failed; continuing")

    async def _forward(
        self, scope: Scope, receive: Receive, send: Send, state: _Exchange, body_done: asyncio.Event
    ) -> None:
        headers = [(k, v) for k, v in scope["headers"] if k not in HOP_BY_HOP]
        target: bytes = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        try:
            content = await self._content(dict(scope["headers"]), receive, body_done)
            async with asyncio.timeout(self.config.total_timeout_s):
                response = await self.client.request(scope["method"].encode(), target, headers, content)
                try:
                    await self._relay(response, send, state)
                finally:
                    response.close()  # no-op when read to the end; else the engine sees the abort
        except _ClientGoneError:
            state.outcome = "client_disconnect"
        except _BodyTooLargeError:
            await _reply(send, state, *_error(413, "request body too large"), "ok")
        except TimeoutError:  # connect or first byte past its timeout, a stall between chunks, total
            await self._fail(send, state, 504, "upstream_timeout", "the upstream did not answer in time")
        except UpstreamRefusedError:
            await self._fail(send, state, 502, "upstream_refused", "the upstream is unreachable")
        except UpstreamResetError:
            await self._fail(send, state, 502, "upstream_reset", "the upstream closed the connection")

    async def _fail(self, send: Send, state: _Exchange, status: int, outcome: str, message: str) -> None:
        # One warning per outcome a minute: an engine that is down would otherwise flood the log.
        now = self.monotonic()
        level = "WARNING" if now - self._last_warned.get(outcome, -60.0) >= 60.0 else "DEBUG"
        if level == "WARNING":
            self._last_warned[outcome] = now
        logger.bind(path=state.path).log(
            level, "proxy: {} {} → {} ({})", state.method, state.path, status, outcome
        )
        if state.started:
            state.outcome = outcome
            raise AbortConnection(outcome)  # headers went out: cut the client connection
        await _reply(send, state, *_error(status, message), outcome)

    async def _content(
        self, headers: dict[bytes, bytes], receive: Receive, body_done: asyncio.Event
    ) -> AsyncIterator[bytes] | bytes:
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.config.max_body_bytes:
            raise _BodyTooLargeError
        if length.isdigit() and int(length) <= SMALL_BODY_BYTES:
            # a small body is already in the server's buffer: read it whole so the request goes
            # out in one write; big ones stream
            return b"".join([chunk async for chunk in self._body(receive, body_done)])
        if length or b"transfer-encoding" in headers:
            return self._body(receive, body_done)
        body_done.set()
        return b""

    async def _body(self, receive: Receive, body_done: asyncio.Event) -> AsyncIterator[bytes]:
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                body_done.set()
                raise _ClientGoneError  # the client left while sending
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.config.max_body_bytes:
                body_done.set()
                raise _BodyTooLargeError
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                body_done.set()
                return

    async def _relay(self, response: Response, send: Send, state: _Exchange) -> None:
        state.status = response.status
        state.streamed = _is_stream(response.headers)
        headers = [(k, v) for k, v in response.headers if k.lower() not in HOP_BY_HOP]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        state.started = True
        scanner = StreamScanner() if state.streamed else None
        copy: list[bytes] = []
        copied = 0
        read = response.read  # raw bytes as they come: whatever has arrived, at once
        while chunk := await read():
            now = self.monotonic()
            if scanner is not None:
                found = scanner.feed(chunk)
                if found.steps:
                    state.timer.content(now, found.steps)
                state.usage = found.usage or state.usage
            elif copied < USAGE_COPY_BYTES:
                copy.append(chunk)
                copied += len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        state.complete = True  # before the last send: the watcher may wake as soon as it is out
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        if scanner is not None:
            state.usage = scanner.finish().usage or state.usage
        elif copy and copied <= USAGE_COPY_BYTES:
            state.usage = _usage_of_body(b"".join(copy))


class _Exchange:
    """Mutable state of one request while it is forwarded."""

    __slots__ = (
        "client_gone", "complete", "method", "outcome", "path",
        "started", "status", "streamed", "timer", "usage",
    )  # fmt: skip

    def __init__(self, scope: Scope, timer: StreamTimer) -> None:
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.timer = timer
        self.status = 0
        self.streamed = False
        self.started = False
        self.usage: Usage | None = None
        self.outcome = "ok"
        self.complete = False  # the last body message went out
        self.client_gone = False


def _usage_of_body(body: bytes) -> Usage | None:
    try:
        return usage_of(json.loads(body))
    except ValueError:
        return None


async def _watch_disconnect(receive: Receive, body_done: asyncio.Event) -> None:
    """Return when the client disconnects (after the request body has been read)."""
    await body_done.wait()
    while (await receive())["type"] != "http.disconnect":
        pass


async def _reply(send: Send, state: _Exchange, status: int, body: bytes, outcome: str) -> None:
    state.status, state.outcome, state.started = status, outcome, True
    state.complete = True
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
