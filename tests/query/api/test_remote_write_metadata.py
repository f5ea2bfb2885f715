"""A real Prometheus remote-writes its families' TYPE/HELP/UNIT, and they are kept for /api/v1/metadata."""

from __future__ import annotations

import time
from pathlib import Path

import cramjam
import pytest

from model.metadata import FamilyMetadata
from query.api.remote_write import RemoteWriteEndpoint, encode_write_request
from store.metadata import MetadataStore
from store.open import Store
from tests.query.api.prometheus_writer import prometheus_writing_to
from tests.query.api.test_remote_metadata import _metadata


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
    metadata = MetadataStore(chdb_store.backend)
    endpoint = RemoteWriteEndpoint(chdb_store.writer, metadata=metadata)
    send_metadata = "    metadata_config: {send: true, send_interval: 1s}\n"
    with prometheus_writing_to(endpoint, tmp_path, send_metadata):
        found = _wait_for(metadata, "prometheus_http_requests_total")
        assert found, (tmp_path / "prometheus.log").read_text()[-3000:]
        (family,) = found
        assert family.type == "counter"
        assert family.help == "Counter of HTTP requests."


def test_a_metadata_only_request_is_kept_and_a_broken_one_still_answers(chdb_store: Store) -> None:
    metadata = MetadataStore(chdb_store.backend)
    endpoint = RemoteWriteEndpoint(chdb_store.writer, metadata=metadata)
    body = bytes(cramjam.snappy.compress_raw(_metadata(1, "req_total", "Requests.")))
    assert endpoint.accept(body, None) == (204, "")
    assert _wait_for(metadata, "req_total", 30) == [FamilyMetadata("req_total", "counter", "Requests.", "")]
    # Samples are answered as before, and a request with samples is not searched for metadata.
    samples = encode_write_request([({"__name__": "up", "job": "j"}, [(1_700_000_000_000, 1.0)])])
    assert endpoint.accept(samples, None)[0] == 204
