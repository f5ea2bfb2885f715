"""The ``alerts`` configuration section and the runner that infersight starts."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from alerts.config import AlertsSection
from alerts.events import to_events
from alerts.runner import AlertRunner
from alerts.state import Alert, AlertState
from model.errors import ConfigError
from model.events import Event
from model.series import Sample
from query.promql.engine import Engine
from store.memory import MemoryStore
from tests.alerts.alertmanager_fixture import start_sink


def test_defaults_run_every_built_in_pack() -> None:
    rules = AlertsSection.from_dict(None).load_rules()
    assert [g.name for g in rules.groups] == [
        "infersight-service",
        "infersight-health",
        "infersight-resources",
    ]


def test_rule_files_join_the_packs(tmp_path: Path) -> None:
    extra = tmp_path / "mine.yml"
    extra.write_text("groups: [{name: mine, rules: [{alert: Mine, expr: 'vector(1)', for: 1m}]}]\n")
    section = AlertsSection.from_dict({"packs": [], "rule_files": [str(extra)], "interval": "15s"})
    assert [g.name for g in section.load_rules().groups] == ["mine"]
    assert section.interval_ms == 15_000


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"interval": "soon"}, "alerts.interval"),
        ({"alertmanager": "x"}, "alerts.alertmanager"),
        ({"services": [{"service_id": "s", "error_ratio": 3}]}, r"alerts.services\[0\].error_ratio"),
        ({"rule_files": ["/nonexistent.yml"]}, "alerts.rule_files"),
        ({"alertmanager_urls": "http://x"}, "alerts.alertmanager_urls"),
    ],
)
def test_bad_section_names_the_key(data: dict, where: str) -> None:
    with pytest.raises(ConfigError, match=where):
        AlertsSection.from_dict(data)


def test_bad_rule_file_names_file_and_rule(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("groups: [{name: g, rules: [{alert: A, expr: 'rate(up[5m'}]}]\n")
    with pytest.raises(ConfigError, match=r"bad.yml: groups\[0\].rules\[0\].expr"):
        AlertsSection.from_dict({"rule_files": [str(bad)]})


def test_runner_evaluates_and_notifies(tmp_path: Path) -> None:
    server, sink = start_sink()
    store = MemoryStore()
    now = int(time.time() * 1000)
    for i in range(3):
        store.append(
            {"__name__": "up", "service_id": "s1", "source": "p0", "project_id": "p"}, now - i * 1000, 0
        )
    written: list[Sample] = []
    section = AlertsSection.from_dict(
        {
            "interval": "1s",
            "defaults": {"health_for": 0},
            "webhook_urls": [f"http://127.0.0.1:{server.server_port}/hook"],
            "state_file": str(tmp_path / "state.json"),
        }
    )
    events: list[Event] = []
    runner = AlertRunner(section, Engine(store).instant, written.extend, events.extend)

    async def main() -> None:
        await runner.start()
        await asyncio.sleep(0.5)
        await runner.stop()
        await runner.stop()

    try:
        asyncio.run(main())
    finally:
        server.shutdown()
    names = {m["groupLabels"]["alertname"] for m in sink.received}
    assert {"InferTargetDown", "InferServiceNoHealthyPod"} <= names
    assert any(dict(s.labels)["__name__"] == "ALERTS" for s in written)
    assert (tmp_path / "state.json").exists()
    assert runner.failed_alerts == 0
    down = [e for e in events if e.reason == "InferTargetDown"]
    assert [(e.kind, e.type, e.obj.pod) for e in down] == [("service", "Exception", "p0")]
    assert down[0].message == "Alert firing: Pod p0 of service s1 cannot be scraped"


def test_transitions_become_service_events() -> None:
    labels = {"alertname": "A", "severity": "warning", "service_id": "s1", "project_id": "p"}
    firing = Alert(labels, {"summary": "s"}, AlertState.FIRING, 1.0, active_at_ms=0, fired_at_ms=60_000)
    resolved = Alert(
        labels, {"summary": "s"}, AlertState.INACTIVE, 1.0, active_at_ms=0, resolved_at_ms=120_000
    )
    nameless = Alert({"alertname": "B"}, {}, AlertState.FIRING, 1.0, active_at_ms=0, fired_at_ms=1)
    events = to_events([firing, resolved, nameless])
    assert [(e.type, e.message, e.time_ms) for e in events] == [
        ("Warning", "Alert firing: s", 60_000),
        ("Normal", "Alert resolved: s", 120_000),
    ]
    for event in events:
        event.validate()
