"""Grafana's request shapes: every route by GET and POST form, format_query, metadata, limits."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi.testclient import TestClient

from model.labels import to_labels
from model.series import Sample
from query.api.app import create_app
from query.promql.engine import Engine
from query.promql.errors import PromQLError
from store.open import Store

T0_S = 1_700_000_000


@pytest.fixture
def store(chdb_store: Store) -> Store:
    batch = []
    for i in range(31):
        ts = (T0_S + 10 * i) * 1000
        for code in ("2xx", "5xx"):
            labels = {"__name__": "infer_service_request_total", "service_id": "s1", "code": code}
            batch.append(Sample(to_labels(labels), ts, float(i)))
        for le in ("100", "+Inf"):
            for name, extra in (("_bucket", {"le": le}), ("_count", {}), ("_sum", {})):
                labels = {"__name__": f"infer_service_first_token_cost{name}", "service_id": "s1", **extra}
                batch.append(Sample(to_labels(labels), ts, float(i)))
        batch.append(Sample(to_labels({"__name__": "ma_container_cpu_util", "source": "p"}), ts, 0.5))
    chdb_store.writer.write(batch)
    return chdb_store


@pytest.fixture
def client(store: Store) -> TestClient:
    return TestClient(create_app(store))


def _call(client: TestClient, method: str, path: str, params: dict[str, str]):
    if method == "GET":
        return client.get(f"/api/v1/{path}", params=params)
    return client.post(f"/api/v1/{path}", data=params)


def _ok(response) -> object:
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "success"
    return body["data"]


ALL = ["infer_service_first_token_cost", "infer_service_request_total", "ma_container_cpu_util"]
WINDOW = {"start": str(T0_S), "end": str(T0_S + 300)}
ROUTES = [
    ("query", {"query": "ma_container_cpu_util", "time": str(T0_S + 60)}),
    ("query_range", {"query": "ma_container_cpu_util", **WINDOW, "step": "60"}),
    ("format_query", {"query": "sum(rate(x[5m]))by(a)"}),
    ("labels", {"match[]": "ma_container_cpu_util", **WINDOW}),
    ("label/source/values", {"match[]": "ma_container_cpu_util", **WINDOW}),
    ("series", {"match[]": "ma_container_cpu_util", **WINDOW}),
    ("metadata", {"metric": "ma_container_cpu_util"}),
    ("query_exemplars", {"query": "ma_container_cpu_util", **WINDOW}),
    ("status/buildinfo", {}),
]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(("path", "params"), ROUTES)
def test_every_route_answers_get_and_post(
    client: TestClient, method: str, path: str, params: dict[str, str]
) -> None:
    _ok(_call(client, method, path, params))


def test_get_and_post_give_the_same_answer(client: TestClient) -> None:
    for path, params in ROUTES:
        assert _ok(_call(client, "GET", path, params)) == _ok(_call(client, "POST", path, params)), path


def test_format_query_prettifies_like_prometheus(client: TestClient) -> None:
    assert _ok(client.get("/api/v1/format_query", params={"query": "sum(x)by(a)"})) == "sum by (a) (x)"
    bad = client.get("/api/v1/format_query", params={"query": "sum(("})
    assert bad.status_code == 400
    assert bad.json()["errorType"] == "bad_data"
    assert bad.json()["error"].startswith('invalid parameter "query": ')


def test_metadata_of_the_guides_series_is_the_guides(client: TestClient) -> None:
    from model.catalog import GUIDE_METADATA

    names = ("infer_service_first_token_cost", "infer_service_request_total", "ma_container_cpu_util")
    assert _ok(client.get("/api/v1/metadata")) == {name: [GUIDE_METADATA[name].entry()] for name in names}


@pytest.mark.parametrize(
    ("params", "names"),
    [
        ({"limit": "1"}, ["infer_service_first_token_cost"]),
        ({"limit": "0"}, []),
        (
            {"limit": "-1"},
            ["infer_service_first_token_cost", "infer_service_request_total", "ma_container_cpu_util"],
        ),
        ({"metric": "infer_service_request_total"}, ["infer_service_request_total"]),
        ({"metric": "nope"}, []),
    ],
)
def test_metadata_filters(client: TestClient, params: dict[str, str], names: list[str]) -> None:
    assert list(_ok(client.get("/api/v1/metadata", params=params))) == names


def test_metadata_of_an_empty_store_is_valid(chdb_store: Store) -> None:
    assert _ok(TestClient(create_app(chdb_store)).get("/api/v1/metadata")) == {}


@pytest.mark.parametrize(
    ("path", "params", "status", "error_type", "message"),
    [
        ("metadata", {"limit": "abc"}, 400, "bad_data", "limit must be a number"),
        ("label/foo-bar/values", {}, 400, "bad_data", 'invalid label name: "foo-bar"'),
        ("query_exemplars", {"query": "up(("}, 400, "bad_data", "parse error"),
        ("query", {"query": "up", "timeout": "abc"}, 400, "bad_data", 'invalid parameter "timeout"'),
        ("query", {"query": "sum(("}, 400, "bad_data", 'invalid parameter "query": '),
        ("query_range", {"query": "up", "start": "0", "step": "1"}, 400, "bad_data", 'parameter "end"'),
        ("query_range", {"query": "x[5m]", "start": "0", "end": "1", "step": "1"}, 400, "bad_data", "range"),
        ("query", {"query": "x + on(a) x", "time": str(T0_S)}, 200, None, None),
    ],
)
def test_errors_as_prometheus(
    client: TestClient, path: str, params: dict, status: int, error_type: str | None, message: str | None
) -> None:
    response = client.get(f"/api/v1/{path}", params=params)
    assert response.status_code == status, response.json()
    if error_type:
        assert response.json()["errorType"] == error_type
        assert message in response.json()["error"]


def test_many_to_many_is_an_execution_error(client: TestClient) -> None:
    response = client.get(
        "/api/v1/query",
        params={
            "query": "infer_service_request_total + on(service_id) infer_service_request_total",
            "time": T0_S,
        },
    )
    assert response.status_code == 422
    assert response.json()["errorType"] == "execution"


def test_max_samples_refuses_before_loading_everything(store: Store) -> None:
    client = TestClient(create_app(store, Engine(store.querier, max_samples=50)))
    response = client.get(
        "/api/v1/query",
        params={"query": "count_over_time(infer_service_request_total[10m])", "time": T0_S + 300},
    )
    assert response.status_code == 422
    body = response.json()
    assert body["errorType"] == "execution"
    assert "too many samples" in body["error"]
    # a small query still runs on the same engine
    _ok(client.get("/api/v1/query", params={"query": "ma_container_cpu_util", "time": T0_S + 60}))


def test_query_timeout_is_a_503_and_the_server_keeps_serving(store: Store) -> None:
    client = TestClient(create_app(store))
    # a deep subquery nest takes far longer than 1 ms
    slow = "max_over_time(max_over_time(rate(infer_service_request_total[1m])[1h:1s])[1h:1s])"
    started = time.monotonic()
    response = client.get("/api/v1/query", params={"query": slow, "time": T0_S + 300, "timeout": "1ms"})
    assert time.monotonic() - started < 10
    assert response.status_code == 503
    assert response.json()["errorType"] == "timeout"
    _ok(client.get("/api/v1/query", params={"query": "ma_container_cpu_util", "time": T0_S + 60}))


class _SlowStore:
    """A store whose reads hit ClickHouse's max_execution_time (reads.py raises TimeoutError)."""

    def select(self, matchers: list, start_ms: int, end_ms: int) -> list:
        raise TimeoutError("query timed out in query execution")


def test_store_time_limit_surfaces_as_timeout() -> None:
    with pytest.raises(PromQLError) as err:
        Engine(_SlowStore()).instant("up", 0)  # type: ignore[arg-type]
    assert err.value.error_type == "timeout"


class _HangingEngine(Engine):
    """An engine whose evaluation hangs until released, as a stuck store call would."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.entered = threading.Event()
        self.release = threading.Event()

    def instant(self, query: str, ts_ms: int, timeout_s: float | None = None):  # type: ignore[override]
        if query == "hang":
            self.entered.set()
            self.release.wait(600)
        return super().instant(query, ts_ms, timeout_s)


def test_a_hung_evaluation_answers_timeout_and_others_still_run(store: Store) -> None:
    engine = _HangingEngine(store.querier, timeout_s=0.5)
    client = TestClient(create_app(store, engine))
    try:
        response = client.get("/api/v1/query", params={"query": "hang", "time": T0_S})
        assert not engine.release.is_set()  # answered while the evaluation still hangs
        assert response.status_code == 503
        # Where the time ran out: in the evaluation, unless a loaded machine kept the job queued
        # past its half second (then it never started, and says so).
        where = "expression evaluation" if engine.entered.is_set() else "query queue"
        assert response.json() == {
            "status": "error",
            "errorType": "timeout",
            "error": f"query timed out in {where}",
        }
        _ok(client.get("/api/v1/query", params={"query": "ma_container_cpu_util", "time": T0_S + 60}))
    finally:
        engine.release.set()


def _router_only(store: Store) -> TestClient:
    """The same routes served by FastAPI's router alone: no ``DirectRoutes`` in front."""
    from fastapi import FastAPI

    from query.api.app import build_querier
    from query.api.prometheus_v1 import build_router

    app = FastAPI()
    app.include_router(build_router(Engine(build_querier(store)), build_querier(store)))
    return TestClient(app)


RATES = "sum by (code) (rate(infer_service_request_total[1m]))"
DIRECT_CASES = [
    *((path, params) for path, params in ROUTES if path != "metadata"),  # metadata: its own router
    ("query_range", {"query": RATES, **WINDOW, "step": "9"}),
    ("query_range", {"query": "", **WINDOW, "step": "60"}),
    ("query_range", {"query": "up", **WINDOW, "step": "0"}),
    ("query", {"query": "sum(", "time": str(T0_S)}),
    ("query", {"query": "1", "time": "soon"}),
    ("label/code/values", {"match[]": "infer_service_request_total"}),
    ("label/1bad/values", {}),
    ("label/ünï/values", {}),
    ("label/__name__/values", {"match[]": '{service_id=~"s.*"}', **WINDOW}),
    ("labels", {"match[]": '{__name__=~"ma_.*"}'}),
    ("series", {}),
    ("series", {"match[]": '{code!="2xx"}', **WINDOW}),
    ("query_exemplars", {"query": "1 + 1", **WINDOW}),
    ("format_query", {"query": "sum("}),
]


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_direct_routes_answer_as_the_router_does(store: Store, client: TestClient, method: str) -> None:
    """The read routes skip FastAPI's routing (``DirectRoutes``) and answer byte for byte the same."""
    plain = _router_only(store)
    for path, params in DIRECT_CASES:
        ours, theirs = _call(client, method, path, params), _call(plain, method, path, params)
        assert (ours.status_code, ours.content) == (theirs.status_code, theirs.content), (path, params)
        assert ours.headers.get("content-type") == theirs.headers.get("content-type")


def test_direct_routes_leave_other_methods_and_paths_to_the_router(client: TestClient) -> None:
    assert client.delete("/api/v1/query").status_code == 405
    assert client.get("/api/v1/label//values").status_code == 404
    assert client.get("/api/v1/label/a/b/values").status_code == 404
    assert client.get("/api/v1/status/buildinfo").json()["status"] == "success"
