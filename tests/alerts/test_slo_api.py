"""SLO management through the API: audited like the other management calls, scoped to projects,
hostile bodies refused with a 4xx; the evaluator follows every change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.slo_api import build_slo_router
from alerts.slo_registry import SloRegistry
from infersight.alerting import build_alerting
from infersight.config import config_from_dict
from model.slo import Slo
from query.api.app import AuthSettings, build_querier, create_app
from query.events.hub import EventHub
from query.promql.engine import Engine
from store.audit import AuditLog, TraceQuery
from store.events import EventLog
from store.open import Store

ADMIN = "slo-api-bootstrap-admin-key"
BOOT = {"Authorization": f"Bearer {ADMIN}"}
CHAT = {"service_id": "svc-a", "ttft_ms": 500, "tpot_ms": 50, "objective": 0.99, "period": "28d"}


@pytest.fixture
def world(chdb_store: Store, tmp_path: Path) -> tuple[TestClient, SloRegistry, AuditLog]:
    registry = SloRegistry((Slo("configured", "svc-c", ttft_ms=100),), tmp_path / "api-slos.json")
    audit = AuditLog(chdb_store.backend)
    app = create_app(
        chdb_store, auth=AuthSettings(True, ADMIN), audit=audit, routers=[build_slo_router(registry, audit)]
    )
    return TestClient(app), registry, audit


def _key(client: TestClient, project: str, perms: list[str]) -> dict[str, str]:
    body = {"project_id": project, "permissions": perms}
    secret = client.post("/api/v1/admin/keys", json=body, headers=BOOT).json()["data"]["key"]
    return {"Authorization": f"Bearer {secret}"}


def _traces(audit: AuditLog) -> list[tuple[str, str, str]]:
    rows, _ = audit.search(TraceQuery(filters=(("resource_type", "Slo"),), limit=100))
    return sorted((r["trace_name"], r["resource_name"], str(r["code"])) for r in rows)


def test_create_update_delete_each_write_an_audit_trace(world) -> None:
    client, registry, audit = world
    created = client.put("/api/v1/slos/chat", json=CHAT, headers=BOOT)
    assert created.status_code == 200, created.text
    assert created.json()["data"]["ttft_ms"] == 500
    assert registry.get("chat", "") == Slo.from_dict({**CHAT, "name": "chat"})
    assert client.put("/api/v1/slos/chat", json={**CHAT, "ttft_ms": 400}, headers=BOOT).status_code == 200
    names = {s["name"] for s in client.get("/api/v1/slos", headers=BOOT).json()["data"]}
    assert names == {"configured", "chat"}
    assert client.get("/api/v1/slos/chat", headers=BOOT).json()["data"]["ttft_ms"] == 400
    assert client.delete("/api/v1/slos/chat", headers=BOOT).status_code == 200
    assert client.delete("/api/v1/slos/chat", headers=BOOT).status_code == 404
    assert client.put("/api/v1/slos/configured", json=CHAT, headers=BOOT).status_code == 409
    assert _traces(audit) == [
        ("CreateSlo", "chat", "200"),
        ("DeleteSlo", "chat", "200"),
        ("DeleteSlo", "chat", "404"),
        ("UpdateSlo", "chat", "200"),
        ("UpdateSlo", "configured", "409"),
    ]


def test_slos_survive_a_restart(world, tmp_path: Path) -> None:
    client, _, _ = world
    client.put("/api/v1/slos/chat", json=CHAT, headers=BOOT)
    again = SloRegistry((), tmp_path / "api-slos.json")
    assert [s.name for s in again.slos] == ["chat"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({**CHAT, "ttft_ms": -5}, "slo.ttft_ms"),
        ({**CHAT, "objective": 2}, "slo.objective"),
        ({**CHAT, "surprise": 1}, "slo.surprise"),
        ({**CHAT, "project_id": "other"}, "project_id"),
        ([CHAT], "body"),
        ("chat", "body"),
    ],
)
def test_a_bad_slo_is_a_400_naming_the_key(world, body: object, named: str) -> None:
    client, registry, audit = world
    response = client.put("/api/v1/slos/chat", json=body, headers=BOOT)
    assert response.status_code == 400
    assert response.json()["error"].startswith(named)
    assert registry.get("chat", "") is None
    assert _traces(audit) == [("CreateSlo", "chat", "400")]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        st.binary(max_size=200),
        st.recursive(
            st.one_of(st.none(), st.booleans(), st.floats(), st.text(max_size=20), st.integers()),
            lambda inner: (
                st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
            ),
            max_leaves=30,
        ).map(lambda value: json.dumps(value).encode()),
    )
)
def test_hostile_bodies_are_refused_with_a_4xx(world, body: bytes) -> None:
    client, _, _ = world
    response = client.put("/api/v1/slos/hostile", content=body, headers=BOOT)
    assert response.status_code in (200, 400), response.text


def test_deeply_nested_and_bad_names_are_4xx(world) -> None:
    client, _, _ = world
    deep = b'{"service_id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert client.put("/api/v1/slos/deep", content=deep, headers=BOOT).status_code == 400
    assert client.put("/api/v1/slos/" + "x" * 300, json=CHAT, headers=BOOT).status_code == 400
    assert client.put("/api/v1/slos/a%20b", json=CHAT, headers=BOOT).status_code == 400


def test_a_project_sees_and_manages_its_own_slos_only(world) -> None:
    client, registry, audit = world
    a_admin, b_admin = _key(client, "A", ["admin"]), _key(client, "B", ["admin"])
    a_read, everyone = _key(client, "A", ["read"]), _key(client, "*", ["read", "admin"])
    assert client.put("/api/v1/slos/chat", json=CHAT, headers=a_admin).status_code == 200
    assert (
        client.put("/api/v1/slos/chat", json={**CHAT, "service_id": "svc-b"}, headers=b_admin).status_code
        == 200
    )
    assert registry.get("chat", "A").service_id == "svc-a"  # type: ignore[union-attr]
    assert registry.get("chat", "B").service_id == "svc-b"  # type: ignore[union-attr]
    listed = client.get("/api/v1/slos", headers=a_read).json()["data"]
    assert [(s["name"], s["project_id"]) for s in listed] == [("chat", "A")]
    assert client.get("/api/v1/slos/chat", headers=a_read).json()["data"]["service_id"] == "svc-a"
    assert client.get("/api/v1/slos/chat?project_id=B", headers=a_read).status_code == 403
    assert client.put("/api/v1/slos/chat", json=CHAT, headers=a_read).status_code == 403  # no admin
    assert client.delete("/api/v1/slos/chat", headers=everyone).status_code == 403
    assert client.delete("/api/v1/slos/chat?project_id=B", headers=BOOT).status_code == 200
    assert registry.get("chat", "B") is None
    assert ("DeleteSlo", "chat", "403") in _traces(audit)


def test_the_evaluator_follows_slo_changes(chdb_store: Store, tmp_path: Path) -> None:
    config = config_from_dict(
        {
            "store": {"dsn": f"chdb://{tmp_path}/data"},
            "slos": [{"name": "configured", "service_id": "s", "ttft_ms": 9}],
        }
    )
    registry = SloRegistry(config.slos, tmp_path / "api-slos.json")
    audit = AuditLog(chdb_store.backend)
    engine = Engine(build_querier(chdb_store))
    hub = EventHub(EventLog(chdb_store.backend), chdb_store.writer)
    runner, router = build_alerting(config, engine, chdb_store.writer, audit, hub, registry)
    slo_groups = lambda: sorted(g.group.name for g in runner.evaluator.groups if "slo" in g.group.name)  # noqa: E731
    assert slo_groups() == ["infersight-slo-configured"]
    client = TestClient(create_app(chdb_store, engine, audit=audit, routers=[router]))
    assert client.put("/api/v1/slos/chat?project_id=P", json=CHAT).status_code == 200
    assert slo_groups() == ["infersight-slo-P-chat", "infersight-slo-configured"]
    owner = next(g for g in runner.evaluator.groups if g.group.name == "infersight-slo-P-chat")
    assert owner.project_id == "P"  # evaluated on project P's series only
    client.put("/api/v1/rules/groups/extra", json={"rules": [{"alert": "X", "expr": "vector(1)"}]})
    assert "infersight-slo-P-chat" in slo_groups()  # a rule-group change keeps the SLO groups
    client.delete("/api/v1/slos/chat?project_id=P")
    assert slo_groups() == ["infersight-slo-configured"]
