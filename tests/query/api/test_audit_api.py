"""The audit API over the embedded store: CTS-shaped ingest, search, pagination and verification."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from query.api.app import create_app
from store.open import Store

T0 = 1_764_000_000_000


@pytest.fixture
def client(chdb_store: Store) -> TestClient:
    return TestClient(create_app(chdb_store))


def _trace(i: int, **extra: object) -> dict:
    body = {
        "trace_name": "ScaleDeployment" if i % 2 else "CreateDeployment",
        "resource_type": "serviceV2",
        "resource_id": f"svc-{i}",
        "resource_name": f"my-llm-{i}",
        "time": T0 + i,
        "user": {"id": "u", "name": "alice" if i % 3 else "bob", "domain": {"id": "d", "name": "acme"}},
        "source_ip": "192.0.2.10",
        "trace_rating": "normal",
        "trace_type": "ApiCall",
        "request": {"instance_count": i, "token": "secret-value"},
        "code": "200",
    }
    body.update(extra)
    return body


def test_ingest_search_and_verify(client: TestClient) -> None:
    response = client.post("/api/v1/audit/traces", json={"traces": [_trace(i) for i in range(25)]})
    assert response.status_code == 200, response.text
    page = client.get("/api/v1/audit/traces", params={"trace_name": "ScaleDeployment", "limit": 5}).json()
    assert page["meta_data"]["count"] == 5
    assert [t["resource_id"] for t in page["traces"]] == ["svc-23", "svc-21", "svc-19", "svc-17", "svc-15"]
    assert "secret-value" not in page["traces"][0]["request"]
    rest = client.get(
        "/api/v1/audit/traces",
        params={"trace_name": "ScaleDeployment", "limit": 200, "next": page["meta_data"]["marker"]},
    ).json()
    assert [t["resource_id"] for t in rest["traces"]][:2] == ["svc-13", "svc-11"]
    assert rest["meta_data"]["marker"] is None
    bob = client.get("/api/v1/audit/traces", params={"user": "bob", "limit": 200}).json()
    assert len(bob["traces"]) == 9
    verdict = client.get("/api/v1/audit/verify").json()["data"]
    assert (verdict["checked"], verdict["ok"], verdict["tampering"], verdict["problems"]) == (
        25,
        True,
        None,
        [],
    )


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"resource_type": "x", "time": T0}, "trace_name"),
        ({"traces": [_trace(0), _trace(1, trace_rating="fatal")]}, "traces[1].trace_rating"),
        ({"trace_name": "x", "resource_type": "x", "time": -5}, "time"),
    ],
)
def test_bad_traces_are_400_naming_the_field(client: TestClient, body: dict, named: str) -> None:
    response = client.post("/api/v1/audit/traces", json=body)
    assert response.status_code == 400
    assert named in response.json()["error"]
    assert client.get("/api/v1/audit/traces").json()["traces"] == []  # nothing half-written


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "500"}, {"from": "yesterday"}, {"next": "%%%"}])
def test_bad_search_parameters_are_400(client: TestClient, params: dict) -> None:
    assert client.get("/api/v1/audit/traces", params=params).status_code == 400
