"""``GET /api/v1/sketch_quantiles``: TPxx per period from merged window sketches, Prometheus-style errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.window import WindowedSketches, rows_to_wire
from query.api.app import create_app
from query.api.sketches import build_sketch_router
from store.backend import StoreUnavailableError
from store.open import Store
from store.sketches import SketchWriter

TTFT = "infer_service_first_token_cost"
T0_S = 1_700_002_800  # a whole hour
SVC = "6d26f238-52b0-4184-8b50-d621a0c80eb4"


@pytest.fixture
def loaded() -> dict[str, list[np.ndarray]]:
    return {"pod-0": [], "pod-1": []}


@pytest.fixture
def client(chdb_store: Store, loaded: dict[str, list[np.ndarray]]) -> TestClient:
    """10 minutes of TTFT from two pods of one deployment, 4 requests per pod every 2 s."""
    rng = np.random.default_rng(9)
    windows = WindowedSketches()
    for second in range(0, 600, 2):
        for i, pod in enumerate(loaded):
            values = rng.lognormal(np.log(80.0) + i, 0.8, 4)
            loaded[pod].append(values)
            labels = {"service_id": SVC, "group_id": "dep-0", "source": pod, "project_id": "tenant"}
            windows.observe(TTFT, labels, values, T0_S + second)
    SketchWriter(chdb_store.backend).write(windows.drain_all())
    return TestClient(create_app(chdb_store))


def _ok(response) -> dict:
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "success"
    return body["data"]


def _get(client: TestClient, **params: object):
    base = {"metric": TTFT, "start": T0_S, "end": T0_S + 600}
    return client.get("/api/v1/sketch_quantiles", params={**base, **params})


def test_quantiles_per_period_within_one_percent(client: TestClient, loaded) -> None:
    data = _ok(_get(client, service_id=SVC, period="5m", q="0.5,0.9,0.99,0.999"))
    assert data["period"] == 300
    assert data["relative_error"] < 0.01
    assert [p["start"] for p in data["periods"]] == [T0_S, T0_S + 300]
    for k, period in enumerate(data["periods"]):
        values = np.concatenate([v for pod in loaded.values() for v in pod[k * 150 : (k + 1) * 150]])
        assert period["count"] == values.size
        assert period["min"] == values.min()
        assert period["max"] == values.max()
        assert period["avg"] == pytest.approx(values.mean())
        for q, got in period["quantiles"].items():
            exact = np.quantile(values, float(q), method="inverted_cdf")
            assert abs(got - exact) <= 0.01 * exact, (q, got, exact)


def test_pod_filter_reads_one_pod(client: TestClient, loaded) -> None:
    data = _ok(_get(client, source="pod-1", period="1h", q="0.99"))
    (period,) = data["periods"]
    values = np.concatenate(loaded["pod-1"])
    exact = np.quantile(values, 0.99, method="inverted_cdf")
    assert period["count"] == values.size
    assert period["quantiles"]["0.99"] == pytest.approx(exact, rel=0.01)
    assert data["filters"] == {"source": "pod-1"}


@pytest.mark.parametrize(("period", "expected"), [("1m", 10), ("300", 2), ("15m", 1), ("1h", 1), ("10s", 60)])
def test_periods(client: TestClient, period: str, expected: int) -> None:
    data = _ok(_get(client, group_id="dep-0", period=period))
    assert len(data["periods"]) == expected
    assert sum(p["count"] for p in data["periods"]) == 2 * 300 * 4
    assert list(data["periods"][0]["quantiles"]) == ["0.5", "0.9", "0.99", "0.999"]  # the default TPxx


def test_no_data_is_an_empty_list(client: TestClient) -> None:
    data = _ok(_get(client, service_id="other"))
    assert data["periods"] == []
    assert data["relative_error"] is None


def test_rfc3339_times(client: TestClient) -> None:
    data = _ok(_get(client, start="2023-11-14T23:00:00Z", end="2023-11-14T23:10:00Z", period="10m"))
    assert data["start"] == T0_S
    assert data["periods"][0]["count"] == 2400


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"metric": ""}, "metric"),
        ({"period": "7s"}, "multiple of 10s"),
        ({"period": "soon"}, "period"),
        ({"q": "0.5,1.5"}, "quantiles"),
        ({"q": "p99"}, "quantiles"),
        ({"start": T0_S, "end": T0_S - 1}, "before start"),
        ({"start": T0_S, "end": T0_S + 16 * 86_400}, "15 days"),
        ({"start": "yesterday"}, "start"),
    ],
)
def test_bad_requests_are_bad_data(client: TestClient, params: dict, message: str) -> None:
    response = _get(client, **params)
    body = response.json()
    assert response.status_code == 400
    assert body["status"] == "error"
    assert body["errorType"] == "bad_data"
    assert message in body["error"]


def test_rows_of_two_scales_are_merged_at_the_lower(chdb_store: Store) -> None:
    values = np.random.default_rng(3).lognormal(4.0, 1.0, 400)
    for scale, part in ((6, values[:200]), (4, values[200:])):  # a setting changed mid-period
        windows = WindowedSketches(scale=scale)
        windows.observe(TTFT, {"service_id": SVC, "source": "pod-0"}, part, T0_S + 5)
        SketchWriter(chdb_store.backend).write(windows.drain_all())
    data = _ok(_get(TestClient(create_app(chdb_store)), period="1m", q="0.5,0.99"))
    (period,) = data["periods"]
    assert period["count"] == 400
    assert data["relative_error"] == pytest.approx(0.0216, abs=1e-4)  # scale 4
    for q, got in period["quantiles"].items():
        exact = np.quantile(values, float(q), method="inverted_cdf")
        assert abs(got - exact) <= data["relative_error"] * exact * (1 + 1e-9)


class _DownBackend:
    """A server store that cannot be reached (the native backend raises this on network errors)."""

    database = "infersight"

    def query(self, sql: str, params: dict | None = None):
        raise StoreUnavailableError("ClickHouse at 127.0.0.1:9000: connection refused")


def test_unreachable_store_is_unavailable() -> None:
    app = FastAPI()
    app.include_router(build_sketch_router(_DownBackend()))  # type: ignore[arg-type]
    response = TestClient(app).get("/api/v1/sketch_quantiles", params={"metric": TTFT})
    assert response.status_code == 503
    assert response.json()["errorType"] == "unavailable"


_ROW_FIELDS = {
    "window_start_ms": st.one_of(st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=3), st.none()),
    "width_s": st.one_of(st.integers(-(2**40), 2**40), st.floats(), st.none()),
    "metric": st.one_of(st.text(max_size=300), st.integers()),
    "labels": st.one_of(
        st.dictionaries(st.text(max_size=20), st.text(max_size=50), max_size=4),
        st.integers(),
        st.lists(st.text()),
    ),
    "id": st.one_of(st.integers(-(2**70), 2**70), st.text(max_size=3)),
}
_SKETCH_FIELDS = {
    "scale": st.one_of(st.integers(-(2**40), 2**40), st.floats(), st.none()),
    "count": st.one_of(st.integers(-(2**70), 2**70), st.floats()),
    "sum": st.one_of(st.floats(), st.text(max_size=3)),
    "min": st.floats(),
    "max": st.floats(),
    "zero_count": st.integers(-(2**70), 2**70),
    "positive_keys": st.lists(st.integers(-(2**40), 2**40), max_size=4),
    "positive_counts": st.lists(st.one_of(st.integers(-(2**70), 2**70), st.floats()), max_size=4),
    "negative_keys": st.one_of(st.lists(st.integers(-(2**40), 2**40), max_size=4), st.text(max_size=3)),
    "negative_counts": st.lists(st.integers(-(2**70), 2**70), max_size=4),
}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    row_changes=st.fixed_dictionaries({}, optional=_ROW_FIELDS),
    sketch_changes=st.fixed_dictionaries({}, optional=_SKETCH_FIELDS),
)
def test_any_sketch_row_is_stored_or_refused_never_5xx(
    chdb_store: Store, row_changes, sketch_changes
) -> None:
    """A sidecar's row with any field changed to anything: 200 or a 4xx, never a 500."""
    windows = WindowedSketches()
    windows.observe(TTFT, {"service_id": SVC, "source": "pod-0"}, np.array([5.0, 50.0, 500.0]), T0_S)
    (row,) = rows_to_wire(windows.drain_all())
    row = {**row, **row_changes, "sketch": {**row["sketch"], **sketch_changes}}
    body = json.dumps([row])  # NaN and Infinity written as Python writes them, as a careless sender would
    headers = {"Content-Type": "application/json"}
    answer = TestClient(create_app(chdb_store)).post("/api/v1/sketches", content=body, headers=headers)
    assert answer.status_code in (200, 400), answer.text
