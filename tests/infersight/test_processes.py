"""`infersight server` and `infersight sidecar` as separate processes: batches cross over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from simulator.server import SimulatorServer


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "infersight.cli", *args], stdout=log.open("wb"), stderr=subprocess.STDOUT
    )


def _stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


async def _scenario(tmp_path: Path) -> None:
    sim = SimulatorServer()
    sim_port = await sim.start()
    api_port = _free_port()
    (tmp_path / "infersight.yaml").write_text(
        f"""
store: {{dsn: "chdb://{tmp_path / "data"}"}}
server: {{listen: "127.0.0.1:{api_port}"}}
scrape: {{interval: 1s, timeout: 1s}}
sidecar: {{ship_to: "http://127.0.0.1:{api_port}"}}
targets:
  - url: http://127.0.0.1:{sim_port}/metrics
    engine: vllm
    allowed_ports: [{sim_port}]
    service_id: svc-proc
    source: pod-proc
"""
    )
    config = ["--config", str(tmp_path / "infersight.yaml")]
    server = _start(["server", *config], tmp_path / "server.log")
    sidecar = _start(["sidecar", *config], tmp_path / "sidecar.log")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}") as client:
            await client.post(f"{sim.url}/v1/completions", json={"prompt": "hi", "max_tokens": 4})
            deadline = time.monotonic() + 30
            result: list = []
            while time.monotonic() < deadline and not result:
                await asyncio.sleep(0.5)
                with contextlib.suppress(httpx.HTTPError):
                    query = 'infer_service_request_total{source="pod-proc"}'
                    body = (await client.get("/api/v1/query", params={"query": query})).json()
                    result = body.get("data", {}).get("result", [])
            assert result, (tmp_path / "server.log").read_text() + (tmp_path / "sidecar.log").read_text()
            assert result[0]["metric"]["service_id"] == "svc-proc"
            assert float(result[0]["value"][1]) >= 1
    finally:
        assert _stop(sidecar) == 0
        assert _stop(server) == 0
        await sim.stop()


@pytest.mark.integration
def test_sidecar_process_ships_to_server_process(tmp_path: Path) -> None:
    asyncio.run(_scenario(tmp_path))
