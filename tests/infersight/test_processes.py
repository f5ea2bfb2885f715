"""`infersight server` and `infersight sidecar` as separate processes: batches cross over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import os
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


def _start(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "infersight.cli", *args],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=None if env is None else {**os.environ, **env},
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


ADMIN = "bootstrap-admin-key-0123456789abcdef"


async def _wait_answering(client: httpx.AsyncClient, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get("/-/ready")).status_code == 200:
                return
        await asyncio.sleep(0.3)
    raise AssertionError(log.read_text())


async def _read(client: httpx.AsyncClient, key: str, query: str) -> list:
    headers = {"Authorization": f"Bearer {key}"}
    body = (await client.get("/api/v1/query", params={"query": query}, headers=headers)).json()
    return body.get("data", {}).get("result", [])


async def _auth_scenario(tmp_path: Path) -> None:
    sim = SimulatorServer()
    sim_port = await sim.start()
    api_port = _free_port()
    (tmp_path / "server.yaml").write_text(
        f"""
store: {{dsn: "chdb://{tmp_path / "data"}"}}
server: {{listen: "127.0.0.1:{api_port}"}}
auth: {{enabled: true, admin_key: "${{INFERSIGHT_ADMIN_KEY}}"}}
"""
    )
    (tmp_path / "sidecar.yaml").write_text(
        f"""
scrape: {{interval: 1s, timeout: 1s}}
sidecar: {{ship_to: "http://127.0.0.1:{api_port}", api_key: "${{INFERSIGHT_KEY:-}}"}}
buffer: {{dir: "{tmp_path / "buffer"}"}}
targets:
  - url: http://127.0.0.1:{sim_port}/metrics
    engine: vllm
    allowed_ports: [{sim_port}]
    service_id: svc-auth
    project_id: team-a
    source: pod-auth
"""
    )
    config = ["--config", str(tmp_path / "sidecar.yaml")]
    server_config = ["--config", str(tmp_path / "server.yaml")]
    server = _start(["server", *server_config], tmp_path / "server.log", {"INFERSIGHT_ADMIN_KEY": ADMIN})
    sidecar = None
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}") as client:
            await _wait_answering(client, server, tmp_path / "server.log")
            admin = {"Authorization": f"Bearer {ADMIN}"}
            keys = {}
            for project, permission in (("team-a", "write"), ("team-a", "read"), ("team-b", "read")):
                answer = await client.post(
                    "/api/v1/admin/keys",
                    json={"project_id": project, "permissions": [permission]},
                    headers=admin,
                )
                assert answer.status_code == 200, answer.text
                keys[project, permission] = answer.json()["data"]["key"]
            # First with a key the server does not know: the scrapes wait in the buffer, none dropped.
            sidecar = _start(
                ["sidecar", *config], tmp_path / "sidecar-1.log", {"INFERSIGHT_KEY": "not-a-key"}
            )
            await client.post(f"{sim.url}/v1/completions", json={"prompt": "hi", "max_tokens": 4})
            query = 'infer_service_request_total{source="pod-auth"}'
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                assert not await _read(client, keys["team-a", "read"], query)
                await asyncio.sleep(1)
            assert _stop(sidecar) == 0
            switched_s = time.time()
            # Then with the project's write key: what was scraped meanwhile arrives too.
            sidecar = _start(
                ["sidecar", *config], tmp_path / "sidecar-2.log", {"INFERSIGHT_KEY": keys["team-a", "write"]}
            )
            # Points scraped by the refused run (before the switch) arrive from its buffer.
            deadline = time.monotonic() + 60
            result: list = []
            while time.monotonic() < deadline and not (result and result[0]["values"][0][0] < switched_s - 2):
                await asyncio.sleep(0.5)
                result = await _read(client, keys["team-a", "read"], f"{query}[10m]")
            logs = "".join(p.read_text() for p in tmp_path.glob("*.log"))
            assert result, logs
            assert result[0]["metric"]["project_id"] == "team-a"
            assert result[0]["values"][0][0] < switched_s - 2, logs
            assert not await _read(client, keys["team-b", "read"], query)
    finally:
        if sidecar is not None:
            _stop(sidecar)
        assert _stop(server) == 0
        await sim.stop()


@pytest.mark.integration
def test_sidecar_ships_with_its_projects_key_and_keeps_scrapes_a_refused_key_held_back(
    tmp_path: Path,
) -> None:
    asyncio.run(_auth_scenario(tmp_path))
