"""simulator.server and the wire: raw SSE shape, several servers in one loop, stop(), the CLI."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from simulator import SimulatorConfig, SimulatorServer, start_simulators
from simulator.__main__ import _parser, config_from_args

ROOT = Path(__file__).resolve().parents[2]


def test_raw_sse_stream_shape() -> None:
    async def go() -> str:
        server = SimulatorServer(SimulatorConfig(output_tokens_min=3, output_tokens_max=3))
        await server.start()
        try:
            async with httpx.AsyncClient(base_url=server.url) as client:
                response = await client.post(
                    "/v1/chat/completions",
                    json={
                        "model": "sim-model",
                        "messages": [{"role": "user", "content": "x"}],
                        "stream": True,
                    },
                )
                assert response.headers["content-type"].startswith("text/event-stream")
                return response.text
        finally:
            await server.stop()

    text = asyncio.run(go())
    events = text.split("\n\n")
    assert events[-1] == ""
    assert events[-2] == "data: [DONE]"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-2]]
    assert all(e.startswith("data: ") for e in events[:-1])
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [len(c["choices"][0]["delta"].get("content", "").split()) for c in chunks[1:4]] == [1, 1, 1]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    assert all("usage" not in c for c in chunks)


def test_many_servers_in_one_loop_and_stop_twice() -> None:
    async def go() -> list[int]:
        servers = await start_simulators([SimulatorConfig(model_name=f"m{i}") for i in range(3)])
        async with httpx.AsyncClient() as client:
            for i, server in enumerate(servers):
                response = await client.post(
                    server.url + "/v1/completions", json={"model": f"m{i}", "prompt": "a", "max_tokens": 2}
                )
                assert response.status_code == 200
        counts = [len(s.served) for s in servers]
        for server in servers:
            await server.stop()
            await server.stop()
        return counts

    assert asyncio.run(go()) == [1, 1, 1]


def test_stop_before_start_is_safe() -> None:
    asyncio.run(SimulatorServer().stop())


def test_port_in_use_raises() -> None:
    async def go() -> None:
        first = SimulatorServer()
        port = await first.start()
        try:
            second = SimulatorServer(port=port)
            try:
                await second.start()
            except OSError:
                return
            raise AssertionError("second server bound a port in use")
        finally:
            await first.stop()

    asyncio.run(go())


def test_cli_options_become_config() -> None:
    args = _parser().parse_args(["--port", "9", "--ttft-median-ms", "80", "--seed", "3", "--model-name", "x"])
    config = config_from_args(args)
    assert (args.port, config.ttft_median_ms, config.seed, config.model_name) == (9, 80.0, 3, "x")
    assert config.itl_median_ms == SimulatorConfig().itl_median_ms


def test_cli_serves() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "simulator", "--port", str(port)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
                break
            except httpx.TransportError:
                assert proc.poll() is None
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert "vllm:num_requests_running" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_client_disconnect_is_recorded_as_abort() -> None:
    config = SimulatorConfig(itl_median_ms=50, output_tokens_min=20, output_tokens_max=20)

    async def go() -> tuple[list[object], str]:
        server = SimulatorServer(config)
        await server.start()
        try:
            async with httpx.AsyncClient(base_url=server.url) as client:
                body = {"model": "sim-model", "messages": [{"role": "user", "content": "x"}], "stream": True}
                async with client.stream("POST", "/v1/chat/completions", json=body) as response:
                    async for _ in response.aiter_bytes():
                        break
                for _ in range(100):
                    if server.served:
                        break
                    await asyncio.sleep(0.01)
                metrics = (await client.get("/metrics")).text
            return list(server.served), metrics
        finally:
            await server.stop()

    served, metrics = asyncio.run(go())
    [record] = served
    assert record.finish_reason == "abort"  # type: ignore[attr-defined]
    assert record.completion_tokens < 20  # type: ignore[attr-defined]
    assert 'vllm:num_requests_running{engine="0",model_name="sim-model"} 0.0' in metrics
    assert 'finished_reason="abort",model_name="sim-model"} 1.0' in metrics
