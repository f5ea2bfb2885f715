"""Rule groups belong to a project: evaluated on its series only, its alerts labelled with it, and
the rules, alerts, ``ALERTS`` series and notifications a project's key sees are its own."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.api import build_rules_router
from alerts.evaluator import Evaluator
from alerts.projects import OwnedGroup
from alerts.registry import MAX_GROUPS_PER_PROJECT, RuleRegistry
from alerts.rules import AlertRule, RuleFile, RuleGroup, to_yaml
from alerts.state import Alert, AlertState
from alerts.webhook import to_messages
from model.labels import to_labels
from model.series import Sample
from query.api.app import AuthSettings, build_querier, create_app
from query.promql.engine import Engine
from store.open import Store

ADMIN = "projects-admin-key"
BOOT = {"Authorization": f"Bearer {ADMIN}"}
T0_MS = (int(time.time()) - 60) * 1000


def _count_rule(name: str) -> AlertRule:
    # a rule label naming another project is overridden: the alert is its group's project's
    return AlertRule(name, "count(job_up) > 0", labels={"project_id": "B"}, annotations={"n": "{{ $value }}"})


@pytest.fixture
def world(chdb_store: Store, tmp_path: Path) -> tuple[TestClient, Evaluator, RuleRegistry]:
    """Series of A (2) and B (3); a global group (count over everyone, and per series) and an A group."""
    for project, n in (("A", 2), ("B", 3)):
        chdb_store.writer.write(
            [
                Sample(
                    to_labels({"__name__": "job_up", "project_id": project, "pod": f"{project}{i}"}),
                    T0_MS,
                    1.0,
                )
                for i in range(n)
            ]
        )
    builtin = RuleFile(
        (
            RuleGroup(
                "global",
                (AlertRule("EveryoneCount", "count(job_up) > 0"), AlertRule("PerSeries", "job_up > 0")),
            ),
        )
    )
    registry = RuleRegistry(builtin, tmp_path / "api-rules.yml")
    engine = Engine(build_querier(chdb_store))
    evaluator = Evaluator(registry.owned, engine.instant, chdb_store.writer.write)
    router = build_rules_router(registry, evaluator)
    app = create_app(chdb_store, engine, auth=AuthSettings(True, ADMIN), routers=[router])
    client = TestClient(app)
    return client, evaluator, registry


def _key(client: TestClient, project: str, perms: list[str]) -> dict[str, str]:
    body = {"project_id": project, "permissions": perms}
    secret = client.post("/api/v1/admin/keys", json=body, headers=BOOT).json()["data"]["key"]
    return {"Authorization": f"Bearer {secret}"}


def test_a_projects_rules_read_only_its_series_and_its_alerts_are_its_own(world) -> None:
    client, evaluator, _ = world
    a_admin, b_admin = _key(client, "A", ["admin"]), _key(client, "B", ["admin"])
    group = {"rules": [{"alert": "MyCount", "expr": "count(job_up) > 0", "labels": {"project_id": "B"}}]}
    for headers in (a_admin, b_admin):
        assert client.put("/api/v1/rules/groups/mine", json=group, headers=headers).status_code == 200
    evaluator.evaluate(T0_MS)
    alerts = [a for by_fp in evaluator.alerts.values() for a in by_fp.values()]
    mine = sorted((a.labels["project_id"], a.value) for a in alerts if a.labels["alertname"] == "MyCount")
    assert mine == [("A", 2.0), ("B", 3.0)]  # each counted its own series, labelled with itself
    (everyone,) = [a for a in alerts if a.labels["alertname"] == "EveryoneCount"]
    assert everyone.value == 5.0  # a global rule reads every project, as before
    assert "project_id" not in everyone.labels
    per_series = sorted(a.labels["project_id"] for a in alerts if a.labels["alertname"] == "PerSeries")
    assert per_series == ["A", "A", "B", "B", "B"]

    a_read, b_read = _key(client, "A", ["read"]), _key(client, "B", ["read"])

    def alerts_series(headers: dict[str, str], name: str) -> list[tuple[str, str]]:
        params = {"query": name, "time": T0_MS / 1000}
        result = client.get("/api/v1/query", params=params, headers=headers).json()["data"]["result"]
        return sorted((r["metric"]["alertname"], r["metric"].get("project_id", "")) for r in result)

    for name in ("ALERTS", "ALERTS_FOR_STATE"):
        assert alerts_series(a_read, name) == [("MyCount", "A"), ("PerSeries", "A"), ("PerSeries", "A")]
        assert alerts_series(b_read, name) == [("MyCount", "B"), *[("PerSeries", "B")] * 3]
        assert len(alerts_series(BOOT, name)) == 8  # 2 MyCount + 5 PerSeries + EveryoneCount

    listed = client.get("/api/v1/alerts", headers=a_read).json()["data"]["alerts"]
    assert sorted(a["labels"]["alertname"] for a in listed) == ["MyCount", "PerSeries", "PerSeries"]
    assert {a["labels"]["project_id"] for a in listed} == {"A"}
    groups = client.get("/api/v1/rules", headers=a_read).json()["data"]["groups"]
    # its own group whole; of the global group only the rule raised on its series, with its alerts
    assert [(g["name"], [r["name"] for r in g["rules"]]) for g in groups] == [
        ("global", ["PerSeries"]),
        ("mine", ["MyCount"]),
    ]
    assert len(groups[0]["rules"][0]["alerts"]) == 2
    assert "count(job_up)" not in json.dumps(groups[0])
    assert len(client.get("/api/v1/alerts", headers=BOOT).json()["data"]["alerts"]) == 8


def test_groups_of_two_projects_with_one_name_persist_apart(tmp_path: Path) -> None:
    path = tmp_path / "api-rules.yml"
    registry = RuleRegistry(RuleFile(()), path)
    registry.put("g", {"rules": [{"alert": "A1", "expr": "vector(1)"}]}, "A")
    registry.put("g", {"rules": [{"alert": "B1", "expr": "vector(1)"}]}, "B")
    registry.put("g", {"rules": [{"alert": "G1", "expr": "vector(1)"}]})
    again = RuleRegistry(RuleFile(()), path)
    assert {(o.project_id, o.group.rules[0].alert) for o in again.owned} == {
        ("A", "A1"),
        ("B", "B1"),
        ("", "G1"),
    }
    assert again.delete("g", "A")
    assert again.group("g", "A") is None
    assert again.group("g", "B") is not None
    # a rule file of the earlier format (no project_id) is read as global groups
    old = tmp_path / "old.yml"
    old.write_text(to_yaml(RuleFile((RuleGroup("legacy", (AlertRule("L", "vector(1)"),)),))))
    assert [(o.project_id, o.group.name) for o in RuleRegistry(RuleFile(()), old).owned] == [("", "legacy")]


def test_two_projects_groups_of_one_name_keep_their_own_state() -> None:
    groups = [OwnedGroup(RuleGroup("g", (AlertRule("X", "vector(1)"),)), p) for p in ("A", "B", "")]
    keys = {g.rule_key(0, g.group.rules[0]) for g in groups} | {g.key for g in groups}
    assert len(keys) == 6
    assert groups[2].rule_key(0, groups[2].group.rules[0]) == "g/0/X"  # global keys as before


def test_a_project_has_a_bounded_number_of_groups(tmp_path: Path) -> None:
    registry = RuleRegistry(RuleFile(()), tmp_path / "r.yml")
    for i in range(MAX_GROUPS_PER_PROJECT):
        registry.put(f"g{i}", {"rules": []}, "A")
    with pytest.raises(ValueError, match="at most"):
        registry.put("one-more", {"rules": []}, "A")
    registry.put("g0", {"rules": []}, "A")  # replacing one is fine
    registry.put("g0", {"rules": []}, "B")  # another project has its own allowance


def test_webhook_messages_never_mix_projects() -> None:
    def alert(project: str) -> Alert:
        labels = {"alertname": "Down", "service_id": "s1", "project_id": project}
        return Alert(labels, {}, AlertState.FIRING, 1.0, active_at_ms=T0_MS)

    messages = to_messages([alert("A"), alert("B")])
    assert [{a["labels"]["project_id"] for a in m["alerts"]} for m in messages] == [{"A"}, {"B"}]
    assert [m["groupLabels"]["project_id"] for m in messages] == ["A", "B"]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=30,
)
_GROUPS = st.fixed_dictionaries(
    {},
    optional={
        "interval": _JSON,
        "rules": st.lists(
            st.fixed_dictionaries(
                {},
                optional={"alert": _JSON, "expr": _JSON, "for": _JSON, "labels": _JSON, "annotations": _JSON},
            ),
            max_size=3,
        )
        | _JSON,
    },
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_GROUPS | _JSON)
def test_fuzz_a_hostile_group_body_is_answered_never_500(world, body: object) -> None:
    client, _, _ = world
    response = client.put("/api/v1/rules/groups/fuzz", content=json.dumps(body), headers=BOOT)
    assert response.status_code in (200, 400), response.text
    assert response.json()["status"] in ("success", "error")


def test_a_deeply_nested_group_body_is_a_400(world) -> None:
    client, _, _ = world
    response = client.put("/api/v1/rules/groups/deep", content="[" * 100_000 + "]" * 100_000, headers=BOOT)
    assert response.status_code == 400
