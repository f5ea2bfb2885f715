"""What the proxy forwards: the same bytes, unbuffered, headers and query intact, WebSockets too."""

from __future__ import annotations

import asyncio
import os
import time

import httpx
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from collector.proxy.timing import RequestObservation
from tests.collector.proxy.conftest import RawUpstream, proxy_to


def test_bytes_headers_and_query_pass_unchanged() -> None:
    body = os.urandom(300_000)  # large enough to stream, random so any change shows

    async def go() -> tuple[httpx.Response, RawUpstream]:
        async with RawUpstream() as up, proxy_to(f"http://127.0.0.1:{up.port}") as (proxy, _):
            async with httpx.AsyncClient() as client:
                response = await client.post(
                    f"{proxy.url}/echo?a=1&b=%2F",
                    content=body,
                    headers={"Authorization": "Bearer k", "X-Id": "7"},
                )
            return response, up

    response, up = asyncio.run(go())
    assert response.content == body
    assert response.headers["x-upstream"] == "1"
    assert "server" not in response.headers  # the proxy adds no header of its own
    target, headers = up.requests[0]
    assert target == b"/echo?a=1&b=%2F"
    assert headers[b"authorization"] == b"Bearer k"
    assert headers[b"x-id"] == b"7"


def test_stream_is_not_buffered() -> None:
    async def go() -> tuple[list[float], list[RequestObservation]]:
        arrivals: list[float] = []
        async with (
            RawUpstream(drip_s=0.1, drip_tokens=4) as up,
            proxy_to(f"http://127.0.0.1:{up.port}") as (
                proxy,
                seen,
            ),
        ):
            async with httpx.AsyncClient() as client, client.stream("GET", f"{proxy.url}/drip") as response:
                t0 = time.monotonic()
                async for part in response.aiter_raw():
                    if b"content" in part:
                        arrivals.append(time.monotonic() - t0)
            await asyncio.sleep(0.05)
            return arrivals, seen

    arrivals, seen = asyncio.run(go())
    assert len(arrivals) == 4
    assert arrivals[0] < 0.25  # the first token came out long before the stream ended (~0.4 s)
    obs = seen[0]
    assert obs.ttft_ms is not None
    assert 90 <= obs.ttft_ms <= 250
    assert len(obs.per_token_ms) == 3
    assert all(80 <= gap <= 250 for gap in obs.per_token_ms)
    assert obs.output_tokens == 4  # counted from the stream: no usage was sent
    assert obs.input_tokens is None


def test_websocket_upgrade_is_relayed() -> None:
    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async def go() -> list[str | bytes]:
        async with serve(echo, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]  # type: ignore[index]
            async with proxy_to(f"http://127.0.0.1:{port}") as (proxy, _):
                async with connect(proxy.url.replace("http", "ws") + "/v1/ws") as ws:
                    await ws.send("hello")
                    first = await ws.recv()
                    await ws.send(b"\x00\x01binary")
                    second = await ws.recv()
                return [first, second]

    assert asyncio.run(go()) == ["hello", b"\x00\x01binary"]


def test_live_connections_are_counted() -> None:
    async def go() -> tuple[int, int]:
        async with (
            RawUpstream(drip_s=0.1, drip_tokens=3) as up,
            proxy_to(f"http://127.0.0.1:{up.port}") as (
                proxy,
                _,
            ),
            httpx.AsyncClient() as client,
        ):
            tasks = [asyncio.create_task(client.get(f"{proxy.url}/drip")) for _ in range(3)]
            await asyncio.sleep(0.15)
            during = proxy.app.connections
            await asyncio.gather(*tasks)
            return during, proxy.app.connections

    assert asyncio.run(go()) == (3, 0)
