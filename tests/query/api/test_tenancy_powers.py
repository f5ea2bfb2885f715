"""A key's powers stay inside its project, ``admin`` included: only the bootstrap admin key manages
other projects, ``*`` keys, retention and global rules; audit verify is refused to project keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from alerts.api import build_rules_router
from alerts.evaluator import Evaluator
from alerts.registry import RuleRegistry
from alerts.rules import AlertRule, RuleFile, RuleGroup
from query.api.app import AuthSettings, build_querier, create_app
from query.promql.engine import Engine
from store.open import Store
from tests.query.api.live_server import live_server

ADMIN = "powers-admin-key"
BOOT = {"Authorization": f"Bearer {ADMIN}"}
GROUP = {"rules": [{"alert": "Up", "expr": "vector(1)"}]}


@pytest.fixture
def client(chdb_store: Store, tmp_path: Path) -> Iterator[httpx.Client]:
    builtin = RuleFile((RuleGroup("configured", (AlertRule("Configured", "vector(1)"),)),))
    registry = RuleRegistry(builtin, tmp_path / "api-rules.yml")
    evaluator = Evaluator(registry.owned, Engine(build_querier(chdb_store)).instant, lambda batch: None)
    app = create_app(
        chdb_store, auth=AuthSettings(True, ADMIN), routers=[build_rules_router(registry, evaluator)]
    )
    with live_server(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def _key(client: httpx.Client, project: str, perms: list[str], headers: dict[str, str] = BOOT) -> dict:
    response = client.post(
        "/api/v1/admin/keys", json={"project_id": project, "permissions": perms}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]


def _auth(key: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['key']}"}


def test_a_project_admin_manages_only_its_own_keys(client: httpx.Client) -> None:
    a_reader = _key(client, "A", ["read"])
    b_admin = _auth(_key(client, "B", ["admin"]))
    # B's admin lists, creates and revokes nothing of A's
    assert client.get("/api/v1/admin/keys", params={"project_id": "A"}, headers=b_admin).status_code == 403
    listed = client.get("/api/v1/admin/keys", headers=b_admin).json()["data"]
    assert {k["project_id"] for k in listed} == {"B"}
    for project in ("A", "*"):
        body = {"project_id": project, "permissions": ["admin"]}
        assert client.post("/api/v1/admin/keys", json=body, headers=b_admin).status_code == 403
    assert client.delete(f"/api/v1/admin/keys/{a_reader['key_id']}", headers=b_admin).status_code == 404
    assert client.get("/api/v1/query", params={"query": "1"}, headers=_auth(a_reader)).status_code == 200
    # ... and manages its own: a key for its project by default, listed and revoked
    own = client.post("/api/v1/admin/keys", json={"permissions": ["read"]}, headers=b_admin).json()["data"]
    assert own["project_id"] == "B"
    assert client.delete(f"/api/v1/admin/keys/{own['key_id']}", headers=b_admin).status_code == 200
    assert client.get("/api/v1/query", params={"query": "1"}, headers=_auth(own)).status_code == 401
    # a * key made by the bootstrap key reads everywhere but manages nothing
    star_admin = _auth(_key(client, "*", ["admin"]))
    assert client.get("/api/v1/admin/keys", headers=star_admin).status_code == 403
    assert (
        client.post(
            "/api/v1/admin/keys", json={"project_id": "A", "permissions": ["read"]}, headers=star_admin
        ).status_code
        == 403
    )
    assert client.delete(f"/api/v1/admin/keys/{a_reader['key_id']}", headers=star_admin).status_code == 403
    # the bootstrap key manages every project
    assert len(client.get("/api/v1/admin/keys", headers=BOOT).json()["data"]) == 3
    assert client.delete(f"/api/v1/admin/keys/{a_reader['key_id']}", headers=BOOT).status_code == 200


def test_retention_is_the_bootstrap_keys_alone(client: httpx.Client) -> None:
    for key in (_key(client, "B", ["admin"]), _key(client, "*", ["admin"])):
        assert client.get("/api/v1/admin/retention", headers=_auth(key)).status_code == 403
        put = client.put("/api/v1/admin/retention", json={"pod_events_ms": 1000}, headers=_auth(key))
        assert put.status_code == 403
        assert put.json()["errorType"] == "forbidden"
    before = client.get("/api/v1/admin/retention", headers=BOOT).json()["data"]
    assert before["pod_events_ms"] != 1000
    put = client.put("/api/v1/admin/retention", json={"pod_events_ms": 1000}, headers=BOOT)
    assert put.json()["data"]["pod_events_ms"] == 1000


def test_rule_groups_are_managed_within_the_project(client: httpx.Client) -> None:
    a_admin, b_admin = _auth(_key(client, "A", ["admin"])), _auth(_key(client, "B", ["admin"]))
    assert client.put("/api/v1/rules/groups/mine", json=GROUP, headers=a_admin).status_code == 200
    # B: same name is its own group; A's is neither readable, replaceable nor removable
    assert client.get("/api/v1/rules/groups/mine", headers=b_admin).status_code == 404
    for params in ({"project_id": "A"},):
        assert client.get("/api/v1/rules/groups/mine", params=params, headers=b_admin).status_code == 403
        assert (
            client.put("/api/v1/rules/groups/mine", params=params, json=GROUP, headers=b_admin).status_code
            == 403
        )
        assert client.delete("/api/v1/rules/groups/mine", params=params, headers=b_admin).status_code == 403
    assert client.delete("/api/v1/rules/groups/mine", headers=b_admin).status_code == 404
    assert client.put("/api/v1/rules/groups/mine", json=GROUP, headers=b_admin).status_code == 200
    # a configured group is global: a project's admin changes its own namesake, never it
    assert client.put("/api/v1/rules/groups/configured", json=GROUP, headers=b_admin).status_code == 200
    assert (
        client.get("/api/v1/rules/groups/configured", headers=BOOT).json()["data"]["rules"][0]["alert"]
        == "Configured"
    )
    assert client.put("/api/v1/rules/groups/configured", json=GROUP, headers=BOOT).status_code == 409
    # global groups are the bootstrap key's; it reaches any project's with ?project_id=
    assert client.put("/api/v1/rules/groups/everyone", json=GROUP, headers=BOOT).status_code == 200
    listed = {
        (g["name"], g.get("project_id", ""))
        for g in client.get("/api/v1/rules", headers=BOOT).json()["data"]["groups"]
    }
    assert listed == {("configured", ""), ("mine", "A"), ("mine", "B"), ("configured", "B"), ("everyone", "")}
    a_group = client.get("/api/v1/rules/groups/mine", params={"project_id": "A"}, headers=BOOT)
    assert a_group.status_code == 200
    assert (
        client.delete("/api/v1/rules/groups/mine", params={"project_id": "A"}, headers=BOOT).status_code
        == 200
    )
    assert client.get("/api/v1/rules/groups/mine", headers=a_admin).status_code == 404
    assert (
        client.put("/api/v1/rules/groups/x", params={"project_id": "*"}, json=GROUP, headers=BOOT).status_code
        == 400
    )


def test_audit_verify_is_refused_to_a_project_key(client: httpx.Client) -> None:
    project = _auth(_key(client, "A", ["audit"]))
    refused = client.get("/api/v1/audit/verify", headers=project)
    assert refused.status_code == 403
    assert refused.json()["errorType"] == "forbidden"
    for headers in (_auth(_key(client, "*", ["audit"])), BOOT):
        answer = client.get("/api/v1/audit/verify", headers=headers)
        assert answer.status_code == 200
        assert answer.json()["data"]["ok"] is True
