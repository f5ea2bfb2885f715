"""A raw upstream with misbehaviours on demand, and a proxy in front of it, on loopback port 0."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from collector.config import ProxyConfig
from collector.proxy import IngressProxy, RequestObservation

SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
    b"connection: close\r\n\r\n"
)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def token(text: str) -> bytes:
    return b'data: {"choices":[{"index":0,"delta":{"content":"%s"}}]}\n\n' % text.encode()


class RawUpstream:
    """Routes by path: ``/reset`` (one token then RST), ``/hang`` (never answers), ``/drip``
    (a token every ``drip_s``), ``/echo`` (the request body back, with its headers counted),
    anything else 200 "ok". One exchange per connection (it says ``connection: close``).
    ``closed_early`` counts connections the proxy closed on us."""

    def __init__(self, drip_s: float = 0.05, drip_tokens: int = 5) -> None:
        self.drip_s = drip_s
        self.drip_tokens = drip_tokens
        self.requests: list[tuple[bytes, dict[bytes, bytes]]] = []
        self.closed_early = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            target = lines[0].split(b" ")[1]
            headers = {
                k.strip().lower(): v.strip() for k, _, v in (ln.partition(b":") for ln in lines[1:] if ln)
            }
            body = b""
            if b"content-length" in headers:
                body = await reader.readexactly(int(headers[b"content-length"]))
            self.requests.append((target, headers))
            path = target.split(b"?")[0]
            if path == b"/reset":
                writer.write(SSE_HEAD + chunk(token("a")))
                await writer.drain()
                await asyncio.sleep(0.05)
                writer.transport.abort()
                return
            if path == b"/hang":
                await asyncio.sleep(3600)
            if path == b"/drip":
                writer.write(SSE_HEAD)
                for i in range(self.drip_tokens):
                    await asyncio.sleep(self.drip_s)
                    writer.write(chunk(token(str(i))))
                    await writer.drain()
                writer.write(chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
                await writer.drain()
                return
            reply = body if path == b"/echo" else b"ok"
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/octet-stream\r\n"
                         b"content-length: %d\r\nx-upstream: 1\r\nconnection: close\r\n\r\n"
                         b"%s" % (len(reply), reply))  # fmt: skip
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            self.closed_early += 1
        finally:
            writer.close()

    async def __aenter__(self) -> RawUpstream:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()


@contextlib.asynccontextmanager
async def proxy_to(
    upstream: str, **config: object
) -> AsyncIterator[tuple[IngressProxy, list[RequestObservation]]]:
    seen: list[RequestObservation] = []
    config_ = ProxyConfig(listen="127.0.0.1:0", upstream=upstream, **config)  # type: ignore[arg-type]
    proxy = IngressProxy(config_, {"service_id": "svc"}, on_request=seen.append)
    await proxy.start()
    try:
        yield proxy, seen
    finally:
        await proxy.stop()
