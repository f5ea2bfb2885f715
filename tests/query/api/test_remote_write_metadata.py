"""A real Prometheus remote-writes its families' TYPE/HELP/UNIT, and they are kept for /api/v1/metadata."""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import cramjam
import pytest
import uvicorn

from model.metadata import FamilyMetadata
from query.api.remote_write import RemoteWriteEndpoint, encode_write_request
from store.metadata import MetadataStore
from store.open import Store
from tests.query.api.test_remote_metadata import _metadata
from tests.store.clickhouse_server import free_port


def _wait_for(store: MetadataStore, metric: str, timeout_s: float = 90) -> list[FamilyMetadata]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = store.read(None, metric)
        if found:
            return found
        time.sleep(0.5)
    return []


@pytest.mark.integration
def test_real_prometheus_sends_metadata_that_is_kept(chdb_store: Store, tmp_path: Path) -> None:
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus not installed (tools/system-deps.sh installs it)")
    metadata = MetadataStore(chdb_store.backend)
    api_port, prom_port = free_port(), free_port()
    app = RemoteWriteEndpoint(chdb_store.writer, metadata=metadata)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=api_port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - {{job_name: self, static_configs: [{{targets: ['127.0.0.1:{prom_port}']}}]}}\n"
        "remote_write:\n"
        f"  - url: http://127.0.0.1:{api_port}/api/v1/write\n"
        "    queue_config: {batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 1s}\n"
        "    metadata_config: {send: true, send_interval: 1s}\n"
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
        found = _wait_for(metadata, "prometheus_http_requests_total")
        assert found, (tmp_path / "prometheus.log").read_text()[-3000:]
        (family,) = found
        assert family.type == "counter"
        assert family.help == "Counter of HTTP requests."
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        server.should_exit = True
        thread.join(10)


def test_a_metadata_only_request_is_kept_and_a_broken_one_still_answers(chdb_store: Store) -> None:
    metadata = MetadataStore(chdb_store.backend)
    endpoint = RemoteWriteEndpoint(chdb_store.writer, metadata=metadata)
    body = bytes(cramjam.snappy.compress_raw(_metadata(1, "req_total", "Requests.")))
    assert endpoint.accept(body, None) == (204, "")
    assert _wait_for(metadata, "req_total", 30) == [FamilyMetadata("req_total", "counter", "Requests.", "")]
    # Samples are answered as before, and a request with samples is not searched for metadata.
    samples = encode_write_request([({"__name__": "up", "job": "j"}, [(1_700_000_000_000, 1.0)])])
    assert endpoint.accept(samples, None)[0] == 204
