"""What the proxy forwards: the same bytes, unbuffered, headers and query intact, WebSockets too."""

from __future__ import annotations

import asyncio
import os
import time

import httpx
import pytest

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
    pytest.importorskip("websockets")  # optional dependency (docs/collector.md)
    from websockets.asyncio.client import connect
    from websockets.asyncio.server import ServerConnection, serve

    async def echo(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    async def go() -> tuple[list[str | bytes], dict[str, float]]:
        async with serve(echo, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]  # type: ignore[index]
            async with proxy_to(f"http://127.0.0.1:{port}") as (proxy, _):
                async with connect(proxy.url.replace("http", "ws") + "/v1/ws") as ws:
                    await ws.send("hello")
                    first = await ws.recv()
                    await ws.send(b"\x00\x01binary")
                    second = await ws.recv()
                    await ws.send("three")
                    await ws.recv()
                counted = {
                    dict(s.labels)["direction"]: s.value
                    for s in proxy.samples()
                    if s.name == "infersight_proxy_websocket_messages_total"
                }
                return [first, second], counted

    messages, counted = asyncio.run(go())
    assert messages == ["hello", b"\x00\x01binary"]
    assert counted == {"to_upstream": 3, "to_client": 3}  # messages relayed, per direction


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


def test_slow_client_slows_the_upstream_read_not_the_proxy_memory() -> None:
    size = 64 << 20  # more than every socket buffer on the way can hold

    async def go() -> tuple[float | None, int]:
        finished: list[float] = []

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
            block = b"x" * (1 << 20)
            for _ in range(size >> 20):
                writer.write(block)
                await writer.drain()  # blocks while the proxy does not read
            finished.append(time.monotonic())
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with (
            proxy_to(f"http://127.0.0.1:{port}") as (proxy, _),
            httpx.AsyncClient(timeout=30) as client,
            client.stream("GET", f"{proxy.url}/big") as response,
        ):
            t0 = time.monotonic()
            await asyncio.sleep(1.0)  # a client that does not read for a second
            done_while_paused = finished[0] - t0 if finished else None
            got = 0
            async for part in response.aiter_raw():
                got += len(part)
        server.close()
        return done_while_paused, got

    done_while_paused, got = asyncio.run(go())
    assert done_while_paused is None  # the upstream could not hand over 64 MB to a paused client
    assert got == size


def test_chunked_json_lines_are_timed() -> None:
    lines = [b'{"model":"m","response":"%d","done":false}\n' % i for i in range(3)]
    lines.append(b'{"model":"m","response":"","done":true,"prompt_eval_count":9,"eval_count":3}\n')

    async def go() -> list[RequestObservation]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n"
            )
            for line in lines:
                await asyncio.sleep(0.03)
                writer.write(b"%x\r\n%s\r\n" % (len(line), line))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with proxy_to(f"http://127.0.0.1:{port}") as (proxy, seen), httpx.AsyncClient() as client:
            response = await client.post(f"{proxy.url}/api/generate", json={"model": "m", "prompt": "p"})
            assert response.content == b"".join(lines)
            await asyncio.sleep(0.05)
        server.close()
        return seen

    [obs] = asyncio.run(go())
    assert obs.ttft_ms is not None
    assert 25 <= obs.ttft_ms <= 200
    assert len(obs.per_token_ms) == 2
    assert (obs.input_tokens, obs.output_tokens) == (9, 3)  # the engine's own counts win
