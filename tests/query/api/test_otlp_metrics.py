"""OTLP metrics into infersight from the OpenTelemetry SDK itself: its OTLP/HTTP protobuf exporter
(and a JSON exporter on the SDK's encoder, ``otlp_clients``) push to a live ``infersight server``
app; what lands in the store is read back through the store's querier and the sketch reader."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    MeterProvider,
    ObservableGauge,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

from model.labels import Matcher, MatchOp
from query.api.app import create_app
from query.sketch_quantiles import period_quantiles
from sketch import ExponentialHistogram
from store.open import Store, open_store
from store.sketches import SketchReader
from tests.query.api.live_server import live_server
from tests.query.api.otlp_clients import JsonMetricExporter

QS = (0.5, 0.9, 0.99)
RESOURCE = Resource.create(
    {
        "service.name": "gateway",
        "service.namespace": "llm",
        "service.instance.id": "gw-0",
        "k8s.pod.name": "pod-7",
    }
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"chdb://{tmp_path / 'data'}")
    yield opened
    opened.close()


@pytest.fixture
def url(store: Store) -> Iterator[str]:
    with live_server(create_app(store)) as base:
        yield base


def _series(store: Store, name: str) -> dict[frozenset, float]:
    """The last value of each series named ``name`` (the SDK exports again when it shuts down)."""
    found = store.querier.select([Matcher("__name__", MatchOp.EQ, name)], 0, int(time.time() * 1000) + 60_000)
    return {frozenset(s.labels.items()): s.values[-1] for s in found}


def _push(exporter, temporality: AggregationTemporality, record) -> None:
    """One MeterProvider around ``exporter``; ``record(meter)`` runs, then one flush exports."""
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        resource=RESOURCE,
        metric_readers=[reader],
        views=[
            View(
                instrument_name="ttft.exp",
                aggregation=ExponentialBucketHistogramAggregation(max_size=1024, max_scale=8),
            )
        ],
    )
    record(provider.get_meter("test"))
    provider.force_flush()
    provider.shutdown()


def _record_all(values: np.ndarray):
    def record(meter) -> None:
        requests = meter.create_counter("requests", unit="{request}")
        inflight = meter.create_up_down_counter("inflight")
        latency = meter.create_histogram("gen_ai.server.request.duration", unit="s")
        ttft = meter.create_histogram("ttft.exp", unit="ms")
        meter.create_observable_gauge("kv.cache.usage", unit="1", callbacks=[lambda _: [Observation(0.25)]])
        for i, v in enumerate(values.tolist()):
            attributes = {"gen_ai.request.model": "m1", "code": "2xx" if i % 5 else "5xx"}
            requests.add(1, attributes)
            inflight.add(1)
            latency.record(v / 1000, {"gen_ai.request.model": "m1"})
            ttft.record(v, {"gen_ai.request.model": "m1"})
        inflight.add(-3)

    return record


def _values(n: int = 400, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(4.0, 0.6, n)


@pytest.mark.parametrize("temporality", [AggregationTemporality.CUMULATIVE, AggregationTemporality.DELTA])
@pytest.mark.parametrize("encoding", ["protobuf", "protobuf+gzip", "json", "prometheus-path"])
def test_sdk_metrics_land_as_the_specification_names_them(
    store: Store, url: str, temporality, encoding
) -> None:
    prefer = dict.fromkeys((Counter, UpDownCounter, Histogram, ObservableGauge), temporality)
    path = "/api/v1/otlp/v1/metrics" if encoding == "prometheus-path" else "/v1/metrics"
    if encoding == "json":
        exporter = JsonMetricExporter(url + path, preferred_temporality=prefer)
    else:
        compression = Compression.Gzip if encoding.endswith("gzip") else Compression.NoCompression
        exporter = OTLPMetricExporter(
            endpoint=url + path, compression=compression, preferred_temporality=prefer
        )
    values = _values()
    _push(exporter, temporality, _record_all(values))
    identity = {"job": "llm/gateway", "instance": "gw-0", "source": "pod-7", "service_name": "gateway"}

    total = _series(store, "requests_total")
    assert sum(total.values()) == len(values)
    for labels in total:
        assert set(identity.items()) <= labels
        assert ("gen_ai_request_model", "m1") in labels
    assert _series(store, "inflight") == {
        frozenset({**identity, "__name__": "inflight"}.items()): len(values) - 3.0
    }
    assert list(_series(store, "kv_cache_usage_ratio").values()) == [0.25]

    buckets = _series(store, "gen_ai_server_request_duration_seconds_bucket")
    inf = next(v for k, v in buckets.items() if ("le", "+Inf") in k)
    assert inf == len(values)
    (count,) = _series(store, "gen_ai_server_request_duration_seconds_count").values()
    (total_s,) = _series(store, "gen_ai_server_request_duration_seconds_sum").values()
    assert count == len(values)
    assert total_s == pytest.approx(values.sum() / 1000)

    # The exponential histogram: _count/_sum samples, and its buckets in the sketch store.
    (exp_count,) = _series(store, "ttft_exp_milliseconds_count").values()
    assert exp_count == len(values)
    now_ms = int(time.time() * 1000)
    reader = SketchReader(store.backend)
    merged = reader.merged(
        "ttft_exp_milliseconds", {"source": "pod-7"}, now_ms - 3_600_000, now_ms + 60_000, 10_000
    )
    assert [m.count for m in merged] == [len(values)]  # one window, counted once
    assert {m.scale for m in merged} == {6}  # the SDK's scale 7 downscaled to the sidecars' 6
    _, _, got = period_quantiles(merged, QS)
    direct = ExponentialHistogram(6)
    direct.add_many(values)
    assert np.allclose(got[0], direct.quantiles(QS))  # the same buckets as a sidecar's sketch
    exact = np.quantile(values, QS, method="inverted_cdf")
    assert np.all(np.abs(got[0] - exact) <= exact * 0.0055)
