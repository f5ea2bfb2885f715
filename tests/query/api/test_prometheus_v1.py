"""The Prometheus HTTP API over the embedded store: Prometheus's JSON shapes, errors and semantics."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from model.labels import to_labels
from model.series import Sample
from query.api.app import create_app
from query.api.prometheus_v1 import _answer
from query.promql.value import Matrix, MatrixSeries
from store.open import Store

T0_S = 1_700_000_000  # a round start, seconds
SVC = "6d26f238-52b0-4184-8b50-d621a0c80eb4"


@pytest.fixture
def client(chdb_store: Store) -> TestClient:
    batch = []
    for i in range(31):  # 5 minutes of 10 s scrapes
        ts = (T0_S + 10 * i) * 1000
        for code, per_scrape in (("2xx", 10), ("5xx", 1)):
            labels = {"__name__": "infer_service_request_total", "service_id": SVC, "code": code}
            batch.append(Sample(to_labels(labels), ts, float(per_scrape * i)))
        for le, count in (("100.0", 5), ("200.0", 9), ("+Inf", 10)):
            labels = {"__name__": "infer_service_first_token_cost_bucket", "service_id": SVC, "le": le}
            batch.append(Sample(to_labels(labels), ts, float(count * i)))
    chdb_store.writer.write(batch)
    return TestClient(create_app(chdb_store))


def _ok(response) -> dict:
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "success"
    return body["data"]


def test_instant_query_rate_by_code(client: TestClient) -> None:
    data = _ok(
        client.get(
            "/api/v1/query",
            params={"query": "sum by (code) (rate(infer_service_request_total[1m]))", "time": T0_S + 300},
        )
    )
    assert data["resultType"] == "vector"
    result = {item["metric"]["code"]: item["value"] for item in data["result"]}
    assert result["2xx"] == [T0_S + 300, "1"]
    assert result["5xx"] == [T0_S + 300, "0.1"]


def test_guide_statement_verbatim(client: TestClient) -> None:
    query = (
        "histogram_quantile(0.90, avg(rate(infer_service_first_token_cost_bucket"
        f'{{service_id="{SVC}"}}[1m:30s]))by(le))'
    )
    data = _ok(client.post("/api/v1/query", data={"query": query, "time": str(T0_S + 300)}))
    (item,) = data["result"]
    # 90 % of observations fall at or below 200 ms; linear interpolation inside (100, 200]:
    # rank 0.9 of 10 → 9 = the 200 ms bucket's upper edge.
    assert float(item["value"][1]) == pytest.approx(200.0)


def test_range_query_matrix_and_step_alignment(client: TestClient) -> None:
    data = _ok(
        client.get(
            "/api/v1/query_range",
            params={
                "query": 'infer_service_request_total{code="5xx"}',
                "start": T0_S + 60,
                "end": T0_S + 120,
                "step": "30s",
            },
        )
    )
    assert data["resultType"] == "matrix"
    (series,) = data["result"]
    assert series["metric"] == {"__name__": "infer_service_request_total", "code": "5xx", "service_id": SVC}
    assert series["values"] == [[T0_S + 60, "6"], [T0_S + 90, "9"], [T0_S + 120, "12"]]


def test_labels_values_and_series(client: TestClient) -> None:
    window = {"start": T0_S, "end": T0_S + 300}
    assert _ok(client.get("/api/v1/labels", params=window)) == ["__name__", "code", "le", "service_id"]
    assert _ok(client.get("/api/v1/label/code/values", params=window)) == ["2xx", "5xx"]
    assert _ok(client.get("/api/v1/label/__name__/values", params=window)) == [
        "infer_service_first_token_cost_bucket",
        "infer_service_request_total",
    ]
    series = _ok(client.get("/api/v1/series", params={"match[]": 'infer_service_request_total{code=~"5.."}'}))
    assert series == [{"__name__": "infer_service_request_total", "code": "5xx", "service_id": SVC}]
    names = _ok(client.post("/api/v1/labels", data={"match[]": "infer_service_first_token_cost_bucket"}))
    assert names == ["__name__", "le", "service_id"]


@pytest.mark.parametrize(
    ("path", "params", "status", "error_type"),
    [
        ("/api/v1/query", {"query": "sum(("}, 400, "bad_data"),
        ("/api/v1/query", {}, 400, "bad_data"),
        ("/api/v1/query", {"query": "up", "time": "yesterday"}, 400, "bad_data"),
        ("/api/v1/query_range", {"query": "up", "start": "1", "end": "100000", "step": "1"}, 400, "bad_data"),
        ("/api/v1/query_range", {"query": "up", "start": "10", "end": "1", "step": "1"}, 400, "bad_data"),
        ("/api/v1/query_range", {"query": "up", "start": "1", "end": "10", "step": "0"}, 400, "bad_data"),
        ("/api/v1/series", {}, 400, "bad_data"),
        ("/api/v1/series", {"match[]": '{code=""}'}, 400, "bad_data"),
    ],
)
def test_errors_have_prometheus_shape(
    client: TestClient, path: str, params: dict, status: int, error_type: str
) -> None:
    response = client.get(path, params=params)
    assert response.status_code == status
    body = response.json()
    assert body["status"] == "error"
    assert body["errorType"] == error_type
    assert body["error"]


def test_buildinfo(client: TestClient) -> None:
    assert _ok(client.get("/api/v1/status/buildinfo"))["version"].startswith("2.")


def test_ingest_roundtrip(client: TestClient) -> None:
    body = {
        "series": [{"labels": {"__name__": "shipped", "source": "pod-9"}, "samples": [[T0_S * 1000, "NaN"]]}]
    }
    assert _ok(client.post("/api/v1/ingest", json=body)) == {"samples": 1}
    data = _ok(client.get("/api/v1/query", params={"query": "shipped", "time": T0_S}))
    assert data["result"][0]["value"] == [T0_S, "NaN"]
    bad = client.post("/api/v1/ingest", content=b"{not json")
    assert bad.status_code == 400
    assert bad.json()["errorType"] == "bad_data"


def test_a_range_answer_with_labels_orjson_cannot_write_still_answers() -> None:
    """Answers are written around the points' text by orjson; a label that is not valid UTF-8 (no
    ingest path stores one, but a store written by other means could hold one) takes the general
    path and is answered, its bad character replaced, instead of failing the request."""
    good = MatrixSeries({"job": "a"}, np.array([1000, 2000]), np.array([1.0, 2.5]))
    bad = MatrixSeries({"job": "b\udcff"}, np.array([1000]), np.array([3.0]))
    response = _answer(Matrix([good, bad]))
    assert response.status_code == 200
    body = json.loads(response.body)
    assert body["data"]["result"][0] == {"metric": {"job": "a"}, "values": [[1, "1"], [2, "2.5"]]}
    assert body["data"]["result"][1]["metric"]["job"].startswith("b")
    assert json.loads(_answer(Matrix([good])).body) == {
        "status": "success",
        "data": {"resultType": "matrix", "result": [body["data"]["result"][0]]},
    }
