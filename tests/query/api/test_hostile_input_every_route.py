"""Every route of the server, fed hostile input: the answer is a 4xx (or a 2xx), never a 5xx.

The routes are read from the app itself, so a route added later is fuzzed without anyone listing
it. Each gets, by every method it serves: hostile query-string values for the parameters the
Prometheus API and our own APIs read (times, steps, cursors, limits, matchers), invalid UTF-8 and lone
surrogates, JSON bodies nested far deeper than any real one, bodies that are not JSON at all, and
form bodies with broken encodings. Auth is on and the bootstrap key is used, so the requests reach
the handlers rather than stopping at the door.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from query.api.app import AuthSettings, create_app
from store.open import Store

ADMIN = "bootstrap-admin-key-for-tests-0123456789"
HEADERS = {"Authorization": f"Bearer {ADMIN}"}

# Parameter names any route reads; every route gets all of them (unknown ones are ignored).
PARAMS = (
    "query",
    "time",
    "start",
    "end",
    "step",
    "timeout",
    "limit",
    "match[]",
    "cursor",
    "next",
    "page",
    "offset",
    "since",
    "until",
    "period",
    "quantile",
    "service_id",
    "name",
    "type",
)
HOSTILE_VALUES = (
    "1e20",
    "-1e20",
    "Inf",
    "-Inf",
    "NaN",
    "1e999",
    "-0",
    "9" * 400,
    "[1e999,1]",
    "[",
    '{"a":',
    "\x00",
    "%ff",
    "2026-13-45T99:99:99Z",
    "(" * 5000,
    "{",
    '{__name__=~"(a+)+b"}',
    "a" * 3_000,
)
# Bytes a client may send in a query string or form: invalid UTF-8 and an encoded lone surrogate.
RAW_QUERY_STRINGS = (
    b"query=%ff%fe&time=%ed%a0%80",
    b"match[]=%ed%a0%80&start=%c3%28",
    b"query=\xff\xfe",
    b"time=1&time=2&time=%80",
)


# Routes that answer with an endless stream: fuzzed by their own tests, which read and close them.
STREAMS = {("GET", "/api/v1/events/stream")}


def _deep_json(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


BODIES: tuple[tuple[str, bytes], ...] = (
    ("application/json", _deep_json(100_000)),
    ("application/json", b'{"a":' * 50_000 + b"1" + b"}" * 50_000),
    ("application/json", b"\xff\xfe\x00garbage"),
    ("application/json", b'{"events": "\xed\xa0\x80"}'),
    ("application/json", b'{"traces": [' + b"1," * 1000 + b"1]}"),
    ("application/json", b"null"),
    ("application/json", b"1e999"),
    ("application/x-www-form-urlencoded", b"query=%ff%fe&time=%ed%a0%80"),
    ("application/x-www-form-urlencoded", b"\xff\xfe=\xff"),
    ("text/plain", b"\x00" * 4096),
)


def _concrete(path: str) -> str:
    """A path template with every ``{param}`` filled with a hostile-looking but routable value."""
    return re.sub(r"\{[^}]+\}", "x%2F..%2Fy", path)


def _routes(app) -> list[tuple[str, str]]:
    """(method, path template) of every route in the app's OpenAPI document, plus remote write, which
    is served ahead of the router and kept out of the document."""
    found = [
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if method.upper() not in ("HEAD", "OPTIONS") and (method.upper(), path) not in STREAMS
    ]
    return [*found, ("POST", "/api/v1/write")]


@pytest.fixture
def client(chdb_store: Store) -> Iterator[TestClient]:
    app = create_app(chdb_store, auth=AuthSettings(enabled=True, admin_key=ADMIN))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _assert_not_5xx(response, what: str) -> None:
    """No 5xx, but for Prometheus' own 503 ``timeout``: a ``timeout`` parameter of 0 or less is a query
    out of time before it starts, which Prometheus answers the same way."""
    if response.status_code == 503 and response.json().get("errorType") == "timeout":
        return
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400 and response.headers.get("content-type", "").startswith(
        "application/json"
    ):
        body = response.json()
        assert isinstance(body, dict), f"{what}: error body is not an object: {body!r}"


def test_every_route_answers_hostile_parameters_without_5xx(client: TestClient) -> None:
    routes = list(_routes(client.app))
    assert len(routes) >= 20, routes  # the app really was enumerated
    for method, path in routes:
        url = _concrete(path)
        for value in HOSTILE_VALUES:
            params = dict.fromkeys(PARAMS, value)
            if method == "GET":
                # A URL holds at most 64 KiB: the long values go whole in ``query`` only.
                short = {name: v if name == "query" else v[:200] for name, v in params.items()}
                response = client.get(url, params=short, headers=HEADERS)
            else:
                response = client.request(method, url, data=params, headers=HEADERS)
            _assert_not_5xx(response, f"{method} {path} with every parameter = {value[:40]!r}")


def test_every_route_answers_broken_encodings_without_5xx(client: TestClient) -> None:
    for method, path in _routes(client.app):
        url = _concrete(path)
        for raw in RAW_QUERY_STRINGS:
            response = client.request(method, f"{url}?{raw.decode('latin-1')}", headers=HEADERS)
            _assert_not_5xx(response, f"{method} {path}?{raw!r}")


def test_every_route_answers_hostile_bodies_without_5xx(client: TestClient) -> None:
    for method, path in _routes(client.app):
        if method == "GET":
            continue
        url = _concrete(path)
        for content_type, body in BODIES:
            headers = {**HEADERS, "Content-Type": content_type}
            response = client.request(method, url, content=body, headers=headers)
            _assert_not_5xx(response, f"{method} {path} with a {content_type} body {body[:30]!r}")


def test_server_still_answers_after_the_hostile_input(client: TestClient) -> None:
    test_every_route_answers_hostile_bodies_without_5xx(client)
    assert client.get("/-/healthy").status_code == 200
    response = client.get("/api/v1/query", params={"query": "vector(1)"}, headers=HEADERS)
    assert response.status_code == 200
    assert response.json()["data"]["result"][0]["value"][1] == "1"


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_json_and_parameters_never_5xx(client: TestClient, data: st.DataObject) -> None:
    """Property: any route, any JSON document or parameter values a client can send, no 5xx."""
    routes = list(_routes(client.app))
    method, path = data.draw(st.sampled_from(routes))
    url = _concrete(path)
    params = data.draw(st.dictionaries(st.sampled_from(PARAMS), st.text(max_size=40), max_size=6))
    if method == "GET":
        response = client.get(url, params=params, headers=HEADERS)
    else:
        body = json.dumps(data.draw(_json_values), allow_nan=True).encode()
        response = client.request(
            method, url, params=params, content=body, headers={**HEADERS, "Content-Type": "application/json"}
        )
    _assert_not_5xx(response, f"{method} {path} {params!r}")


def _valid_bodies() -> dict[tuple[str, str], object]:
    """One valid JSON body per route that reads one, as its real senders write it."""
    import time as _time

    import numpy as np

    from collector.proxy.exemplars import Exemplar, exemplars_to_wire
    from collector.window import WindowedSketches, rows_to_wire
    from model.labels import to_labels
    from model.series import Sample
    from model.wire import encode_batch

    now_ms = int(_time.time() * 1000)
    series = to_labels({"__name__": "m_bucket", "le": "1", "service_id": "s", "source": "p"})
    windows = WindowedSketches()
    windows.observe(
        "infer_service_request_cost", {"service_id": "s"}, np.array([1.0, 9.0]), now_ms / 1000 - 30
    )
    return {
        ("POST", "/api/v1/ingest"): encode_batch([Sample(series, now_ms, 1.0)]),
        ("POST", "/api/v1/ingest/exemplars"): exemplars_to_wire(
            [Exemplar(series, (("request_id", "r"), ("trace_id", "a" * 32)), 0.5, now_ms)]
        ),
        ("POST", "/api/v1/sketches"): rows_to_wire(windows.drain_all()),
        ("POST", "/api/v1/events"): {"template": "E20", "object": {"service_id": "s"}, "time": now_ms},
        ("POST", "/api/v1/audit/traces"): {
            "trace_name": "ScaleDeployment",
            "resource_type": "serviceV2",
            "time": now_ms,
            "user": {"id": "u", "name": "alice"},
            "request": {"instance_count": 2},
        },
        ("POST", "/api/v1/admin/keys"): {"project_id": "p1", "permissions": ["read"], "name": "k"},
        ("POST", "/v1/metrics"): _otlp_metrics_json(now_ms),
        ("POST", "/v1/traces"): _otlp_traces_json(now_ms),
    }


def _otlp_metrics_json(now_ms: int) -> object:
    """An OTLP/JSON metrics body: a gauge, a cumulative histogram with an exemplar, an exponential one."""
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    from tests.query.api.otlp_clients import otlp_json

    request = ExportMetricsServiceRequest()
    resource = request.resource_metrics.add()
    resource.resource.attributes.add(key="k8s.pod.name").value.string_value = "pod-0"
    metrics = resource.scope_metrics.add().metrics
    ns = now_ms * 1_000_000
    metrics.add(name="kv.usage", unit="1").gauge.data_points.add(time_unix_nano=ns, as_double=0.5)
    histogram = metrics.add(name="latency", unit="s").histogram
    histogram.aggregation_temporality = 2
    point = histogram.data_points.add(
        time_unix_nano=ns, count=3, sum=1.5, explicit_bounds=[0.1, 1.0], bucket_counts=[1, 1, 1]
    )
    point.exemplars.add(time_unix_nano=ns, as_double=0.5, trace_id=b"\x01" * 16, span_id=b"\x02" * 8)
    exponential = metrics.add(name="ttft", unit="s").exponential_histogram
    exponential.aggregation_temporality = 1
    exp = exponential.data_points.add(time_unix_nano=ns, start_time_unix_nano=ns - 10**10, count=2, scale=3)
    exp.positive.offset = 1
    exp.positive.bucket_counts.extend([1, 1])
    return json.loads(otlp_json(request))


def _otlp_traces_json(now_ms: int) -> object:
    """An OTLP/JSON traces body: one vLLM-shaped request span."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from tests.query.api.otlp_clients import otlp_json

    request = ExportTraceServiceRequest()
    spans = request.resource_spans.add()
    spans.resource.attributes.add(key="k8s.pod.name").value.string_value = "pod-0"
    span = spans.scope_spans.add().spans.add(
        trace_id=b"\x03" * 16,
        span_id=b"\x04" * 8,
        name="llm_request",
        start_time_unix_nano=(now_ms - 2000) * 1_000_000,
        end_time_unix_nano=now_ms * 1_000_000,
    )
    for key, value in (("gen_ai.latency.e2e", 2.0), ("gen_ai.latency.time_to_first_token", 0.2)):
        span.attributes.add(key=key).value.double_value = value
    span.attributes.add(key="gen_ai.usage.completion_tokens").value.int_value = 40
    return json.loads(otlp_json(request))


_LEAVES = st.one_of(
    st.integers(-(2**80), 2**80),
    st.floats(),
    st.none(),
    st.booleans(),
    st.text(max_size=40),
    st.just("x" * 70_000),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def _paths(body: object, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON value (object keys and list positions), the root included."""
    out = [prefix]
    if isinstance(body, dict):
        for key, value in body.items():
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(body, list):
        for i, value in enumerate(body):
            out.extend(_paths(value, (*prefix, i)))
    return out


def _replaced(body: object, path: tuple, value: object) -> object:
    if not path:
        return value
    head, *rest = path
    if isinstance(body, dict):
        return {**body, head: _replaced(body[head], tuple(rest), value)}
    assert isinstance(body, list)
    return [_replaced(v, tuple(rest), value) if i == head else v for i, v in enumerate(body)]


@pytest.fixture
def full_client(chdb_store: Store, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The server's app with the routers ``infersight server`` adds: rule groups and SLOs."""
    from alerts.api import build_rules_router
    from alerts.evaluator import Evaluator
    from alerts.registry import RuleRegistry
    from alerts.rules import RuleFile
    from alerts.slo_api import build_slo_router
    from alerts.slo_registry import SloRegistry
    from query.api.app import build_querier
    from query.promql.engine import Engine

    folder = tmp_path_factory.mktemp("routers")
    registry = RuleRegistry(RuleFile(()), folder / "api-rules.yml")
    evaluator = Evaluator(registry.owned, Engine(build_querier(chdb_store)).instant, lambda batch: None)
    routers = [
        build_rules_router(registry, evaluator),
        build_slo_router(SloRegistry((), folder / "slos.json")),
    ]
    auth = AuthSettings(enabled=True, admin_key=ADMIN)
    with TestClient(create_app(chdb_store, auth=auth, routers=routers), raise_server_exceptions=False) as c:
        yield c


_ROUTER_BODIES: dict[tuple[str, str], object] = {
    ("PUT", "/api/v1/rules/groups/fuzz"): {
        "interval": "30s",
        "rules": [
            {"alert": "Up", "expr": "vector(1) > 0", "for": "1m", "labels": {"severity": "page"}},
            {"alert": "Down", "expr": "up == 0", "annotations": {"summary": "{{ $labels.source }} down"}},
        ],
    },
    ("PUT", "/api/v1/slos/fuzz"): {
        "service_id": "svc-a",
        "ttft_ms": 500,
        "tpot_ms": 50,
        "objective": 0.99,
        "period": "28d",
    },
}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_valid_bodies_with_any_one_value_changed_never_5xx(
    full_client: TestClient, data: st.DataObject
) -> None:
    """A real sender's body with one value anywhere in it replaced by anything — a huge or negative
    number, NaN, a wrong type, a 70 kB string: the route answers 2xx or 4xx. Random bodies rarely get
    past the first type check; these reach the decoding and the store."""
    bodies = {**_valid_bodies(), **_ROUTER_BODIES}
    route = data.draw(st.sampled_from(sorted(bodies)))
    body = bodies[route]
    path = data.draw(st.sampled_from(_paths(body)))
    changed = _replaced(body, path, data.draw(_LEAVES))
    method, url = route
    response = full_client.request(
        method, url, content=json.dumps(changed), headers={**HEADERS, "Content-Type": "application/json"}
    )
    _assert_not_5xx(response, f"{method} {url} with {path} changed")


def test_the_valid_bodies_are_taken(full_client: TestClient) -> None:
    """The bodies the fuzz changes are themselves accepted: each change starts from a real request."""
    for (method, url), body in {**_valid_bodies(), **_ROUTER_BODIES}.items():
        response = full_client.request(method, url, json=body, headers=HEADERS)
        assert response.status_code == 200, f"{method} {url}: {response.text[:300]}"
