"""Exemplars on OTLP points: the SDK records one with the active span's ids; the receiver writes it
on the series its value belongs to, and ``/api/v1/query_exemplars`` answers it as Grafana reads it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from query.api.app import create_app
from query.api.otlp_metrics import MAX_EXEMPLARS_PER_REQUEST, exemplar_labels
from store.open import Store, open_store

HEADERS = {"Content-Type": "application/x-protobuf"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"chdb://{tmp_path / 'data'}")
    yield opened
    opened.close()


def _ids(span) -> tuple[str, str]:
    context = span.get_span_context()
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def _exemplars(client: TestClient, query: str) -> list[tuple[dict, dict]]:
    now = time.time()
    params = {"query": query, "start": now - 600, "end": now + 60}
    answer = client.get("/api/v1/query_exemplars", params=params)
    assert answer.status_code == 200, answer.text
    return [(item["seriesLabels"], e) for item in answer.json()["data"] for e in item["exemplars"]]


def test_sdk_exemplars_land_on_their_bucket_and_series(store: Store) -> None:
    tracer = TracerProvider().get_tracer("gateway")
    reader = InMemoryMetricReader()
    provider = MeterProvider(resource=Resource.create({"k8s.pod.name": "gw-1"}), metric_readers=[reader])
    meter = provider.get_meter("gateway")
    latency = meter.create_histogram("gen_ai.server.request.duration", unit="s")
    requests = meter.create_counter("gateway.requests")
    with tracer.start_as_current_span("chat") as span:
        latency.record(7.5, {"gen_ai.request.model": "m"})
        requests.add(1, {"route": "/v1/chat/completions"})
        trace_id, span_id = _ids(span)
    body = encode_metrics(reader.get_metrics_data()).SerializeToString()
    provider.shutdown()
    client = TestClient(create_app(store))
    assert client.post("/v1/metrics", content=body, headers=HEADERS).status_code == 200

    # the SDK's default bounds are 0, 5, 10, …: 7.5 s landed in le="10"
    ((series, kept),) = _exemplars(client, "gen_ai_server_request_duration_seconds_bucket")
    assert (float(series["le"]), series["source"], series["gen_ai_request_model"]) == (10, "gw-1", "m")
    assert kept["labels"] == {"trace_id": trace_id, "span_id": span_id}
    assert float(kept["value"]) == 7.5
    ((series, kept),) = _exemplars(client, "gateway_requests_total")
    assert series["route"] == "/v1/chat/completions"
    assert kept["labels"] == {"trace_id": trace_id, "span_id": span_id}
    # a selector of another project's series sees none
    assert _exemplars(client, 'gateway_requests_total{project_id="elsewhere"}') == []


def test_exemplars_per_request_are_bounded(store: Store) -> None:
    """A body holding more exemplars than a request may keep: the rest are skipped and counted."""
    request = ExportMetricsServiceRequest()
    metric = request.resource_metrics.add().scope_metrics.add().metrics.add(name="g")
    now_ns = time.time_ns()
    point = metric.gauge.data_points.add(time_unix_nano=now_ns, as_double=1.0)
    for i in range(MAX_EXEMPLARS_PER_REQUEST + 5):
        point.exemplars.add(time_unix_nano=now_ns - i * 1_000_000, as_double=float(i), span_id=b"\x01" * 8)
    app = create_app(store)
    client = TestClient(app)
    assert client.post("/v1/metrics", content=request.SerializeToString(), headers=HEADERS).status_code == 200
    assert app.state.otlp_metrics.skipped["exemplars_over_limit"] == 5
    stored = store.backend.query(f"SELECT count() AS n FROM {store.backend.database}.exemplars")
    assert stored.column("n")[0].as_py() == MAX_EXEMPLARS_PER_REQUEST


def test_exemplar_labels_fit_openmetrics_bound() -> None:
    trace, span = "a" * 32, "b" * 16
    labels = dict(exemplar_labels(trace, span, {"user": "u" * 40, "zone": "z" * 80, "a": "1"}))
    assert (labels["trace_id"], labels["span_id"]) == (trace, span)
    assert sum(len(k) + len(v) for k, v in labels.items()) <= 128
    assert "a" in labels
    assert "zone" not in labels
    assert exemplar_labels("", span) == (("span_id", span),)


def test_exemplars_outside_the_stores_time_window_are_skipped(store: Store) -> None:
    """An exemplar dated where no sample may be (year 2200: past the door's hour ahead and the store's
    range): skipped and counted; the point and the other exemplars are kept."""
    request = ExportMetricsServiceRequest()
    metric = request.resource_metrics.add().scope_metrics.add().metrics.add(name="g")
    now_ns = time.time_ns()
    point = metric.gauge.data_points.add(time_unix_nano=now_ns, as_double=1.0)
    for ts_ns in (now_ns, 7_258_118_400 * 10**9, now_ns + 7200 * 10**9):
        point.exemplars.add(time_unix_nano=ts_ns, as_double=1.0, span_id=b"\x01" * 8)
    app = create_app(store)
    client = TestClient(app)
    assert client.post("/v1/metrics", content=request.SerializeToString(), headers=HEADERS).status_code == 200
    assert app.state.otlp_metrics.skipped["exemplar_out_of_bounds"] == 2
    stored = store.backend.query(f"SELECT count() AS n FROM {store.backend.database}.exemplars")
    assert stored.column("n")[0].as_py() == 1
