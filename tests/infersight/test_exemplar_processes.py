"""`infersight sidecar` with its ingress proxy ships exemplars to `infersight server` over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import httpx
import pytest

from simulator.server import SimulatorServer
from tests.infersight.test_processes import _free_port, _start, _stop

TRACE = "5b8efff798038103d269b633813fc60c"


async def _scenario(tmp_path: Path) -> None:
    sim = SimulatorServer()
    sim_port = await sim.start()
    api_port, proxy_port = _free_port(), _free_port()
    (tmp_path / "infersight.yaml").write_text(
        f"""
store: {{dsn: "chdb://{tmp_path / "data"}"}}
server: {{listen: "127.0.0.1:{api_port}"}}
scrape: {{interval: 1s, timeout: 1s}}
sidecar: {{ship_to: "http://127.0.0.1:{api_port}"}}
buffer: {{dir: "{tmp_path / "buffer"}"}}
proxy: {{listen: "127.0.0.1:{proxy_port}", upstream: "http://127.0.0.1:{sim_port}", flush_interval: 1s}}
targets:
  - url: http://127.0.0.1:{sim_port}/metrics
    engine: vllm
    allowed_ports: [{sim_port}]
    service_id: svc-ex
    source: pod-ex
"""
    )
    config = ["--config", str(tmp_path / "infersight.yaml")]
    server = _start(["server", *config], tmp_path / "server.log")
    sidecar = _start(["sidecar", *config], tmp_path / "sidecar.log")
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            body = {"model": "sim-model", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
            headers = {"traceparent": f"00-{TRACE}-a2fb4a1d1a96d312-01", "x-request-id": "req-ex-1"}
            # Exemplars are shipped best-effort (dropped while the server is not up): ask once the
            # server answers, and again below while none has arrived.
            ready = None
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and (ready is None or ready.status_code != 200):
                with contextlib.suppress(httpx.HTTPError):
                    ready = await client.get(f"http://127.0.0.1:{api_port}/-/ready")
                await asyncio.sleep(0.3)
            answered = None
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and answered is None:
                with contextlib.suppress(httpx.HTTPError):
                    url = f"http://127.0.0.1:{proxy_port}/v1/chat/completions"
                    answered = await client.post(url, json=body, headers=headers)
                if answered is None:
                    await asyncio.sleep(0.3)
            assert answered is not None
            assert answered.status_code == 200
            params = {
                "query": "infer_service_request_cost_bucket",
                "start": time.time() - 600,
                "end": time.time() + 600,
            }
            found: list = []
            deadline = time.monotonic() + 120
            asked = time.monotonic()
            while time.monotonic() < deadline and not found:
                await asyncio.sleep(0.5)
                if time.monotonic() - asked > 5:  # a flush whose send failed: the next one carries it again
                    asked = time.monotonic()
                    with contextlib.suppress(httpx.HTTPError):
                        await client.post(
                            f"http://127.0.0.1:{proxy_port}/v1/chat/completions", json=body, headers=headers
                        )
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    answer = await client.get(
                        f"http://127.0.0.1:{api_port}/api/v1/query_exemplars", params=params
                    )
                    found = answer.json().get("data") or []
            logs = (tmp_path / "server.log").read_text() + (tmp_path / "sidecar.log").read_text()
            assert found, logs
            exemplars = [e for item in found for e in item["exemplars"]]
            assert {"request_id": "req-ex-1", "trace_id": TRACE} in [e["labels"] for e in exemplars]
            assert found[0]["seriesLabels"]["service_id"] == "svc-ex"
    finally:
        assert _stop(sidecar) == 0
        assert _stop(server) == 0
        await sim.stop()


@pytest.mark.integration
def test_the_sidecars_exemplars_reach_the_server_and_are_queried(tmp_path: Path) -> None:
    asyncio.run(_scenario(tmp_path))
