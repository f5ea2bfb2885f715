"""The OTLP metrics receiver held to remote write's rules: exactly once, tenancy, limits, hostile
bodies. Bodies come from the OpenTelemetry SDK (an ``InMemoryMetricReader`` encoded by the OTLP
exporter's own ``encode_metrics``), except summaries, which the SDK cannot make (the Collector
forwards them from Prometheus sources): those are built from ``opentelemetry-proto``'s classes."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

from model.labels import Matcher, MatchOp
from query.api.app import AuthSettings, create_app
from query.api.otlp_names import label_name, metric_name
from store.open import Store, open_store
from store.sketches import SketchReader

ADMIN = "admin-secret-for-otlp-tests"
PROTOBUF = {"Content-Type": "application/x-protobuf"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"chdb://{tmp_path / 'data'}")
    yield opened
    opened.close()


@pytest.fixture
def client(store: Store) -> TestClient:
    return TestClient(create_app(store))


def sdk_body(temporality: AggregationTemporality, n: int = 200, resource: dict | None = None) -> bytes:
    """An ``ExportMetricsServiceRequest`` as the SDK's OTLP exporter encodes it."""
    reader = InMemoryMetricReader(preferred_temporality={Counter: temporality, Histogram: temporality})
    provider = MeterProvider(
        resource=Resource.create(resource or {"k8s.pod.name": "pod-1", "service.name": "svc"}),
        metric_readers=[reader],
        views=[View(instrument_name="lat", aggregation=ExponentialBucketHistogramAggregation())],
    )
    meter = provider.get_meter("t")
    counter, latency = meter.create_counter("tokens"), meter.create_histogram("lat", unit="ms")
    for v in np.random.default_rng(3).lognormal(3, 0.5, n).tolist():
        counter.add(2)
        latency.record(v)
    body = encode_metrics(reader.get_metrics_data()).SerializeToString()
    provider.shutdown()
    return body


def _last(store: Store, name: str) -> list[float]:
    found = store.querier.select([Matcher("__name__", MatchOp.EQ, name)], 0, int(time.time() * 1000) + 60_000)
    return [s.values[-1] for s in found]


def _sketch_count(store: Store, metric: str) -> int:
    now = int(time.time() * 1000)
    return sum(
        m.count for m in SketchReader(store.backend).merged(metric, {}, now - 3_600_000, now + 60_000, 10_000)
    )


@pytest.mark.parametrize("temporality", [AggregationTemporality.CUMULATIVE, AggregationTemporality.DELTA])
def test_a_resent_request_counts_once(client: TestClient, store: Store, temporality) -> None:
    """A sender whose answer was lost sends the same body again: samples, accumulated deltas and
    sketch rows are as after one."""
    body = sdk_body(temporality)
    for _ in range(3):
        assert client.post("/v1/metrics", content=body, headers=PROTOBUF).status_code == 200
    assert _last(store, "tokens_total") == [400.0]
    assert _last(store, "lat_milliseconds_count") == [200.0]
    assert _sketch_count(store, "lat_milliseconds") == 200
    receiver = client.app.state.otlp_metrics
    # Resent twice: both delta points skipped each time; of cumulative ones, the exponential
    # histogram's (its samples are written again, the same; its sketch row is not).
    expected = 4 if temporality == AggregationTemporality.DELTA else 2
    assert receiver.skipped["resent_or_out_of_order"] == expected


def _summary_request(project: str | None = None) -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    resource = request.resource_metrics.add()
    resource.resource.attributes.append(KeyValue(key="k8s.pod.name", value=AnyValue(string_value="pod-s")))
    if project:
        resource.resource.attributes.append(
            KeyValue(key="infersight.project_id", value=AnyValue(string_value=project))
        )
    metric = resource.scope_metrics.add().metrics.add(name="rpc.latency", unit="ms")
    point = metric.summary.data_points.add(time_unix_nano=time.time_ns(), count=10, sum=55.0)
    point.quantile_values.add(quantile=0.5, value=5.0)
    point.quantile_values.add(quantile=0.99, value=9.9)
    point.attributes.append(KeyValue(key="9lives", value=AnyValue(int_value=9)))
    return request


def test_summaries_and_their_quantiles(client: TestClient, store: Store) -> None:
    body = _summary_request().SerializeToString()
    assert client.post("/v1/metrics", content=body, headers=PROTOBUF).status_code == 200
    found = store.querier.select([Matcher("__name__", MatchOp.EQ, "rpc_latency_milliseconds")], 0, 2 * 10**13)
    assert {s.labels["quantile"]: s.values[-1] for s in found} == {"0.5": 5.0, "0.99": 9.9}
    assert all(s.labels["source"] == "pod-s" and s.labels["key_9lives"] == "9" for s in found)
    assert _last(store, "rpc_latency_milliseconds_sum") == [55.0]
    assert _last(store, "rpc_latency_milliseconds_count") == [10.0]


def test_tenancy_as_remote_write(store: Store) -> None:
    client = TestClient(create_app(store, auth=AuthSettings(enabled=True, admin_key=ADMIN)))

    def key(perms: list[str]) -> dict[str, str]:
        made = client.post(
            "/api/v1/admin/keys",
            json={"project_id": "p1", "permissions": perms, "name": "k"},
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
        return {"Authorization": f"Bearer {made.json()['data']['key']}", **PROTOBUF}

    writer, reader = key(["read", "write"]), key(["read"])
    mine, other = _summary_request().SerializeToString(), _summary_request("p2").SerializeToString()
    assert client.post("/v1/metrics", content=mine, headers=PROTOBUF).status_code == 401
    assert client.post("/v1/metrics", content=mine, headers=reader).status_code == 403
    assert client.post("/v1/metrics", content=other, headers=writer).status_code == 403
    assert client.post("/api/v1/otlp/v1/metrics", content=mine, headers=writer).status_code == 200
    assert {
        s.labels["project_id"]
        for s in store.querier.select(
            [Matcher("__name__", MatchOp.EQ, "rpc_latency_milliseconds_sum")], 0, 2 * 10**13
        )
    } == {"p1"}


def test_bodies_that_are_not_what_they_claim(client: TestClient) -> None:
    post = client.post
    assert post("/v1/metrics", content=b"\xff\x00garbage", headers=PROTOBUF).status_code == 400
    assert (
        post("/v1/metrics", content=b"{not json", headers={"Content-Type": "application/json"}).status_code
        == 400
    )
    assert (
        post("/v1/metrics", content=b"[1, 2]", headers={"Content-Type": "application/json"}).status_code
        == 400
    )
    assert post("/v1/metrics", content=b"x", headers={"Content-Type": "text/plain"}).status_code == 415
    assert client.get("/v1/metrics").status_code == 405
    bomb = gzip.compress(b"\x00" * (64 << 20))  # 64 MiB of zeros: a few KiB on the wire
    answer = post("/v1/metrics", content=bomb, headers={**PROTOBUF, "Content-Encoding": "gzip"})
    assert answer.status_code == 413
    nested = b'{"resourceMetrics":' * 5000 + b"1" + b"}" * 5000
    assert (
        post("/v1/metrics", content=nested, headers={"Content-Type": "application/json"}).status_code == 400
    )
    # A histogram whose bucket counts do not match its bounds, an exponential one whose do not add up.
    request = ExportMetricsServiceRequest()
    metrics = request.resource_metrics.add().scope_metrics.add()
    point = metrics.metrics.add(name="h").histogram.data_points.add(time_unix_nano=time.time_ns(), count=1)
    point.explicit_bounds.extend([1.0, 2.0])
    point.bucket_counts.extend([1])
    assert post("/v1/metrics", content=request.SerializeToString(), headers=PROTOBUF).status_code == 400
    request = ExportMetricsServiceRequest()
    exp = request.resource_metrics.add().scope_metrics.add().metrics.add(name="e").exponential_histogram
    bad = exp.data_points.add(time_unix_nano=time.time_ns(), count=5, scale=3)
    bad.positive.bucket_counts.extend([1, 1])
    assert post("/v1/metrics", content=request.SerializeToString(), headers=PROTOBUF).status_code == 400


def test_over_the_sample_limit_is_refused_whole(store: Store) -> None:
    from query.api.otlp_receiver import OtlpEndpoint, OtlpMetricsReceiver
    from store.sketches import SketchWriter

    receiver = OtlpMetricsReceiver(store.writer, SketchWriter(store.backend), max_samples_per_request=2)
    status, text = receiver.handle(
        sdk_body(AggregationTemporality.CUMULATIVE), "application/x-protobuf", None, None
    )
    assert status == 400
    assert "too_many_samples" in text
    assert receiver.admission.refused_requests["too_many_samples"] == 1
    assert _last(store, "tokens_total") == []
    assert OtlpEndpoint(receiver).max_body_bytes > 0


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.binary(max_size=512),
    json_body=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "resourceMetrics",
                        "scopeMetrics",
                        "metrics",
                        "gauge",
                        "dataPoints",
                        "asInt",
                        "timeUnixNano",
                        "traceId",
                        "name",
                    ]
                ),
                inner,
                max_size=4,
            )
        ),
        max_leaves=20,
    ),
)
def test_random_bodies_never_5xx(client: TestClient, body: bytes, json_body) -> None:
    import json

    assert client.post("/v1/metrics", content=body, headers=PROTOBUF).status_code < 500
    answer = client.post(
        "/v1/metrics", content=json.dumps(json_body), headers={"Content-Type": "application/json"}
    )
    assert answer.status_code < 500


@given(name=st.text(max_size=30), unit=st.text(max_size=8))
@settings(max_examples=50, deadline=None)
def test_translated_names_are_valid_prometheus_names(name: str, unit: str) -> None:
    import re

    for kind in ("gauge", "sum", "histogram", "summary"):
        assert re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", metric_name(name, unit, kind, monotonic=True))
    assert re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", label_name(name))


def test_names_as_the_specification_gives_them() -> None:
    assert (
        metric_name("gen_ai.server.time_to_first_token", "s", "histogram")
        == "gen_ai_server_time_to_first_token_seconds"
    )
    assert metric_name("http.server.duration", "ms", "histogram") == "http_server_duration_milliseconds"
    assert metric_name("requests", "{request}", "sum", monotonic=True) == "requests_total"
    assert metric_name("requests.total", "1", "sum", monotonic=True) == "requests_total"
    assert metric_name("kv.usage", "1", "gauge") == "kv_usage_ratio"
    assert metric_name("net.io", "By/s", "gauge") == "net_io_bytes_per_second"
    assert metric_name("latency_seconds", "s", "gauge") == "latency_seconds"
    assert metric_name("gen_ai.client.token.usage", "{token}", "histogram") == "gen_ai_client_token_usage"
    assert label_name("k8s.pod.name") == "k8s_pod_name"
    assert label_name("_private") == "key_private"
    assert label_name("__reserved") == "__reserved"


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    scale=st.integers(-12, 22),
    offset=st.integers(-(2**31), 2**31 - 1),
    counts=st.lists(st.integers(0, 2**40), max_size=6),
    zero=st.integers(0, 5),
    claimed=st.integers(0, 2**42),
    temporality=st.sampled_from([1, 2]),
    with_min=st.booleans(),
    consistent=st.booleans(),
)
def test_any_exponential_point_is_stored_or_refused_with_a_400(
    client: TestClient, scale, offset, counts, zero, claimed, temporality, with_min, consistent
) -> None:
    claimed = sum(counts) + zero if consistent else claimed
    request = ExportMetricsServiceRequest()
    metric = request.resource_metrics.add().scope_metrics.add().metrics.add(name="hostile.exp")
    metric.exponential_histogram.aggregation_temporality = temporality
    point = metric.exponential_histogram.data_points.add(
        time_unix_nano=time.time_ns(), scale=scale, zero_count=zero, count=claimed, sum=1.0
    )
    point.positive.offset = offset
    point.positive.bucket_counts.extend(counts)
    if with_min:
        point.min, point.max = 0.5, 2.0
    answer = client.post("/v1/metrics", content=request.SerializeToString(), headers=PROTOBUF)
    assert answer.status_code in (200, 400), answer.text


def test_with_the_ingest_log_samples_are_acknowledged_once_logged(store: Store, tmp_path: Path) -> None:
    """As remote write: 200 once the request is in the server's ingest log; stored when it flushes."""
    from exporters.ingest_log import IngestLog
    from query.api.remote_write import LOG_DECODERS

    log = IngestLog(store.writer, tmp_path / "wal", decoders=LOG_DECODERS, retry_interval_s=0.0)
    client = TestClient(create_app(store, ingest_log=log))
    body = _summary_request().SerializeToString()
    assert client.post("/v1/metrics", content=body, headers=PROTOBUF).status_code == 200
    assert _last(store, "rpc_latency_milliseconds_sum") == []  # logged, not yet inserted
    assert log.flush(60)
    assert _last(store, "rpc_latency_milliseconds_sum") == [55.0]


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=st.sampled_from(["gauge", "sum", "histogram", "exponential_histogram"]),
    exemplars=st.lists(
        st.tuples(
            st.floats(allow_nan=True, allow_infinity=True),
            st.integers(0, 2**64 - 1),
            st.binary(max_size=40),
            st.binary(max_size=20),
            st.dictionaries(st.text(max_size=70), st.text(max_size=70), max_size=3),
        ),
        max_size=5,
    ),
    bounds=st.lists(st.floats(allow_nan=False), max_size=4),
)
def test_any_exemplar_is_kept_or_refused_never_5xx(client: TestClient, kind, exemplars, bounds) -> None:
    request = ExportMetricsServiceRequest()
    metric = request.resource_metrics.add().scope_metrics.add().metrics.add(name="hostile.exemplar")
    data = getattr(metric, kind)
    point = data.data_points.add(time_unix_nano=time.time_ns())
    if kind in ("gauge", "sum"):
        point.as_double = 1.0
    elif kind == "histogram":
        point.explicit_bounds.extend(bounds)
        point.bucket_counts.extend([1] * (len(bounds) + 1))
        point.count = len(bounds) + 1
    else:
        point.count = 0
    for value, ts, trace_id, span_id, attributes in exemplars:
        exemplar = point.exemplars.add(as_double=value, time_unix_nano=ts, trace_id=trace_id, span_id=span_id)
        for key, text in attributes.items():
            exemplar.filtered_attributes.add(key=key).value.string_value = text
    answer = client.post("/v1/metrics", content=request.SerializeToString(), headers=PROTOBUF)
    assert answer.status_code in (200, 400), answer.text


@pytest.mark.parametrize("max_entries", [1, 100_000])
def test_series_cache_keeps_projects_resources_and_names_apart(max_entries: int) -> None:
    """The same attributes sent under another project, resource or metric name are another series,
    whether the cache holds them (100,000) or keeps emptying (1)."""
    from query.api.otlp_metrics import SeriesCache, SeriesState, translate

    def request(pod: str, name: str) -> ExportMetricsServiceRequest:
        out = ExportMetricsServiceRequest()
        resource = out.resource_metrics.add()
        resource.resource.attributes.add(key="k8s.pod.name").value.string_value = pod
        metric = resource.scope_metrics.add().metrics.add(name=name)
        point = metric.gauge.data_points.add(time_unix_nano=10**18, as_double=1.0)
        point.attributes.add(key="zone").value.string_value = "z1"
        return out

    cache = SeriesCache(max_entries)
    seen = set()
    for project in ("a", "b", None):
        for pod in ("p0", "p1"):
            for name in ("x", "y"):
                for _ in range(2):  # the second time from the cache
                    result = translate(request(pod, name), SeriesState(), project=project, cache=cache)
                    (labels,) = result.columns.labels
                    got = dict(labels)
                    assert (got.get("project_id"), got["source"], got["__name__"], got["zone"]) == (
                        project,
                        pod,
                        name,
                        "z1",
                    )
                    seen.add(labels)
    assert len(seen) == 12
    assert len(cache) <= max_entries
