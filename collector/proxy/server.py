"""The proxy's ASGI app: forward each request to the upstream with httpx, streaming both ways.

What it promises, and how:

- bytes unchanged: request and response bodies are passed as they come (the transport's raw stream: no
  decompression, no re-encoding); only hop-by-hop headers (RFC 9110 §7.6.1) are dropped;
- no buffering: each upstream chunk is sent to the client as it arrives; uvicorn's flow control
  makes a slow client slow the upstream read down, so memory stays bounded;
- client disconnects reach the upstream: a watcher waits for ``http.disconnect`` and cancels the
  forwarding task, which closes the upstream connection (the engine sees the abort);
- bad upstreams give the status a user expects, with a body that names no address: refused /
  unreachable → 502, no answer in time → 504; a reset after the response started aborts the
  client connection (a clean end would pass a truncated stream off as complete);
- request bodies over ``max_body_bytes`` → 413; bodies never go to the log.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from loguru import logger

from collector.config import ProxyConfig
from collector.proxy.sse import StreamScanner, Usage, usage_of
from collector.proxy.timing import RequestObservation, StreamTimer, observe_request
from collector.proxy.ws import relay_websocket
from collector.serve import AbortConnection

HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"te", b"trailer", b"upgrade",
     b"proxy-authenticate", b"proxy-authorization", b"host"}
)  # fmt: skip
STREAM_TYPES = (b"text/event-stream", b"application/x-ndjson", b"application/jsonl", b"application/json-seq")
USAGE_COPY_BYTES = 1 << 20
SMALL_BODY_BYTES = 64 << 10  # a non-streamed body is copied up to this size to read its usage

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


def _is_stream(headers: httpx.Headers) -> bool:
    ctype = headers.get("content-type", "").lower().encode()
    if ctype.startswith(STREAM_TYPES):
        return True
    return ctype.startswith(b"application/json") and "content-length" not in headers


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
        self._last_warned: dict[str, float] = {}
        # httpx's transport without the client around it: no cookies, redirects, auth or hooks to
        # run per request (a proxy wants none of them), which saves ~0.3 ms of added TTFT
        # idle upstream connections are dropped after 4 s, before uvicorn's (vLLM's, SGLang's)
        # default 5 s keep-alive closes them under us: a POST on a connection the server is
        # closing fails, and is not retried (it may have reached the engine)
        limits = httpx.Limits(
            max_connections=config.max_connections, max_keepalive_connections=256, keepalive_expiry=4.0
        )
        self.transport = httpx.AsyncHTTPTransport(limits=limits, trust_env=False, verify=config.verify_tls)
        self.timeouts = httpx.Timeout(config.read_timeout_s, connect=config.connect_timeout_s, pool=None)

    async def aclose(self) -> None:
        await self.transport.aclose()

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
                await relay_websocket(self.upstream, scope, receive, send)
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
        url = self.upstream + scope.get("raw_path", scope["path"].encode()).decode("latin-1")
        if scope.get("query_string"):
            url += "?" + scope["query_string"].decode("latin-1")
        try:
            content = await self._content(dict(scope["headers"]), receive, body_done)
            request = httpx.Request(
                scope["method"],
                url,
                headers=headers,
                content=content,
                extensions={"timeout": self.timeouts.as_dict()},
            )
            async with asyncio.timeout(self.config.total_timeout_s):
                response = await self.transport.handle_async_request(request)
                try:
                    await self._relay(response, send, state)
                finally:
                    await response.aclose()
        except _ClientGoneError:
            state.outcome = "client_disconnect"
        except _BodyTooLargeError:
            await _reply(send, state, *_error(413, "request body too large"), "ok")
        except httpx.TimeoutException:
            await self._fail(send, state, 504, "upstream_timeout", "the upstream did not answer in time")
        except TimeoutError:
            await self._fail(send, state, 504, "upstream_timeout", "the upstream did not finish in time")
        except (httpx.TransportError, httpx.InvalidURL) as exc:
            refused = isinstance(exc, httpx.ConnectError)
            outcome = "upstream_refused" if refused else "upstream_reset"
            message = "the upstream is unreachable or closed the connection"
            await self._fail(send, state, 502, outcome, message)

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
            # out in one write (an async body costs ~0.1 ms more per request); big ones stream
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

    async def _relay(self, response: httpx.Response, send: Send, state: _Exchange) -> None:
        state.status = response.status_code
        state.streamed = _is_stream(response.headers)
        headers = [(k, v) for k, v in response.headers.raw if k.lower() not in HOP_BY_HOP]
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        state.started = True
        scanner = StreamScanner() if state.streamed else None
        copy: list[bytes] = []
        copied = 0
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)  # the async transport's raw body
        async for chunk in stream:  # raw bytes, as they come
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
