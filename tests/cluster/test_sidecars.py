"""Sidecars on the live cluster: two ``infersight sidecar`` processes, each shipping to a different
server, scrape one target each; either server answers for both pods' series."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import httpx
import pytest

from tests.cluster.live_cluster import InfersightServer, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.integration]

METRIC = "cluster_sidecar_gauge"


@pytest.fixture(scope="module")
def target() -> Iterator[int]:
    """A Prometheus text endpoint on a free port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f"# TYPE {METRIC} gauge\n{METRIC} 42\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_port
    server.shutdown()


def _sidecar(root: Path, port: int, pod: str, ship_to: str) -> subprocess.Popen[bytes]:
    root.mkdir(parents=True, exist_ok=True)
    settings = {
        "targets[0].url": f"http://127.0.0.1:{port}/metrics",
        "targets[0].allowed_ports": f"[{port}]",
        "targets[0].engine": "generic",
        "targets[0].service_id": "cluster-svc",
        "targets[0].source": pod,
        "sidecar.ship_to": ship_to,
        "scrape.interval": "1s",
        "scrape.timeout": "1s",
        "buffer.dir": str(root / "buffer"),
        "log_level": "WARNING",
    }
    args = [a for key, value in settings.items() for a in ("--set", f"{key}={value}")]
    command = [
        "setpriv",
        "--pdeathsig",
        "KILL",
        "--",
        str(Path(sys.executable).parent / "infersight"),
        "sidecar",
        *args,
    ]
    with open(root / "sidecar.log", "ab") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=root)


def _sources(url: str) -> set[str]:
    params = {"query": f'{METRIC}{{service_id="cluster-svc"}}'}
    answer = httpx.get(f"{url}/api/v1/query", params=params, timeout=30).json()
    return {s["metric"].get("source", "") for s in answer.get("data", {}).get("result", [])}


def test_sidecars_shipping_to_different_servers_are_read_from_either(
    servers: list[InfersightServer], target: int, tmp_path: Path
) -> None:
    sidecars = [
        _sidecar(tmp_path / f"sidecar-{i}", target, f"pod-{i}", server.url)
        for i, server in enumerate(servers)
    ]
    try:
        for server in servers:
            wait_for(lambda url=server.url: _sources(url) == {"pod-0", "pod-1"}, what="both pods' series")
    finally:
        for process in sidecars:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    os.kill(process.pid, signal.SIGKILL)
                    process.wait(10)
