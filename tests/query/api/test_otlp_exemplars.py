"""Exemplars: the SDK records one with the active span's ids on a histogram point; the receiver
keeps those ids in the bounded ring, confined by project when read."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from query.api.app import create_app
from query.api.otlp_exemplars import ExemplarRing
from query.api.otlp_metrics import Exemplar
from store.open import Store, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"chdb://{tmp_path / 'data'}")
    yield opened
    opened.close()


def test_an_sdk_exemplar_keeps_its_trace(store: Store) -> None:
    tracer = TracerProvider().get_tracer("gateway")
    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=Resource.create({"k8s.pod.name": "gw-1"}), metric_readers=[reader])
    latency = provider.get_meter("gateway").create_histogram("gen_ai.server.request.duration", unit="s")
    with tracer.start_as_current_span("chat") as span:
        latency.record(2.5, {"gen_ai.request.model": "m"})
        trace_id = format(span.get_span_context().trace_id, "032x")
        span_id = format(span.get_span_context().span_id, "016x")
    body = encode_metrics(reader.get_metrics_data()).SerializeToString()
    provider.shutdown()
    app = create_app(store)
    answer = TestClient(app).post(
        "/v1/metrics", content=body, headers={"Content-Type": "application/x-protobuf"}
    )
    assert answer.status_code == 200, answer.text
    (kept,) = app.state.otlp_metrics.exemplars.recent(metric="gen_ai_server_request_duration_seconds")
    assert (kept.trace_id, kept.span_id, kept.value) == (trace_id, span_id, 2.5)
    assert dict(kept.labels)["source"] == "gw-1"


def test_the_ring_is_bounded_newest_first_and_confined() -> None:
    ring = ExemplarRing(max_items=3)
    ring.add(Exemplar(p, "m", (), f"{i:032x}", f"{i:016x}", float(i), i) for i, p in enumerate("aabab"))
    assert len(ring) == 3
    assert [e.value for e in ring.recent()] == [4.0, 3.0, 2.0]
    assert [e.value for e in ring.recent(project_id="a")] == [3.0]
    assert [e.value for e in ring.recent(project_id="b", limit=1)] == [4.0]
    assert ring.recent(metric="other") == []
