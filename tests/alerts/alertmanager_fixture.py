"""A real Alertmanager on a loopback port, with a webhook receiver posting to an in-test HTTP sink."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from tests.alerts.tools import require

CONFIG = """\
route:
  receiver: sink
  group_by: [alertname, service_id]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: sink
    webhook_configs:
      - url: {url}
        send_resolved: true
"""


@dataclass
class Sink:
    """Webhook bodies received, in order."""

    received: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, predicate: Any, timeout_s: float = 60) -> dict[str, Any]:
        deadline = time.time() + timeout_s
        while time.time() < deadline:
            with self.lock:
                for body in self.received:
                    if predicate(body):
                        return body
            time.sleep(0.1)
        raise AssertionError(f"no webhook matched within {timeout_s} s; got {self.received}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sink() -> tuple[ThreadingHTTPServer, Sink]:
    sink = Sink()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with sink.lock:
                sink.received.append(body)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, sink


def run_alertmanager(tmp: Path, webhook_url: str) -> Iterator[str]:
    """Start Alertmanager; yields its URL; stops it by PID."""
    binary = require("prometheus-alertmanager")
    config = tmp / "alertmanager.yml"
    config.write_text(CONFIG.format(url=webhook_url))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp / "alertmanager.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={tmp / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.time() + 30
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline or process.poll() is not None:
                raise AssertionError("alertmanager did not start: " + (tmp / "alertmanager.log").read_text())
            time.sleep(0.2)
        yield url
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
