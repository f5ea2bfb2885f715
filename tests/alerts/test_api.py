"""Rules and alerts over HTTP: Prometheus' read endpoints, and rule groups added, changed, removed."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from alerts.api import build_rules_router
from alerts.evaluator import Evaluator
from alerts.generate import RulesConfig, build_rules
from alerts.registry import RuleRegistry
from query.promql.engine import Engine
from store.memory import MemoryStore

T0 = 1_700_000_000_000
GROUP = {
    "interval": "1m",
    "rules": [{"alert": "Down", "expr": "up == 0", "labels": {"severity": "critical"}}],
}


@pytest.fixture
def api(tmp_path: Path) -> tuple[TestClient, Evaluator, list[tuple[str, str]]]:
    store = MemoryStore()
    store.append({"__name__": "up", "service_id": "s1", "source": "p0"}, T0, 0)
    changes: list[tuple[str, str]] = []
    builtin = build_rules(RulesConfig(packs=("health",)))
    registry = RuleRegistry(
        builtin, tmp_path / "api-rules.yml", on_change=lambda a, g: changes.append((a, g))
    )
    evaluator = Evaluator(registry.rules, Engine(store).instant, lambda batch: None)
    app = FastAPI()
    app.include_router(
        build_rules_router(registry, evaluator, audit=lambda r, a, g, c: changes.append((a, g, c)))
    )
    return TestClient(app), evaluator, changes


def test_rules_in_prometheus_shape(api: tuple[TestClient, Evaluator, list]) -> None:
    client, evaluator, _ = api
    evaluator.evaluate(T0)
    body = client.get("/api/v1/rules").json()
    assert body["status"] == "success"
    (group,) = body["data"]["groups"]
    assert group["name"] == "infersight-health"
    down = next(r for r in group["rules"] if r["name"] == "InferTargetDown")
    assert down["state"] == "pending"
    assert down["alerts"][0]["labels"]["source"] == "p0"
    assert client.get("/api/v1/alerts").json()["data"]["alerts"][0]["state"] == "pending"


def test_groups_are_added_changed_and_removed(
    api: tuple[TestClient, Evaluator, list], tmp_path: Path
) -> None:
    client, evaluator, changes = api
    assert client.put("/api/v1/rules/groups/mine", json=GROUP).json()["status"] == "success"
    assert [g.name for g in evaluator.rules.groups][-1] == "mine"
    changed = {**GROUP, "rules": [{**GROUP["rules"][0], "for": "5m"}]}
    assert client.put("/api/v1/rules/groups/mine", json=changed).json()["data"]["rules"][0]["for"] == "5m"
    assert client.get("/api/v1/rules/groups/mine").json()["data"]["name"] == "mine"
    assert "mine" in (tmp_path / "api-rules.yml").read_text()
    assert client.delete("/api/v1/rules/groups/mine").json()["status"] == "success"
    assert client.delete("/api/v1/rules/groups/mine").status_code == 404
    assert [g.name for g in evaluator.rules.groups] == ["infersight-health"]
    assert changes == [
        ("create", "mine"),
        ("create", "mine", 200),
        ("update", "mine"),
        ("update", "mine", 200),
        ("delete", "mine"),
        ("delete", "mine", 200),
        ("delete", "mine", 404),
    ]


def test_groups_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "api-rules.yml"
    RuleRegistry(build_rules(RulesConfig(packs=())), path).put("mine", GROUP)
    again = RuleRegistry(build_rules(RulesConfig(packs=())), path)
    assert [g.name for g in again.rules.groups] == ["mine"]


def test_a_bad_expression_is_a_400_naming_it(api: tuple[TestClient, Evaluator, list]) -> None:
    client, _, changes = api
    bad = {"rules": [GROUP["rules"][0], {"alert": "B", "expr": "rate(up[5m"}]}
    response = client.put("/api/v1/rules/groups/mine", json=bad)
    assert response.status_code == 400
    body = response.json()
    assert body["errorType"] == "bad_data"
    assert body["error"].startswith("groups[0].rules[1].expr")
    assert changes == [("create", "mine", 400)]


def test_configured_groups_are_read_only(api: tuple[TestClient, Evaluator, list]) -> None:
    client, _, _ = api
    assert client.put("/api/v1/rules/groups/infersight-health", json=GROUP).status_code == 409
    assert client.delete("/api/v1/rules/groups/infersight-health").status_code == 409
