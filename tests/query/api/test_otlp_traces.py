"""LLM request spans into the guide's series: spans made through the OpenTelemetry SDK as vLLM's
tracing code makes its ``llm_request`` span (a SERVER span from the request's arrival, with
``gen_ai.latency.*`` in seconds and ``gen_ai.usage.prompt_tokens``/``completion_tokens``), and a
GenAI-semconv client span, exported by the SDK's OTLP/HTTP span exporter (protobuf) and the JSON
one of ``otlp_clients`` to a live server."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace import set_span_in_context as trace_context

from collector import catalog
from collector.proxy.stats import LATENCY_BUCKETS_MS
from model.labels import Matcher, MatchOp
from query.api.app import create_app
from query.api.otlp_traces import QUEUE_COST
from sketch import ExponentialHistogram, SketchColumns, from_columns
from store.open import Store, open_store
from store.sketches import SketchReader
from tests.query.api.live_server import live_server
from tests.query.api.otlp_clients import JsonSpanExporter

QS = (0.5, 0.9, 0.99)
POD = {"k8s.pod.name": "vllm-pod-0", "service.name": "vllm", "infersight.service_id": "svc-1"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"chdb://{tmp_path / 'data'}")
    yield opened
    opened.close()


@pytest.fixture
def app(store: Store):
    return create_app(store)


@pytest.fixture
def url(app) -> Iterator[str]:
    with live_server(app) as base:
        yield base


def vllm_spans(provider: TracerProvider, n: int, seed: int = 7) -> dict[str, np.ndarray]:
    """``n`` finished requests as vLLM's output processor records them; their figures in ms/tokens."""
    rng = np.random.default_rng(seed)
    tracer = provider.get_tracer("vllm.llm_engine")
    figures = {"ttft": rng.lognormal(-3.0, 0.5, n), "queue": rng.uniform(0.001, 0.02, n)}
    figures["output"] = rng.integers(2, 200, n).astype(float)
    figures["decode"] = figures["output"] * rng.uniform(0.01, 0.03, n)
    now = time.time_ns()
    for i in range(n):
        e2e = figures["queue"][i] + figures["ttft"][i] + figures["decode"][i]
        arrival = now - int(e2e * 1e9) - 1_000_000
        attributes = {
            "gen_ai.response.model": "facebook/opt-125m",
            "gen_ai.request.id": f"cmpl-{i}",
            "gen_ai.request.max_tokens": 256,
            "gen_ai.usage.prompt_tokens": 100 + i,
            "gen_ai.usage.completion_tokens": int(figures["output"][i]),
            "gen_ai.latency.time_in_queue": float(figures["queue"][i]),
            "gen_ai.latency.time_to_first_token": float(figures["ttft"][i]),
            "gen_ai.latency.e2e": float(e2e),
            "gen_ai.latency.time_in_model_prefill": float(figures["ttft"][i] * 0.8),
            "gen_ai.latency.time_in_model_decode": float(figures["decode"][i]),
            "gen_ai.latency.time_in_model_inference": float(figures["decode"][i] + figures["ttft"][i] * 0.8),
        }
        span = tracer.start_span(
            "llm_request", kind=SpanKind.SERVER, start_time=arrival, attributes=attributes
        )
        span.end(end_time=arrival + int(e2e * 1e9))
    with tracer.start_as_current_span("not-a-request"):  # ignored: no LLM attributes
        pass
    return {key: value * 1000 if key in ("ttft", "queue") else value for key, value in figures.items()}


def _provider(exporter) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create(POD))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _quantiles(store: Store, metric: str) -> tuple[int, np.ndarray]:
    """How many values the sketch store holds for the pod's ``metric`` in the last hour, and their
    quantiles (every period's buckets merged: the spans may straddle a period's end)."""
    now = int(time.time() * 1000)
    merged = SketchReader(store.backend).merged(
        metric, {"source": "vllm-pod-0"}, now - 3_600_000, now + 60_000, 60_000
    )
    fields = [f.name for f in dataclasses.fields(SketchColumns)]
    whole = ExponentialHistogram.merged(
        from_columns(SketchColumns(**{f: getattr(m, f) for f in fields})) for m in merged
    )
    return whole.count, whole.quantiles(QS)


def _value(store: Store, name: str, **labels: str) -> float:
    matchers = [
        Matcher("__name__", MatchOp.EQ, name),
        *(Matcher(k, MatchOp.EQ, v) for k, v in labels.items()),
    ]
    found = store.querier.select(matchers, 0, int(time.time() * 1000) + 60_000)
    return sum(s.values[-1] for s in found)


def _direct(values: np.ndarray) -> np.ndarray:
    sketch = ExponentialHistogram()
    sketch.add_many(values)
    return sketch.quantiles(QS)


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
def test_vllm_request_spans_feed_the_guide_series(store: Store, app, url: str, encoding: str) -> None:
    exporter = (
        OTLPSpanExporter(endpoint=url + "/v1/traces")
        if encoding == "protobuf"
        else JsonSpanExporter(url + "/v1/traces")
    )
    figures = vllm_spans(_provider(exporter), 60)
    count, ttft = _quantiles(store, catalog.FIRST_TOKEN_COST)
    assert count == 60
    assert np.allclose(ttft, _direct(figures["ttft"]))  # one period
    count, queue = _quantiles(store, QUEUE_COST)
    assert count == 60
    assert np.allclose(queue, _direct(figures["queue"]))
    per_token = figures["decode"] * 1000 / (figures["output"] - 1)
    _, tpot = _quantiles(store, catalog.PER_TOKEN_COST)
    assert np.allclose(tpot, _direct(per_token))
    assert _value(store, catalog.REQUEST_TOTAL, code="2xx", source="vllm-pod-0", service_id="svc-1") == 60
    assert _value(store, f"{catalog.FIRST_TOKEN_COST}_count") == 60
    assert _value(store, f"{catalog.OUTPUT_TOKEN_QUANTITY}_sum") == figures["output"].sum()
    assert _value(store, f"{catalog.INPUT_TOKEN_QUANTITY}_bucket", le="+Inf") == 60
    assert app.state.otlp_traces.ignored_spans == 1
    # every request's ids were written as an exemplar of its TTFT bucket; these spans all end at one
    # instant and the table keeps one row per series and instant: one per bucket
    linked = store.backend.query(
        f"SELECT label_names, label_values FROM {store.backend.database}.exemplars FINAL "
        f"WHERE metric_name = '{catalog.FIRST_TOKEN_COST}_bucket'"
    ).to_pylist()
    bounds = np.asarray(LATENCY_BUCKETS_MS, np.float64)
    assert len(linked) == len(set(np.searchsorted(bounds, figures["ttft"], side="left").tolist()))
    assert all(r["label_names"] == ["span_id", "trace_id"] for r in linked)
    assert all(len(r["label_values"][0]) == 16 and len(r["label_values"][1]) == 32 for r in linked)


def test_span_ids_come_back_from_query_exemplars_on_their_buckets(store: Store, app) -> None:
    """Each request span's trace and span ids are an exemplar of the TTFT bucket its value landed
    in, read as Grafana reads them; another project sees none. (These spans all end at one instant,
    and a series keeps one exemplar per instant: one per bucket comes back.)"""
    memory = InMemorySpanExporter()
    figures = vllm_spans(_provider(memory), 12)
    spans = memory.get_finished_spans()
    from fastapi.testclient import TestClient
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    client = TestClient(app)
    headers = {"Content-Type": "application/x-protobuf"}
    body = encode_spans(spans).SerializeToString()
    assert client.post("/v1/traces", content=body, headers=headers).status_code == 200
    now = time.time()
    params = {"query": f"{catalog.FIRST_TOKEN_COST}_bucket", "start": now - 3600, "end": now + 60}
    found = client.get("/api/v1/query_exemplars", params=params).json()["data"]
    exemplars = [(item["seriesLabels"]["le"], e) for item in found for e in item["exemplars"]]
    by_ids = {
        (format(span.context.trace_id, "032x"), format(span.context.span_id, "016x")): span
        for span in spans
        if span.name == "llm_request"
    }
    bounds = np.asarray(LATENCY_BUCKETS_MS, np.float64)
    buckets = {float(np.r_[bounds, np.inf][np.searchsorted(bounds, v, side="left")]) for v in figures["ttft"]}
    assert {float(le) for le, _ in exemplars} == buckets
    for le, e in exemplars:
        span = by_ids[(e["labels"]["trace_id"], e["labels"]["span_id"])]
        ttft_ms = span.attributes["gen_ai.latency.time_to_first_token"] * 1000
        assert float(e["value"]) == pytest.approx(ttft_ms)
        below = bounds[bounds < float(le)]
        assert (below.max() if len(below) else -np.inf) < ttft_ms <= float(le)
    other = dict(params, query=f'{catalog.FIRST_TOKEN_COST}_bucket{{project_id="elsewhere"}}')
    assert client.get("/api/v1/query_exemplars", params=other).json()["data"] == []


def test_resent_spans_count_once(store: Store, app) -> None:
    """The SDK's exporter retries a batch whose answer it lost: the same spans again."""
    memory = InMemorySpanExporter()
    vllm_spans(_provider(memory), 20)
    spans = memory.get_finished_spans()
    from fastapi.testclient import TestClient
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    client = TestClient(app)
    body = encode_spans(spans).SerializeToString()
    for _ in range(3):
        assert (
            client.post(
                "/v1/traces", content=body, headers={"Content-Type": "application/x-protobuf"}
            ).status_code
            == 200
        )
    assert _quantiles(store, catalog.REQUEST_COST)[0] == 20
    assert _value(store, catalog.REQUEST_TOTAL) == 20
    assert _value(store, f"{catalog.REQUEST_COST}_count") == 20


def test_genai_semconv_span_and_errors(store: Store, url: str) -> None:
    provider = _provider(OTLPSpanExporter(endpoint=url + "/v1/traces"))
    tracer = provider.get_tracer("openai-instrumentation")
    start = time.time_ns() - 2_000_000_000
    span = tracer.start_span(
        "chat gpt-x",
        kind=SpanKind.CLIENT,
        start_time=start,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.usage.input_tokens": 12,
            "gen_ai.usage.output_tokens": 30,
        },
    )
    span.end(end_time=start + 1_500_000_000)
    failed = tracer.start_span(
        "chat gpt-x", start_time=start, attributes={"gen_ai.operation.name": "chat", "error.type": "timeout"}
    )
    failed.set_status(Status(StatusCode.ERROR))
    failed.end(end_time=start + 3_000_000_000)
    count, cost = _quantiles(store, catalog.REQUEST_COST)
    assert count == 2
    assert np.allclose(cost, _direct(np.array([1500.0, 3000.0])))
    assert _value(store, catalog.REQUEST_TOTAL, code="5xx") == 1
    assert _value(store, catalog.REQUEST_TOTAL, code="2xx") == 1
    assert _value(store, f"{catalog.OUTPUT_TOKEN_QUANTITY}_sum") == 30
    # the failed request's sketch row carries its error.type; the quantiles above merged over it
    rows = store.backend.query(
        f"SELECT label_names, label_values, count FROM {store.backend.database}.sketches "
        f"WHERE metric_name = '{catalog.REQUEST_COST}'"
    ).to_pylist()
    by_error = {
        dict(zip(r["label_names"], r["label_values"], strict=True)).get(catalog.ERROR_TYPE): r["count"]
        for r in rows
    }
    assert by_error == {None: 1, "timeout": 1}


def test_hostile_trace_bodies(app) -> None:
    from fastapi.testclient import TestClient

    client = TestClient(app)
    for body, kind in (
        (b"\x0a\xff\xff\xff\xff\x0f", "application/x-protobuf"),
        (b'{"resourceSpans": 5}', "application/json"),
        (b'{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz","spanId":1}]}]}]}', "application/json"),
    ):
        assert client.post("/v1/traces", content=body, headers={"Content-Type": kind}).status_code == 400


_NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
    st.text(max_size=4),
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    figures=st.dictionaries(
        st.sampled_from(
            [
                "gen_ai.latency.e2e",
                "gen_ai.latency.time_to_first_token",
                "gen_ai.latency.time_in_queue",
                "gen_ai.latency.time_in_model_decode",
                "gen_ai.usage.prompt_tokens",
                "gen_ai.usage.completion_tokens",
                "gen_ai.operation.name",
                "http.response.status_code",
            ]
        ),
        _NUMBERS,
        max_size=8,
    ),
    start=st.integers(0, 2**64 - 1),
    end=st.integers(0, 2**64 - 1),
)
def test_any_span_is_counted_or_refused_never_5xx(app, figures: dict, start: int, end: int) -> None:
    from fastapi.testclient import TestClient
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add(name="llm_request")
    span.trace_id, span.span_id = b"\x07" * 16, start.to_bytes(8, "little")
    span.start_time_unix_nano, span.end_time_unix_nano = start, end
    for key, value in figures.items():
        if isinstance(value, bool):
            any_value = AnyValue(bool_value=value)
        elif isinstance(value, int):
            any_value = AnyValue(int_value=value)
        elif isinstance(value, float):
            any_value = AnyValue(double_value=value)
        else:
            any_value = AnyValue(string_value=value)
        span.attributes.append(KeyValue(key=key, value=any_value))
    answer = TestClient(app).post(
        "/v1/traces", content=request.SerializeToString(), headers={"Content-Type": "application/x-protobuf"}
    )
    assert answer.status_code in (200, 400), answer.text


def test_sglang_root_spans_give_the_request_cost(store: Store, app) -> None:
    """SGLang's tracing: a root span ``Req <rid[:8]>`` with ``rid`` from arrival to finish, stage
    spans under it (ignored: no request figures)."""
    memory = InMemorySpanExporter()
    provider = _provider(memory)
    tracer = provider.get_tracer("sglang server")
    start = time.time_ns() - 5_000_000_000
    costs = [120.0, 480.0, 2500.0]
    for i, cost in enumerate(costs):
        rid = f"{i:08d}abcdef"
        root = tracer.start_span(
            f"Req {rid[:8]}", start_time=start, attributes={"rid": rid, "bootstrap_room": "None"}
        )
        stage = tracer.start_span(
            "Scheduler (host:abc | pid:1)", start_time=start, context=trace_context(root)
        )
        stage.end(end_time=start + int(cost * 1e6))
        root.end(end_time=start + int(cost * 1e6))
    from fastapi.testclient import TestClient
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    body = encode_spans(memory.get_finished_spans()).SerializeToString()
    headers = {"Content-Type": "application/x-protobuf"}
    assert TestClient(app).post("/v1/traces", content=body, headers=headers).status_code == 200
    count, cost = _quantiles(store, catalog.REQUEST_COST)
    assert count == 3
    assert np.allclose(cost, _direct(np.array(costs)))
    assert app.state.otlp_traces.ignored_spans == 3


def test_a_span_ending_where_no_sample_may_be_is_refused_whole(store: Store, app) -> None:
    """A span dated in 2200 (past the door's hour ahead): the request is refused with a 400, as remote
    write refuses a sample there, and nothing of it is kept."""
    from fastapi.testclient import TestClient
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    memory = InMemorySpanExporter()
    tracer = _provider(memory).get_tracer("openai-instrumentation")
    start = 7_258_118_400 * 10**9
    span = tracer.start_span("chat m", start_time=start, attributes={"gen_ai.operation.name": "chat"})
    span.end(end_time=start + 10**9)
    body = encode_spans(memory.get_finished_spans()).SerializeToString()
    headers = {"Content-Type": "application/x-protobuf"}
    answer = TestClient(app).post("/v1/traces", content=body, headers=headers)
    assert answer.status_code == 400
    assert "out of bounds" in answer.text
    stored = store.backend.query(f"SELECT count() AS n FROM {store.backend.database}.sketches")
    assert stored.column("n")[0].as_py() == 0
    assert _value(store, catalog.REQUEST_TOTAL) == 0
