"""A remote-write receiver served by uvicorn, and a real Prometheus 2.42 scraping itself and
remote-writing to it, both on free loopback ports and stopped on the way out."""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

from query.api.remote_write import RemoteWriteEndpoint
from tests.store.clickhouse_server import free_port


@contextmanager
def prometheus_writing_to(
    endpoint: RemoteWriteEndpoint, tmp_path: Path, remote_write_extra: str = ""
) -> Iterator[int]:
    """Yields Prometheus' port; ``remote_write_extra``: more YAML lines of its remote_write entry."""
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus not installed (tools/system-deps.sh installs it)")
    api_port, prom_port = free_port(), free_port()
    server = uvicorn.Server(uvicorn.Config(endpoint, host="127.0.0.1", port=api_port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - {{job_name: self, static_configs: [{{targets: ['127.0.0.1:{prom_port}']}}]}}\n"
        "remote_write:\n"
        f"  - url: http://127.0.0.1:{api_port}/api/v1/write\n"
        "    queue_config: {batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 1s}\n"
        + remote_write_extra
    )
    with (tmp_path / "prometheus.log").open("w") as log:
        proc = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield prom_port
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        server.should_exit = True
        thread.join(10)
