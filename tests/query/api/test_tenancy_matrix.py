"""The tenancy matrix: every endpoint of the server, times every kind of caller that is not
project A, times requests aimed at A's data; none of them sees or changes anything of A's.

Endpoints are enumerated from the app itself (FastAPI's routes and the exact routes served ahead
of the router, such as remote write), so a new endpoint fails ``test_every_route_is_classified``
until its attacks are written in ``attacks``. A response "sees" A's data when it holds one of A's
strings (label values, key ids, event and trace fields, rule and alert names, sample and sketch
values) that the caller's project did not send itself (an echo, or its own audit trail, is no
leak); "changes" is checked by a snapshot of A's data taken through the bootstrap key before and
after. A control pass with A's own keys shows that the same requests do reach every one of those
strings, so the check can fail.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from alerts.api import build_rules_router
from alerts.evaluator import Evaluator
from alerts.registry import RuleRegistry
from alerts.rules import AlertRule, RuleFile, RuleGroup
from collector.window import WindowedSketches, rows_to_wire
from query.api.app import AuthSettings, ExactRoutes, build_querier, create_app
from query.api.remote_write import encode_write_request
from query.promql.engine import Engine
from store.api_keys import PERMISSIONS, KeyStore
from store.metadata import MetadataStore
from store.open import Store
from tests.query.api.live_server import live_server

ADMIN = "matrix-bootstrap-admin-key"
A, B = "proj-a", "proj-b"
T0_S = 1_764_000_000
T0_MS = T0_S * 1000
METRIC = "tenant_a_metric"
HIDDEN_LABEL = "a_hidden_label"
HIDDEN_VALUE = "a-hidden-value"
SAMPLE = "4242.25"
SKETCH_VALUE = "7777.5"
SKETCH_METRIC = "infer_service_first_token_cost"
HIDDEN_SVC = "a-hidden-svc"
HIDDEN_TRACE = "a-hidden-trace"
HIDDEN_REQUEST = "a-hidden-request-id"  # an exemplar's
GROUP = "a-group"
ALERT = "AHiddenAlert"
ANNOTATION = "a-hidden-annotation"
GLOBAL_ALERT = "GlobalHiddenAlert"
KEY_NAME = "a-hidden-keyname"
BOOT = {"Authorization": f"Bearer {ADMIN}"}
OPEN_PATHS = {
    "/-/healthy",
    "/-/ready",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/",
    "/console",
}


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # the URL path, parameters filled in
    params: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    content_type: str = "application/json"
    stream: bool = False

    def text(self) -> str:
        """Everything the caller sent: A's strings in it may come back (an echo is no leak)."""
        return self.path + json.dumps(self.params) + self.body.decode("latin-1")


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


@dataclass
class World:
    url: str
    store: Store
    evaluator: Evaluator
    a_keys: dict[str, str] = field(default_factory=dict)  # permission → secret
    a_key_ids: list[str] = field(default_factory=list)
    callers: dict[str, list[tuple[bytes, bytes]]] = field(default_factory=dict)

    def markers(self) -> list[str]:
        """A's strings that no other caller may see unless it sent them."""
        fixed = [A, METRIC, HIDDEN_LABEL, HIDDEN_VALUE, SAMPLE, SKETCH_VALUE, HIDDEN_SVC, HIDDEN_TRACE]
        fixed.append(HIDDEN_REQUEST)
        return [
            *fixed,
            GROUP,
            ALERT,
            ANNOTATION,
            GLOBAL_ALERT,
            KEY_NAME,
            *self.a_key_ids,
            *self.a_keys.values(),
        ]


def _routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path template) of every route the app serves, exact routes included."""
    found: set[tuple[str, str]] = set()

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            inner = getattr(route, "original_router", None)
            if inner is not None:  # FastAPI >= 0.16x keeps an included router whole
                walk(inner.routes, prefix + getattr(route.include_context, "prefix", ""))
            elif hasattr(route, "path"):
                methods = set(getattr(route, "methods", None) or {"GET"})
                for method in methods - {"HEAD"} if "GET" in methods else methods:
                    found.add((method, prefix + route.path))

    walk(app.routes, "")
    for middleware in app.front:
        if middleware.cls is ExactRoutes:
            found.update(("POST", path) for path in middleware.kwargs["routes"])
    return found


def _sketch_rows(project: str, service: str, value: float) -> bytes:
    windows = WindowedSketches()
    labels = {"service_id": service, "group_id": "g", "source": "pod", "project_id": project}
    windows.observe(SKETCH_METRIC, labels, np.array([value]), T0_S)
    return _json(rows_to_wire(windows.drain_all()))


def _otlp_gauge(name: str, attributes: dict[str, str], ts_ms: int, value: float) -> bytes:
    """An OTLP metrics request of one gauge point (its project named in a resource attribute too)."""
    request = ExportMetricsServiceRequest()
    resource = request.resource_metrics.add()
    resource.resource.attributes.append(
        KeyValue(key="infersight.project_id", value=AnyValue(string_value=attributes["project_id"]))
    )
    point = resource.scope_metrics.add().metrics.add(name=name).gauge.data_points.add()
    point.time_unix_nano, point.as_double = ts_ms * 1_000_000, value
    point.attributes.extend(KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in attributes.items())
    return request.SerializeToString()


def _otlp_span(project: str) -> bytes:
    """An OTLP traces request of one LLM request span under ``project``'s resource."""
    request = ExportTraceServiceRequest()
    resource = request.resource_spans.add()
    resource.resource.attributes.append(
        KeyValue(key="infersight.project_id", value=AnyValue(string_value=project))
    )
    span = resource.scope_spans.add().spans.add(
        name="llm_request", trace_id=b"\x01" * 16, span_id=b"\x02" * 8
    )
    span.start_time_unix_nano, span.end_time_unix_nano = T0_MS * 1_000_000, (T0_MS + 50) * 1_000_000
    span.attributes.append(KeyValue(key="gen_ai.latency.e2e", value=AnyValue(double_value=0.05)))
    return request.SerializeToString()


def attacks(key_id: str) -> dict[tuple[str, str], list[Call]]:
    """For every route, requests aimed at project A's data (``key_id``: one of A's keys)."""
    sel = f'{{project_id="{A}"}}'
    queries = [
        METRIC,
        sel,
        "ALERTS",
        "ALERTS_FOR_STATE",
        '{__name__=~".+"}',
        f"count by ({HIDDEN_LABEL}) ({sel})",
    ]
    instant = [(("query", q), ("time", str(T0_S))) for q in queries]
    ranged = [
        (("query", q), ("start", str(T0_S - 60)), ("end", str(T0_S + 60)), ("step", "15")) for q in queries
    ]
    span = (("start", str(T0_S - 3600)), ("end", str(T0_S + 3600)))
    labels = [(), (("match[]", sel), *span), (("match[]", '{__name__=~".+"}'), *span)]
    series = [(("match[]", m), *span) for m in (sel, '{__name__=~".+"}', "ALERTS", METRIC)]
    ingest = _json(
        {
            "series": [
                {"labels": {"__name__": METRIC, "project_id": A, "attack": "1"}, "samples": [[T0_MS, "9"]]}
            ]
        }
    )
    write = encode_write_request([({"__name__": METRIC, "project_id": A, "attack": "1"}, [(T0_MS, 9.0)])])
    otlp = _otlp_gauge(METRIC, {"project_id": A, "attack": "1"}, T0_MS, 9.0)
    spans = _otlp_span(A)
    event = _json({"template": "E20", "object": {"service_id": "attack-svc", "project_id": A}, "time": T0_MS})
    trace = _json({"trace_name": "Attack", "resource_type": "serviceV2", "time": T0_MS, "project_id": A})
    group = _json({"rules": [{"alert": "Attack", "expr": "vector(1)"}]})
    sketch = [
        (("metric", SKETCH_METRIC), ("start", str(T0_S - 600)), ("end", str(T0_S + 600)), *extra)
        for extra in ((("project_id", A),), ())
    ]

    def both(path: str, variants: list[tuple[tuple[str, str], ...]]) -> dict[tuple[str, str], list[Call]]:
        return {
            ("GET", path): [Call("GET", path, v) for v in variants],
            ("POST", path): [
                Call(
                    "POST",
                    path,
                    body=httpx.QueryParams(v).__str__().encode(),
                    content_type="application/x-www-form-urlencoded",
                )
                for v in variants
            ],
        }

    v1 = "/api/v1"
    table: dict[tuple[str, str], list[Call]] = {
        **both(f"{v1}/query", instant),
        **both(f"{v1}/query_range", ranged),
        **both(f"{v1}/format_query", [(("query", sel),)]),
        **both(f"{v1}/labels", labels),
        **both(f"{v1}/series", series),
        **{
            (method, f"{v1}/label/{{name}}/values"): [
                call
                for name in ("project_id", HIDDEN_LABEL, "__name__", "alertname", "service_id")
                for call in both(f"{v1}/label/{name}/values", [(), (("match[]", sel), *span)])[
                    (method, f"{v1}/label/{name}/values")
                ]
            ]
            for method in ("GET", "POST")
        },
        **both(f"{v1}/metadata", [(), (("metric", METRIC),)]),
        **both(f"{v1}/query_exemplars", [(("query", sel), *span)]),
        **both(f"{v1}/status/buildinfo", [()]),
        **both(f"{v1}/status/runtimeinfo", [()]),
        ("POST", f"{v1}/ingest"): [Call("POST", f"{v1}/ingest", body=ingest)],
        ("POST", f"{v1}/ingest/metadata"): [
            Call("POST", f"{v1}/ingest/metadata", body=_json({"metadata": [meta]}))
            for meta in (
                {"metric": METRIC, "help": "attack", "project_id": A},
                {"metric": METRIC, "help": "x"},
            )
        ],
        **{
            ("POST", path): [Call("POST", path, body=otlp, content_type="application/x-protobuf")]
            for path in ("/v1/metrics", f"{v1}/otlp/v1/metrics")
        },
        **{
            ("POST", path): [Call("POST", path, body=spans, content_type="application/x-protobuf")]
            for path in ("/v1/traces", f"{v1}/otlp/v1/traces")
        },
        ("POST", f"{v1}/write"): [
            Call("POST", f"{v1}/write", body=write, content_type="application/x-protobuf")
        ],
        ("GET", f"{v1}/events"): [
            Call("GET", f"{v1}/events", p) for p in ((("project_id", A),), (), (("q", "hidden"),))
        ],
        ("POST", f"{v1}/events"): [Call("POST", f"{v1}/events", body=event)],
        ("GET", f"{v1}/events/stream"): [Call("GET", f"{v1}/events/stream", stream=True)],
        ("GET", f"{v1}/audit/traces"): [
            Call("GET", f"{v1}/audit/traces", p)
            for p in ((("project_id", A), ("limit", "200")), (("limit", "200"),), (("q", "hidden"),))
        ],
        ("POST", f"{v1}/audit/traces"): [Call("POST", f"{v1}/audit/traces", body=trace)],
        ("GET", f"{v1}/audit/verify"): [Call("GET", f"{v1}/audit/verify")],
        ("GET", f"{v1}/admin/keys"): [
            Call("GET", f"{v1}/admin/keys", p) for p in ((), (("project_id", A),), (("project_id", "*"),))
        ],
        ("POST", f"{v1}/admin/keys"): [
            Call("POST", f"{v1}/admin/keys", body=_json({"project_id": p, "permissions": list(PERMISSIONS)}))
            for p in (A, "*")
        ],
        ("DELETE", f"{v1}/admin/keys/{{key_id}}"): [Call("DELETE", f"{v1}/admin/keys/{key_id}")],
        ("GET", f"{v1}/admin/retention"): [Call("GET", f"{v1}/admin/retention")],
        ("PUT", f"{v1}/admin/retention"): [
            Call("PUT", f"{v1}/admin/retention", body=_json({"pod_events_ms": 1000}))
        ],
        ("POST", f"{v1}/sketches"): [Call("POST", f"{v1}/sketches", body=_sketch_rows(A, "attack-svc", 1.0))],
        ("POST", f"{v1}/ingest/exemplars"): [
            Call("POST", f"{v1}/ingest/exemplars", body=_exemplar(project)) for project in (A, None)
        ],
        ("GET", f"{v1}/sketch_quantiles"): [Call("GET", f"{v1}/sketch_quantiles", p) for p in sketch],
        ("GET", f"{v1}/rules"): [Call("GET", f"{v1}/rules")],
        ("GET", f"{v1}/alerts"): [Call("GET", f"{v1}/alerts")],
        ("GET", f"{v1}/rules/groups/{{name}}"): [
            Call("GET", f"{v1}/rules/groups/{GROUP}", p) for p in ((), (("project_id", A),))
        ],
        ("PUT", f"{v1}/rules/groups/{{name}}"): [
            Call("PUT", f"{v1}/rules/groups/{name}", p, body=group)
            for name, p in (
                (GROUP, ()),
                (GROUP, (("project_id", A),)),
                ("global-group", ()),
                ("new-global", ()),
            )
        ],
        ("DELETE", f"{v1}/rules/groups/{{name}}"): [
            Call("DELETE", f"{v1}/rules/groups/{name}", p)
            for name, p in ((GROUP, ()), (GROUP, (("project_id", A),)), ("global-group", ()))
        ],
    }
    table.update({("GET", path): [Call("GET", path)] for path in OPEN_PATHS})
    return table


def _send(client: httpx.Client, call: Call, headers: list[tuple[bytes, bytes]]) -> httpx.Response:
    all_headers = [*headers, (b"content-type", call.content_type.encode())] if call.body else headers
    return client.request(
        call.method, call.path, params=call.params, content=call.body or None, headers=all_headers
    )


@pytest.fixture
def world(chdb_store: Store, tmp_path: Path) -> Iterator[World]:
    """A server holding project A's series, sketches, events, traces, keys, a rule group with a
    firing alert and its ALERTS series, plus a global rule firing on A's series; B has keys."""
    engine = Engine(build_querier(chdb_store))
    global_rules = RuleFile((RuleGroup("global-group", (AlertRule(GLOBAL_ALERT, f"{METRIC} > 0"),)),))
    registry = RuleRegistry(global_rules, tmp_path / "api-rules.yml")
    evaluator = Evaluator(registry.owned, engine.instant, chdb_store.writer.write)
    auth = AuthSettings(enabled=True, admin_key=ADMIN, max_failures=1_000_000)
    app = create_app(chdb_store, engine, auth=auth, routers=[build_rules_router(registry, evaluator)])
    with live_server(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        world = World(url, chdb_store, evaluator)

        def key(project: str, perms: list[str], name: str = "") -> tuple[str, str]:
            body = {"project_id": project, "permissions": perms, "name": name or f"{project}-key"}
            data = client.post("/api/v1/admin/keys", json=body, headers=BOOT).json()["data"]
            return data["key_id"], data["key"]

        for perm in ("read", "write", "audit", "admin"):
            key_id, secret = key(A, [perm], KEY_NAME)
            world.a_keys[perm], world.a_key_ids = secret, [*world.a_key_ids, key_id]
        a_write = {"Authorization": f"Bearer {world.a_keys['write']}"}
        a_admin = {"Authorization": f"Bearer {world.a_keys['admin']}"}
        labels = {"__name__": METRIC, HIDDEN_LABEL: HIDDEN_VALUE, "service_id": HIDDEN_SVC}
        body = {"series": [{"labels": labels, "samples": [[T0_MS, SAMPLE]]}]}
        assert client.post("/api/v1/ingest", json=body, headers=a_write).status_code == 200
        metadata = {"metadata": [{"metric": METRIC, "type": "gauge", "help": HIDDEN_VALUE, "time": T0_MS}]}
        assert client.post("/api/v1/ingest/metadata", json=metadata, headers=a_write).status_code == 200
        event = {"template": "E20", "object": {"service_id": HIDDEN_SVC}, "time": T0_MS}
        assert client.post("/api/v1/events", json=event, headers=a_write).status_code == 200
        trace = {
            "trace_name": "ScaleDeployment",
            "resource_type": "serviceV2",
            "time": T0_MS,
            "resource_name": HIDDEN_TRACE,
        }
        assert client.post("/api/v1/audit/traces", json=trace, headers=a_write).status_code == 200
        response = client.post(
            "/api/v1/ingest/exemplars",
            content=_exemplar(None, HIDDEN_REQUEST),
            headers={**a_write, "content-type": "application/json"},
        )
        assert response.status_code == 200, response.text
        sketch = _sketch_rows(A, HIDDEN_SVC, float(SKETCH_VALUE))
        response = client.post(
            "/api/v1/sketches", content=sketch, headers={**a_write, "content-type": "application/json"}
        )
        assert response.status_code == 200, response.text
        rule = {"alert": ALERT, "expr": f"{METRIC} > 0", "annotations": {"summary": ANNOTATION}}
        response = client.put(f"/api/v1/rules/groups/{GROUP}", json={"rules": [rule]}, headers=a_admin)
        assert response.status_code == 200, response.text
        evaluator.evaluate(T0_MS)
        # B: its own data, and a key with each permission and with all of them
        for perm in (*PERMISSIONS, "all"):
            _, secret = key(B, list(PERMISSIONS) if perm == "all" else [perm])
            world.callers[f"B-{perm}"] = [(b"authorization", f"Bearer {secret}".encode())]
        b_labels = {"__name__": "tenant_b_metric", "service_id": "b-svc"}
        b_body = {"series": [{"labels": b_labels, "samples": [[T0_MS, "1"]]}]}
        b_write = dict(world.callers["B-all"])
        assert client.post("/api/v1/ingest", json=b_body, headers=b_write).status_code == 200
        world.callers["no key"] = []
        world.callers["bad key"] = [(b"authorization", b"Bearer isk_not-a-key")]
        world.callers["malformed"] = [(b"authorization", "Bearer cl\u00e9".encode())]
        yield world


def _exemplar(project: str | None, request_id: str = "attack") -> bytes:
    """One exemplar on A's series (``project``: its project_id label; None: the key's own)."""
    series = {"__name__": METRIC, HIDDEN_LABEL: HIDDEN_VALUE, "service_id": HIDDEN_SVC}
    if project is not None:
        series["project_id"] = project
    exemplar = {"series": series, "labels": {"request_id": request_id}, "value": 1.5, "ts_ms": T0_MS}
    return _json({"exemplars": [exemplar]})


def _snapshot(client: httpx.Client, world: World) -> dict[str, Any]:
    """Project A's data, read through the bootstrap key (no call here writes a trace of A's)."""

    def get(path: str, **params: Any) -> Any:
        response = client.get(path, params=params, headers=BOOT)
        assert response.status_code == 200, response.text
        return response.json()

    sel = f'{{project_id="{A}"}}'
    span = {"start": T0_S - 3600, "end": T0_S + 3600}
    return {
        "series": sorted(
            json.dumps(s, sort_keys=True) for s in get("/api/v1/series", **{"match[]": sel}, **span)["data"]
        ),
        "values": get("/api/v1/query_range", query=sel, step=15, **span)["data"],
        "events": get("/api/v1/events", project_id=A, limit=500)["data"],
        "traces": get("/api/v1/audit/traces", project_id=A, limit=200)["traces"],
        "keys": [(k.key_id, k.project_id, k.permissions) for k in KeyStore(world.store.backend).list(A)],
        "all_keys": sorted(k.project_id for k in KeyStore(world.store.backend).list()),
        "metadata": MetadataStore(world.store.backend).read(A),
        "retention": get("/api/v1/admin/retention")["data"],
        "group": get(f"/api/v1/rules/groups/{GROUP}", project_id=A)["data"],
        "global": get("/api/v1/rules/groups/global-group")["data"],
        "groups": sorted(
            (g["name"], g.get("project_id", ""))
            for g in get("/api/v1/rules")["data"]["groups"]
            if g.get("project_id", "") in (A, "")
        ),
        "sketches": get(
            "/api/v1/sketch_quantiles",
            metric=SKETCH_METRIC,
            project_id=A,
            period="10m",
            start=T0_S - 600,
            end=T0_S + 600,
        )["data"],
        "verify": get("/api/v1/audit/verify")["data"]["ok"],
        "exemplars": get("/api/v1/query_exemplars", query=sel, **span)["data"],
    }


def _stream_sees_only_own_events(
    client: httpx.Client, world: World, headers: list[tuple[bytes, bytes]]
) -> tuple[int, str]:
    """The SSE stream: A publishes an event, then B's sentinel is published; the stream delivers
    in order, so once B's sentinel arrives A's event has been passed over (or leaked) already."""
    seen = ""
    with client.stream("GET", "/api/v1/events/stream", headers=headers) as stream:
        if stream.status_code != 200:
            return stream.status_code, stream.read().decode("latin-1")
        lines = stream.iter_lines()
        assert next(lines).startswith(": infersight events")
        a_write = {"Authorization": f"Bearer {world.a_keys['write']}"}
        event = {"template": "E20", "object": {"service_id": HIDDEN_SVC}, "time": T0_MS}
        assert httpx.post(f"{world.url}/api/v1/events", json=event, headers=a_write).status_code == 200
        sentinel = {"template": "E20", "object": {"service_id": "b-sentinel", "project_id": B}, "time": T0_MS}
        assert httpx.post(f"{world.url}/api/v1/events", json=sentinel, headers=BOOT).status_code == 200
        for line in lines:
            seen += line + "\n"
            if "b-sentinel" in line:
                break
    return 200, seen


def test_every_route_is_classified(world: World, chdb_store: Store, tmp_path: Path) -> None:
    """A route the matrix does not attack is a route nobody checked: name it here, with its attacks."""
    registry = RuleRegistry(RuleFile(()), tmp_path / "rules.yml")
    evaluator = Evaluator(RuleFile(()), Engine(build_querier(chdb_store)).instant, lambda batch: None)
    app = create_app(
        chdb_store, auth=AuthSettings(True, ADMIN), routers=[build_rules_router(registry, evaluator)]
    )
    served, classified = _routes(app), set(attacks("k"))
    assert served - classified == set(), "routes without tenancy attacks"
    assert classified - served == set(), "attacks on routes that no longer exist"


def test_no_other_caller_sees_or_changes_project_a(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    table = attacks(world.a_key_ids[0])
    calls = [call for variants in table.values() for call in variants]
    markers = world.markers()
    with httpx.Client(base_url=world.url, timeout=60) as client:
        # Control: A's own keys (all of them, bootstrap for the rest) reach every marker through
        # these same requests, so a leak would be seen.
        reached: set[str] = set()
        for call in calls:
            if call.method != "GET" or call.stream:
                continue
            for headers in ([(b"authorization", f"Bearer {s}".encode())] for s in world.a_keys.values()):
                reached.update(m for m in markers if m in _send(client, call, headers).text)
        key_listing = _send(
            client,
            Call("GET", "/api/v1/admin/keys", (("project_id", A),)),
            [(b"authorization", BOOT["Authorization"].encode())],
        )
        reached.update(m for m in markers if m in key_listing.text)
        reached.update(world.a_keys.values())  # secrets are shown once, at creation: never listed
        assert set(markers) - reached == set(), "the control pass misses some of A's data"

        before = _snapshot(client, world)
        cells, failures = 0, []
        sent = ""  # what B's callers sent so far: B's own audit trail may show it back
        for caller, headers in world.callers.items():
            for call in calls:
                cells += 1
                sent += call.text()
                if call.stream:
                    status, text = _stream_sees_only_own_events(client, world, headers)
                else:
                    response = _send(client, call, headers)
                    status, text = response.status_code, response.text
                where = f"{caller} {call.method} {call.path} {call.params}"
                if status >= 500:
                    failures.append(f"{where}: HTTP {status} {text[:200]}")
                if (
                    caller in ("no key", "bad key", "malformed")
                    and call.path.startswith("/api")
                    and status != 401
                ):
                    failures.append(f"{where}: HTTP {status} without a valid key")
                leaked = [m for m in markers if m not in sent and m in text]
                if leaked:
                    failures.append(f"{where}: sees {leaked}")
        after = _snapshot(client, world)
    assert failures == [], "\n".join(failures)
    for part in before:
        assert after[part] == before[part], f"project A's {part} changed"
    with capsys.disabled():
        sys.stdout.write(
            f"\ntenancy matrix: {len(table)} routes, {len(calls)} requests"
            f" x {len(world.callers)} callers = {cells} cells\n"
        )
