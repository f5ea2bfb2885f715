"""Tenancy through every API: a project's key sees and writes only its own project."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from query.api.app import AuthSettings, create_app
from store.open import Store

ADMIN = "admin-secret-for-tests"
T0 = 1_764_000_000


@pytest.fixture
def app_client(chdb_store: Store) -> TestClient:
    return TestClient(create_app(chdb_store, auth=AuthSettings(enabled=True, admin_key=ADMIN)))


def _key(client: TestClient, project: str, perms: list[str]) -> dict[str, str]:
    response = client.post(
        "/api/v1/admin/keys",
        json={"project_id": project, "permissions": perms, "name": f"{project}-key"},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['data']['key']}"}


def _ingest(client: TestClient, headers: dict[str, str], labels: dict[str, str]) -> int:
    body = {"series": [{"labels": {"__name__": "tenant_metric", **labels}, "samples": [[T0 * 1000, "1"]]}]}
    return client.post("/api/v1/ingest", json=body, headers=headers).status_code


def test_each_project_sees_only_its_own(app_client: TestClient) -> None:
    p1 = _key(app_client, "p1", ["read", "write"])
    p2 = _key(app_client, "p2", ["read", "write", "audit"])
    assert _ingest(app_client, p1, {"source": "pod-a"}) == 200  # project_id added from the key
    assert _ingest(app_client, p2, {"source": "pod-b", "project_id": "p2"}) == 200
    assert _ingest(app_client, p1, {"source": "pod-c", "project_id": "p2"}) == 403
    for headers, pod in ((p1, "pod-a"), (p2, "pod-b")):
        result = app_client.get(
            "/api/v1/query", params={"query": '{__name__=~".+"}', "time": T0}, headers=headers
        ).json()["data"]["result"]
        assert [r["metric"]["source"] for r in result] == [pod]
        values = app_client.get("/api/v1/label/source/values", headers=headers).json()["data"]
        assert values == [pod]
        series = app_client.get("/api/v1/series", params={"match[]": "tenant_metric"}, headers=headers).json()
        assert [s["source"] for s in series["data"]] == [pod]
    admin = {"Authorization": f"Bearer {ADMIN}"}
    everything = app_client.get("/api/v1/label/source/values", headers=admin).json()["data"]
    assert everything == ["pod-a", "pod-b"]


def test_events_and_traces_are_scoped(app_client: TestClient) -> None:
    p1 = _key(app_client, "p1", ["read", "write", "audit"])
    p2 = _key(app_client, "p2", ["read", "write", "audit"])
    for headers, project in ((p1, "p1"), (p2, "p2")):
        event = {"template": "E20", "object": {"service_id": f"svc-{project}"}}
        assert app_client.post("/api/v1/events", json=event, headers=headers).status_code == 200
        trace = {"trace_name": "ScaleDeployment", "resource_type": "serviceV2", "time": T0 * 1000}
        assert app_client.post("/api/v1/audit/traces", json=trace, headers=headers).status_code == 200
    foreign = {"template": "E20", "object": {"service_id": "x", "project_id": "p2"}}
    assert app_client.post("/api/v1/events", json=foreign, headers=p1).status_code == 403
    events = app_client.get("/api/v1/events", params={"project_id": "p2"}, headers=p1).json()["data"][
        "events"
    ]
    assert [e["object"]["service_id"] for e in events] == ["svc-p1"]
    traces = app_client.get("/api/v1/audit/traces", params={"limit": 100}, headers=p1).json()["traces"]
    assert {t["project_id"] for t in traces} == {"p1"}


def test_permissions_and_revocation(app_client: TestClient) -> None:
    reader = _key(app_client, "p1", ["read"])
    assert app_client.get("/api/v1/query", params={"query": "1"}).status_code == 401
    assert (
        app_client.get(
            "/api/v1/query", params={"query": "1"}, headers={"Authorization": "Bearer nope"}
        ).status_code
        == 401
    )
    assert app_client.get("/api/v1/query", params={"query": "1"}, headers=reader).status_code == 200
    assert app_client.get("/api/v1/audit/traces", headers=reader).status_code == 403
    assert _ingest(app_client, reader, {}) == 403
    assert app_client.get("/api/v1/admin/keys", headers=reader).status_code == 403
    assert app_client.get("/-/healthy").status_code == 200
    admin = {"Authorization": f"Bearer {ADMIN}"}
    keys = app_client.get("/api/v1/admin/keys", headers=admin).json()["data"]
    (key_id,) = [k["key_id"] for k in keys]
    assert app_client.delete(f"/api/v1/admin/keys/{key_id}", headers=admin).status_code == 200
    assert app_client.get("/api/v1/query", params={"query": "1"}, headers=reader).status_code == 401
    # Every management call left a trace with the guide's API-key trace names, secrets masked.
    traces = app_client.get(
        "/api/v1/audit/traces", params={"resource_type": "apikeyV2", "limit": 50}, headers=admin
    )
    names = [t["trace_name"] for t in traces.json()["traces"]]
    assert names == ["DeleteApiKeyV2", "ListApiKeyV2", "CreateApiKeyV2"]


def test_retention_settings_are_admin_only_and_audited(app_client: TestClient) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    reader = _key(app_client, "p1", ["read"])
    assert (
        app_client.put("/api/v1/admin/retention", json={"pod_events_ms": 1}, headers=reader).status_code
        == 403
    )
    assert (
        app_client.put("/api/v1/admin/retention", json={"pod_events_ms": -1}, headers=admin).status_code
        == 400
    )
    response = app_client.put("/api/v1/admin/retention", json={"pod_events_ms": 604_800_000}, headers=admin)
    assert response.json()["data"] == {"pod_events_ms": 604_800_000, "service_events_ms": 2_592_000_000}
    assert (
        app_client.get("/api/v1/admin/retention", headers=admin).json()["data"]["pod_events_ms"]
        == 604_800_000
    )
    traces = app_client.get(
        "/api/v1/audit/traces", params={"resource_type": "RetentionPolicy", "limit": 10}, headers=admin
    ).json()["traces"]
    assert [(t["trace_name"], t["trace_rating"]) for t in traces] == [
        ("GetRetentionPolicy", "normal"),
        ("UpdateRetentionPolicy", "normal"),
        ("UpdateRetentionPolicy", "warning"),
    ]


def test_remote_write_takes_the_keys_project(app_client: TestClient) -> None:
    """Remote write is served ahead of the API's router (``ExactRoutes``), still inside the auth."""
    from query.api.remote_write import encode_write_request

    def write(headers: dict[str, str], labels: dict[str, str]) -> int:
        body = encode_write_request([({"__name__": "rw_tenant", **labels}, [(T0 * 1000, 1.0)])])
        return app_client.post("/api/v1/write", content=body, headers=headers).status_code

    p1 = _key(app_client, "p1", ["read", "write"])
    reader = _key(app_client, "p1", ["read"])
    assert write({}, {"source": "pod-a"}) == 401
    assert write(reader, {"source": "pod-a"}) == 403
    assert write(p1, {"source": "pod-b", "project_id": "p2"}) == 403
    assert write(p1, {"source": "pod-a"}) == 204
    result = app_client.get("/api/v1/query", params={"query": "rw_tenant", "time": T0}, headers=p1).json()[
        "data"
    ]["result"]
    assert [(r["metric"]["source"], r["metric"]["project_id"]) for r in result] == [("pod-a", "p1")]
