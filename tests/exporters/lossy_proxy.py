"""An HTTP/1.1 proxy that loses answers: it forwards a request, the server handles it and answers,
and for some requests the proxy then drops the connection instead of passing the answer on — the
case of a batch the server stored whose sender never heard back, and so sends again.

    proxy = LossyProxy("http://127.0.0.1:9091", lose=lambda path, n: n % 3 == 0)
    proxy.start()            # its own event loop in a thread; proxy.url to send to
    proxy.lost               # {"/api/v1/sketches": 4, ...}: answers dropped after the server answered
    proxy.stop()

Only what the sidecar's client sends is understood: a request head, a ``Content-Length`` body.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from collections.abc import Callable

import httpx

from tests.store.clickhouse_server import free_port


class LossyProxy:
    def __init__(self, upstream: str, lose: Callable[[str, int], bool]) -> None:
        self.upstream = upstream.rstrip("/")
        self.lose = lose
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.seen: Counter[str] = Counter()  # requests per path that reached the server
        self.lost: Counter[str] = Counter()  # of those, answers dropped
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="lossy-proxy", daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._client: httpx.AsyncClient | None = None

    def start(self) -> LossyProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    async def _start(self) -> None:
        self._client = httpx.AsyncClient(timeout=60)
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            if self._client is not None:
                await self._client.aclose()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._client is not None
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
                length = int(next((v for k, v in headers.items() if k.lower() == "content-length"), "0"))
                body = await reader.readexactly(length)
                forward = {k: v for k, v in headers.items() if k.lower() in ("content-type", "authorization")}
                try:
                    answer = await self._client.request(
                        method, self.upstream + target, content=body, headers=forward
                    )
                except httpx.HTTPError:
                    writer.transport.abort()  # the server is down: the sender sees a dropped connection
                    return
                path = target.split("?", 1)[0]
                self.seen[path] += 1
                if self.lose(path, self.seen[path]):
                    self.lost[path] += 1
                    writer.transport.abort()  # stored by the server, answer never delivered
                    return
                data = answer.content
                writer.write(
                    f"HTTP/1.1 {answer.status_code} X\r\ncontent-type: "
                    f"{answer.headers.get('content-type', 'application/json')}\r\n"
                    f"content-length: {len(data)}\r\n\r\n".encode()
                    + data
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()
