"""Bad upstreams give the status a user expects and leak nothing; clients that leave are propagated."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx

from collector.proxy.timing import RequestObservation
from simulator import SimulatorConfig, SimulatorServer
from tests.collector.proxy.conftest import RawUpstream, proxy_to


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _settle(seen: list[RequestObservation], n: int) -> None:
    for _ in range(200):
        if len(seen) >= n:
            return
        await asyncio.sleep(0.01)


def test_refused_is_502_without_the_address() -> None:
    async def go() -> tuple[httpx.Response, list[RequestObservation]]:
        port = _free_port()
        async with proxy_to(f"http://127.0.0.1:{port}") as (proxy, seen), httpx.AsyncClient() as client:
            response = await client.post(f"{proxy.url}/v1/chat/completions", json={"secret": "prompt"})
            await _settle(seen, 1)
            return response, seen

    response, seen = asyncio.run(go())
    assert response.status_code == 502
    assert b"127.0.0.1" not in response.content
    assert response.json()["error"]["code"] == 502
    assert (seen[0].status, seen[0].outcome) == (502, "upstream_refused")


def test_no_answer_in_time_is_504() -> None:
    _assert_hang_is_504(read_timeout_s=0.3)


def test_reset_mid_stream_cuts_the_client_connection() -> None:
    async def go() -> tuple[list[bytes], Exception | None, list[RequestObservation]]:
        got: list[bytes] = []
        error: Exception | None = None
        async with RawUpstream() as up, proxy_to(f"http://127.0.0.1:{up.port}") as (proxy, seen):
            async with httpx.AsyncClient() as client:
                try:
                    async with client.stream("GET", f"{proxy.url}/reset") as response:
                        async for part in response.aiter_raw():
                            got.append(part)
                except httpx.HTTPError as exc:
                    error = exc
            await _settle(seen, 1)
            return got, error, seen

    got, error, seen = asyncio.run(go())
    assert b"".join(got).startswith(b"data: ")  # the first token arrived
    assert isinstance(error, httpx.RemoteProtocolError)  # a truncated stream is not passed off as whole
    assert (seen[0].status, seen[0].outcome) == (200, "upstream_reset")
    assert seen[0].ttft_ms is not None


def test_too_large_body_is_413_and_never_reaches_the_upstream() -> None:
    async def go() -> tuple[httpx.Response, int]:
        async with (
            RawUpstream() as up,
            proxy_to(f"http://127.0.0.1:{up.port}", max_body_bytes=1000) as (
                proxy,
                _,
            ),
            httpx.AsyncClient() as client,
        ):
            response = await client.post(f"{proxy.url}/echo", content=b"x" * 5000)
            return response, len(up.requests)

    response, upstream_requests = asyncio.run(go())
    assert response.status_code == 413
    assert upstream_requests == 0


def test_client_disconnect_aborts_the_engine_request() -> None:
    async def go() -> tuple[list[RequestObservation], str | None]:
        sim = SimulatorServer(SimulatorConfig(seed=1, ttft_median_ms=20, itl_median_ms=50,
                                              output_tokens_min=40, output_tokens_max=40))  # fmt: skip
        port = await sim.start()
        async with proxy_to(f"http://127.0.0.1:{port}") as (proxy, seen):
            body = {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}], "stream": True}
            async with (
                httpx.AsyncClient() as client,
                client.stream("POST", f"{proxy.url}/v1/chat/completions", json=body) as response,
            ):
                async for _ in response.aiter_raw():
                    break  # leave after the first chunk; 40 tokens x 50 ms would take 2 s
            t0 = time.monotonic()
            while not sim.served and time.monotonic() - t0 < 2.0:
                await asyncio.sleep(0.02)
            await _settle(seen, 1)
            reason = sim.served[0].finish_reason if sim.served else None
            elapsed = time.monotonic() - t0
        await sim.stop()
        assert elapsed < 1.0, elapsed
        return seen, reason

    seen, reason = asyncio.run(go())
    assert reason == "abort"  # the engine saw the client leave
    assert seen[0].outcome == "client_disconnect"


def test_total_timeout_before_the_answer_is_504() -> None:
    _assert_hang_is_504(read_timeout_s=60, total_timeout_s=0.3)


def _assert_hang_is_504(**timeouts: float) -> None:
    """An upstream that never answers: the client gets 504 and the request is recorded as a timeout."""

    async def go() -> tuple[httpx.Response, list[RequestObservation]]:
        async with (
            RawUpstream() as up,
            proxy_to(f"http://127.0.0.1:{up.port}", **timeouts) as (proxy, seen),
            httpx.AsyncClient() as client,
        ):
            response = await client.get(f"{proxy.url}/hang")
            await _settle(seen, 1)
            return response, seen

    response, seen = asyncio.run(go())
    assert response.status_code == 504
    assert (seen[0].status, seen[0].outcome) == (504, "upstream_timeout")


def test_total_timeout_mid_stream_cuts_the_client_connection() -> None:
    async def go() -> tuple[bytes, Exception | None, list[RequestObservation]]:
        got = b""
        error: Exception | None = None
        async with (
            RawUpstream(drip_s=0.1, drip_tokens=10) as up,  # 1 s of tokens, each well within read_timeout
            proxy_to(f"http://127.0.0.1:{up.port}", total_timeout_s=0.35) as (proxy, seen),
            httpx.AsyncClient() as client,
        ):
            try:
                async with client.stream("GET", f"{proxy.url}/drip") as response:
                    async for part in response.aiter_raw():
                        got += part
            except httpx.HTTPError as exc:
                error = exc
            await _settle(seen, 1)
            return got, error, seen

    got, error, seen = asyncio.run(go())
    assert got.startswith(b"data: ")  # tokens before the deadline were passed on
    assert b"[DONE]" not in got
    assert isinstance(error, httpx.RemoteProtocolError)
    assert (seen[0].status, seen[0].outcome) == (200, "upstream_timeout")
