"""Hostile queries and parameters against a real uvicorn server: a 4xx in Prometheus' error shape,
never a crash, a 5xx or a stall; the server keeps answering (``/-/healthy``, simple queries)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.serve import InLoopServer
from model.labels import to_labels
from model.series import Sample
from query.api.app import AuthSettings, build_querier, create_app
from query.api.prometheus_v1 import MAX_MATCH_SETS, MAX_PARAMS
from query.promql.engine import Engine
from store.open import Store, open_store

T0_S = 1_700_000_000
FORM = {"content-type": "application/x-www-form-urlencoded"}
QUERY_ROUTES = ("query", "query_range", "format_query", "query_exemplars")
# A legal query that runs for hours: a Python quantile per window of 8,640 points, 10,000 steps.
ENDLESS = {"query": "quantile_over_time(0.5, vector(1)[1d:10s])", "start": "0", "end": "600000", "step": "60"}


@contextmanager
def _serve(app: Any) -> Iterator[httpx.Client]:
    """``app`` on uvicorn on a free port, its own event loop in a thread; a client for it."""
    loop = asyncio.new_event_loop()
    server = InLoopServer(app, "127.0.0.1", 0)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(60)
    try:
        with httpx.Client(base_url=server.url, timeout=120) as client:
            yield client
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(60)
        loop.close()


def _load(store: Store, name: str = "req_total", project: str | None = None) -> None:
    batch = []
    for i in range(31):
        for code in ("2xx", "5xx"):
            labels = {"__name__": name, "code": code, "pod": f"p-{'a' * 40}"}
            if project:
                labels["project_id"] = project
            batch.append(Sample(to_labels(labels), (T0_S + 10 * i) * 1000, float(i)))
    store.writer.write(batch)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    opened = open_store(f"chdb://{tmp_path_factory.mktemp('hostile') / 'data'}")
    _load(opened)
    _load(opened, "tenant_total", "p1")
    _load(opened, "tenant_total", "p2")
    yield opened
    opened.close()


@pytest.fixture(scope="module")
def client(store: Store) -> Iterator[httpx.Client]:
    with _serve(create_app(store)) as http:
        yield http


@pytest.fixture(scope="module")
def fuzz_client(store: Store) -> Iterator[httpx.Client]:
    """A smaller sample budget and time limit: legal but heavy fuzzed queries (a subquery of
    millions of steps) are refused or stopped in moments, so the fuzz covers many examples."""
    engine = Engine(build_querier(store), max_samples=200_000, timeout_s=5)
    with _serve(create_app(store, engine)) as http:
        yield http


def _error(response: httpx.Response, status: int, error_type: str) -> str:
    body = response.json()
    assert response.status_code == status, body
    assert body["status"] == "error"
    assert body["errorType"] == error_type
    assert isinstance(body["error"], str)
    return body["error"]


def _healthy(client: httpx.Client) -> None:
    assert client.get("/-/healthy").status_code == 200
    ok = client.get("/api/v1/query", params={"query": "req_total", "time": T0_S + 100})
    assert ok.status_code == 200
    assert len(ok.json()["data"]["result"]) == 2


DEEP = {
    "parentheses": "(" * 60_000 + "1" + ")" * 60_000,
    "unary minus": "-" * 100_000 + "1",
    "spaced unary": "- " * 50_000 + "req_total",
    "function calls": "abs(" * 30_000 + "vector(1)" + ")" * 30_000,
    "aggregations": "sum(" * 30_000 + "req_total" + ")" * 30_000,
    "subqueries": "max_over_time(" * 10_000 + "req_total" + "[5m:])" * 10_000,
    "plus chain": " + ".join(["req_total"] * 20_000),
    "or chain": " or ".join(["req_total"] * 20_000),
    "power chain": " ^ ".join(["2"] * 20_000),
    "selector braces": "{" * 100_000,
}


@pytest.mark.parametrize("route", QUERY_ROUTES)
@pytest.mark.parametrize("shape", sorted(DEEP))
def test_deep_or_long_queries_are_400_on_every_query_route(
    client: httpx.Client, route: str, shape: str
) -> None:
    params = {"query": DEEP[shape], "start": "0", "end": "60", "step": "15", "time": str(T0_S)}
    message = _error(client.post(f"/api/v1/{route}", data=params), 400, "bad_data")
    assert "parse error" in message
    _healthy(client)


@pytest.mark.parametrize("route", ["series", "labels", "label/code/values"])
def test_deep_match_selectors_are_400(client: httpx.Client, route: str) -> None:
    response = client.post(f"/api/v1/{route}", data={"match[]": "{" * 50_000 + "}"})
    _error(response, 400, "bad_data")
    _healthy(client)


def test_format_query_at_the_limits_answers(client: httpx.Client) -> None:
    query = "abs(" * 120 + " + ".join(["req_total"] * 200) + ")" * 120
    response = client.post("/api/v1/format_query", data={"query": query})
    assert response.status_code == 200, response.text
    assert response.json()["data"].count("abs(") == 120


BAD_PARAMS = [
    ("query", {"query": "1", "time": "1e20"}, "time"),
    ("query", {"query": "1", "time": "-1e20"}, "time"),
    ("query", {"query": "1", "time": "Inf"}, "time"),
    ("query", {"query": "1", "time": "NaN"}, "time"),
    ("query", {"query": "1", "time": "1e400"}, "time"),
    ("query", {"query": "1", "time": "9" * 5000}, "time"),
    ("query", {"query": "1", "time": "99999-01-01T00:00:00Z"}, "time"),
    ("query", {"query": "1", "timeout": "Inf"}, "timeout"),
    ("query", {"query": "1", "timeout": "1e30"}, "timeout"),
    ("query", {"query": "1", "timeout": "9" * 5000 + "s"}, "timeout"),
    ("query", {"query": "1", "timeout": "-1s"}, "timeout"),
    ("query", {"query": "req_total @ 1e20"}, "query"),
    ("query", {"query": "req_total @ -1e20"}, "query"),
    ("query", {"query": "req_total @ Inf"}, "query"),
    ("query", {"query": "req_total offset 100000000y"}, "query"),
    ("query", {"query": "req_total[1000000000y]"}, "query"),
    ("query", {"query": "rate(req_total[99999999999999999999s])"}, "query"),
    ("query", {"query": "req_total[5m:100000000000y]"}, "query"),
    ("query", {"query": ""}, "query"),
    ("query_range", {"query": "1", "start": "0", "end": "1e20", "step": "1"}, "end"),
    ("query_range", {"query": "1", "start": "-Inf", "end": "1", "step": "1"}, "start"),
    ("query_range", {"query": "1", "start": "10", "end": "0", "step": "1"}, "end"),
    ("query_range", {"query": "1", "start": "0", "end": "10", "step": "0"}, "step"),
    ("query_range", {"query": "1", "start": "0", "end": "10", "step": "-5"}, "step"),
    ("query_range", {"query": "1", "start": "0", "end": "10", "step": "Inf"}, "step"),
    ("query_range", {"query": "1", "start": "0", "end": "10", "step": "NaN"}, "step"),
    ("query_range", {"query": "1", "start": "0", "end": "10", "step": "1e20"}, "step"),
    ("query_range", {"query": "1", "start": "0", "end": "10", "step": "1000000000000y"}, "step"),
    ("query_range", {"query": "1", "start": "0", "end": "1e9", "step": "1"}, "resolution"),
    ("query_range", {"query": "1", "start": "-9e12", "end": "9e12", "step": "1e8"}, "resolution"),
    ("series", {"match[]": "req_total", "start": "1e20"}, "start"),
    ("series", {"match[]": "req_total", "end": "NaN"}, "end"),
    ("series", {"match[]": "rate(req_total[5m])"}, "match[]"),
    ("series", {"match[]": '{code=~".*"}'}, "match[]"),
    ("series", {"match[]": 'req_total{code=~"a{1001}"}'}, "regular expression"),
    ("labels", {"start": "Inf"}, "start"),
    ("label/code/values", {"end": "-1e300"}, "end"),
    ("metadata", {"limit": "1e400"}, "limit"),
    ("metadata", {"limit": "9" * 5000}, "limit"),
    ("query_exemplars", {"query": "req_total", "start": "1e20"}, "start"),
]


@pytest.mark.parametrize(("route", "params", "names"), BAD_PARAMS)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_bad_parameters_are_400(
    client: httpx.Client, route: str, params: dict[str, str], names: str, method: str
) -> None:
    if method == "GET":
        response = client.get(f"/api/v1/{route}", params=params)
    else:
        response = client.post(f"/api/v1/{route}", data=params)
    assert names in _error(response, 400, "bad_data")


@pytest.mark.parametrize(
    "raw",
    [
        b"query=%ff",
        b"query=%ED%A0%80",
        b"query=up&time=%C0%AF",
        b"query=\xff\xfe",
        b"query=up%00\xed\xa0\x80",
    ],
)
def test_invalid_utf8_is_400(client: httpx.Client, raw: bytes) -> None:
    _error(client.get(f"/api/v1/query?{raw.decode('latin-1')}"), 400, "bad_data")
    _error(client.post("/api/v1/query", content=raw, headers=FORM), 400, "bad_data")
    _error(
        client.post("/api/v1/series", content=raw.replace(b"query", b"match[]"), headers=FORM),
        400,
        "bad_data",
    )


def test_too_many_selectors_parameters_or_bytes_are_400(client: httpx.Client) -> None:
    selectors = "&".join(["match[]=req_total"] * (MAX_MATCH_SETS + 1)).encode()
    _error(client.post("/api/v1/series", content=selectors, headers=FORM), 400, "bad_data")
    params = "&".join(f"p{i}=1" for i in range(MAX_PARAMS + 1)).encode()
    _error(client.post("/api/v1/query", content=b"query=1&" + params, headers=FORM), 400, "bad_data")
    big = b"query=1&pad=" + b"x" * (5 * 1024 * 1024)
    _error(client.post("/api/v1/query", content=big, headers=FORM), 400, "bad_data")
    ok = client.post("/api/v1/series", content=b"&".join([b"match[]=req_total"] * 50), headers=FORM)
    assert ok.status_code == 200
    assert len(ok.json()["data"]) == 2


def test_a_subquery_of_billions_of_steps_is_422_at_once(client: httpx.Client) -> None:
    for query in ("max_over_time(vector(1)[30d:1ms])", "count_over_time(req_total[10y:1ms])"):
        response = client.get("/api/v1/query", params={"query": query, "time": T0_S})
        assert "too many samples" in _error(response, 422, "execution")
    _healthy(client)


def test_catastrophic_regexes_answer_and_are_right(client: httpx.Client) -> None:
    value = "a" * 20_000
    with_src = f'label_replace(vector(1), "src", "{value}b", "", "")'
    response = client.post(
        "/api/v1/query", data={"query": f'label_replace({with_src}, "d", "$1", "src", "(a+)+b")'}
    )
    assert response.status_code == 200
    assert response.json()["data"]["result"][0]["metric"]["d"] == value
    response = client.get(
        "/api/v1/query", params={"query": 'req_total{pod=~"(p|-|a+)+b"}', "time": T0_S + 100}
    )
    assert response.status_code == 200
    assert response.json()["data"]["result"] == []
    response = client.get("/api/v1/series", params={"match[]": 'req_total{pod=~"((a*)*)*p.*"}'})
    assert len(response.json()["data"]) == 2


def test_a_timed_out_query_stops_and_frees_its_worker(store: Store) -> None:
    """One worker only: had the timed-out query run on, the next one would wait for it, for
    hours (its own limit is the engine's 120 s, and it would answer ``timeout``)."""
    engine = Engine(build_querier(store), max_concurrent=1)
    with _serve(create_app(store, engine)) as client:
        response = client.get("/api/v1/query_range", params={**ENDLESS, "timeout": "1s"})
        _error(response, 503, "timeout")
        _healthy(client)


def _post(client: httpx.Client, path: str, data: dict[str, str]) -> httpx.Response:
    return client.post(path, data=data)


def test_simple_queries_answer_while_hostile_ones_run(client: httpx.Client) -> None:
    hostile = [
        ("/api/v1/query_range", {**ENDLESS, "timeout": "3s"}),
        ("/api/v1/query", {"query": DEEP["parentheses"]}),
        ("/api/v1/query", {"query": "max_over_time(vector(1)[30d:1ms])"}),
        ("/api/v1/format_query", {"query": "abs(" * 127 + "req_total" + ")" * 127}),
    ]
    with ThreadPoolExecutor(10) as pool:
        sent = [pool.submit(_post, client, *hostile[i % len(hostile)]) for i in range(10)]
        for _ in range(10):
            _healthy(client)
        answers = [future.result() for future in sent]
    assert all(r.status_code in (200, 400, 422, 503) for r in answers)
    assert {r.json()["status"] for r in answers} <= {"success", "error"}


def test_a_confined_key_s_long_range_query_reads_only_its_project(store: Store) -> None:
    """Range queries are evaluated in passes, some in other threads: each one keeps the scope."""
    admin = {"Authorization": "Bearer admin-secret"}
    engine = Engine(build_querier(store), max_steps_per_pass=5, points_per_pass=10)
    app = create_app(store, engine, auth=AuthSettings(enabled=True, admin_key="admin-secret"))
    with _serve(app) as client:
        made = client.post(
            "/api/v1/admin/keys", json={"project_id": "p1", "permissions": ["read"]}, headers=admin
        )
        key = {"Authorization": f"Bearer {made.json()['data']['key']}"}
        params = {"query": "tenant_total", "start": str(T0_S), "end": str(T0_S + 300), "step": "10"}
        result = client.get("/api/v1/query_range", params=params, headers=key).json()["data"]["result"]
        assert {r["metric"]["project_id"] for r in result} == {"p1"}
        assert [len(r["values"]) for r in result] == [31, 31]


# -- fuzz -------------------------------------------------------------------------------------

_NUMBERS = st.sampled_from(
    ["0", "-1", "1e20", "-1e20", "1e308", "1e400", "Inf", "-Inf", "NaN", "9" * 40, "1.5", "0x10", ""]
)
_DURATIONS = st.sampled_from(
    ["1ms", "1s", "5m", "1h", "30d", "100000000y", "0s", "1e20s", "", "-5m", "1y2w3d"]
)
_ATOMS = st.sampled_from(
    [
        "req_total",
        'req_total{code="2xx"}',
        'req_total{code=~"(a+)+b"}',
        '{__name__=~".+"}',
        "vector(1)",
        "time()",
        "1",
        "NaN",
        "Inf",
        '"str"',
        "nosuch",
    ]
)
_FUNCTIONS = st.sampled_from(
    [
        "abs",
        "rate",
        "sum",
        "max_over_time",
        "count_values",
        "label_replace",
        "histogram_quantile",
        "year",
        "sort",
        "topk",
        "quantile_over_time",
        "timestamp",
        "absent",
        "scalar",
        "round",
    ]
)
_OPERATORS = st.sampled_from(
    ["+", "-", "*", "/", "%", "^", "==", "!=", ">", "<", "and", "or", "unless", "atan2"]
)


@st.composite
def _promql(draw: st.DrawFn, depth: int = 0) -> str:
    if depth > 3:
        return draw(_ATOMS)
    kind = draw(st.integers(0, 8))
    inner = draw(_promql(depth + 1))
    if kind == 0:
        return f"{draw(_FUNCTIONS)}({inner})"
    if kind == 1:
        return f"{inner} {draw(_OPERATORS)} {draw(_promql(depth + 1))}"
    if kind == 2:
        return f"({inner})[{draw(_DURATIONS)}:{draw(_DURATIONS)}]"
    if kind == 3:
        return f"{draw(_FUNCTIONS)}({inner}[{draw(_DURATIONS)}])"
    if kind == 4:
        return f"{inner} offset {draw(_DURATIONS)}"
    if kind == 5:
        return f"{inner} @ {draw(_NUMBERS)}"
    if kind == 6:
        return f'label_replace({inner}, "d", "$1", "code", {json.dumps(draw(st.text(max_size=20)))})'
    if kind == 7:
        # Long repetitions only at the top: nested ones would multiply into gigabytes of text.
        n = draw(st.sampled_from([1, 10, 127, 129, 1000, 30_000] if depth == 0 else [1, 2, 10]))
        wrap = draw(st.sampled_from(["(", "-", "abs(", "sum("]))
        close = ")" if wrap.endswith("(") else ""
        return wrap * n + inner + close * n
    n = draw(st.sampled_from([2, 100, 256, 257, 5000] if depth == 0 else [2, 3]))
    return f" {draw(_OPERATORS)} ".join([inner] * n)


_QUERIES = st.one_of(
    _promql(),
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.text(alphabet="()[]{}-+\"'`#\\@:", max_size=2000),
)
_VALUES = st.one_of(
    _NUMBERS, _DURATIONS, st.text(max_size=30), st.sampled_from(["2023-11-14T22:13:20Z", "-0"])
)
_ROUTES = st.sampled_from(
    [
        "query",
        "query_range",
        "format_query",
        "query_exemplars",
        "series",
        "labels",
        "label/code/values",
        "label/__name__/values",
        "metadata",
    ]
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    route=_ROUTES,
    query=_QUERIES,
    params=st.dictionaries(
        st.sampled_from(["time", "start", "end", "step", "timeout", "limit", "metric"]), _VALUES, max_size=5
    ),
    selectors=st.lists(st.one_of(_promql(), st.text(max_size=40)), max_size=3),
    method=st.sampled_from(["GET", "POST"]),
)
def test_fuzz_every_answer_is_json_in_prometheus_shape_and_never_5xx(
    fuzz_client: httpx.Client,
    route: str,
    query: str,
    params: dict[str, str],
    selectors: list[str],
    method: str,
) -> None:
    pairs = [("query", query), *params.items(), *(("match[]", s) for s in selectors)]
    encoded = str(httpx.QueryParams(pairs))
    if method == "GET" and len(encoded) < 8000:  # longer URLs: the client refuses them
        response = fuzz_client.get(f"/api/v1/{route}?{encoded}")
    else:
        body = encoded.encode("utf-8", "surrogatepass")
        response = fuzz_client.post(f"/api/v1/{route}", content=body, headers=FORM)
    assert response.status_code < 500 or response.json()["errorType"] == "timeout", response.text[:500]
    if response.status_code == 204:  # query_exemplars of a query with no selector, as in Prometheus
        assert route == "query_exemplars"
        assert not response.content
        return
    body = response.json()
    assert body["status"] in ("success", "error")
    if body["status"] == "error":
        assert response.status_code >= 400
        assert isinstance(body["errorType"], str)
        assert isinstance(body["error"], str)
    else:
        assert response.status_code == 200
        assert "data" in body


def test_after_the_fuzz_the_server_still_answers(fuzz_client: httpx.Client) -> None:
    _healthy(fuzz_client)
