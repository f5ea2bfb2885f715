"""Alerts from the evaluator reach a real Alertmanager 0.25 and its webhook: firing, grouped, resolved."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from alerts.alertmanager import AlertmanagerClient, to_payload
from alerts.delivery import RetryPolicy
from alerts.evaluator import Evaluator
from alerts.rules import AlertRule, RuleFile, RuleGroup
from alerts.state import Alert, AlertState
from alerts.webhook import WebhookClient, to_messages
from query.promql.engine import Engine
from store.memory import MemoryStore
from tests.alerts.alertmanager_fixture import Sink, run_alertmanager, start_sink

RULE = AlertRule(
    "InferTargetDown",
    "up == 0",
    labels={"severity": "critical"},
    annotations={"summary": "Pod {{ $labels.source }} of service {{ $labels.service_id }} cannot be scraped"},
)


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[tuple[str, Sink]]:
    server, sink = start_sink()
    try:
        yield from (
            (url, sink) for url in run_alertmanager(tmp_path, f"http://127.0.0.1:{server.server_port}/hook")
        )
    finally:
        server.shutdown()


def _evaluator() -> tuple[Evaluator, int]:
    store = MemoryStore()
    # evaluated 10 s in the past, so the resolution's endsAt has passed when Alertmanager gets it
    now = int(time.time() * 1000) - 10_000
    for pod, values in (("p0", [0, 0, 1]), ("p1", [0, 0, 1])):
        for i, v in enumerate(values):
            store.append({"__name__": "up", "service_id": "s1", "source": pod}, now + i * 1000, v)
    ev = Evaluator(RuleFile((RuleGroup("g", (RULE,)),)), Engine(store).instant, lambda batch: None, 1000)
    return ev, now


@pytest.mark.integration
def test_alert_arrives_grouped_and_resolves(alertmanager: tuple[str, Sink]) -> None:
    url, sink = alertmanager
    ev, now = _evaluator()
    client = AlertmanagerClient([url])

    assert asyncio.run(client.send(ev.evaluate(now))) is True
    # Both pods in one notification, grouped by alertname and service_id. Alertmanager may flush
    # the group between the two alerts of one request on a stalled machine (group_wait is 1 s
    # here); the group's next notification then carries both.
    firing = sink.wait_for(lambda b: b["status"] == "firing" and len(b["alerts"]) == 2)
    assert firing["groupLabels"] == {"alertname": "InferTargetDown", "service_id": "s1"}
    assert sorted(a["labels"]["source"] for a in firing["alerts"]) == ["p0", "p1"]
    first = next(a for a in firing["alerts"] if a["labels"]["source"] == "p0")
    assert first["labels"]["severity"] == "critical"
    assert first["annotations"]["summary"] == "Pod p0 of service s1 cannot be scraped"

    assert asyncio.run(client.send(ev.evaluate(now + 2000))) is True
    resolved = sink.wait_for(lambda b: b["status"] == "resolved")
    assert {a["status"] for a in resolved["alerts"]} == {"resolved"}
    assert client.sent_alerts == 4
    assert client.failed_alerts == 0


def test_undeliverable_alerts_are_counted() -> None:
    alert = Alert({"alertname": "A"}, {}, AlertState.FIRING, 1.0, active_at_ms=1000, fired_at_ms=1000)
    policy = RetryPolicy(retries=1, backoff_s=0.01, timeout_s=0.5)
    for client in (
        AlertmanagerClient(["http://127.0.0.1:9"], policy),
        WebhookClient(["http://127.0.0.1:9/x"], policy),
    ):
        assert asyncio.run(client.send([alert])) is False
        assert client.failed_alerts == 1


def test_payload_is_prometheus_shape() -> None:
    alert = Alert(
        {"alertname": "A"},
        {"summary": "s"},
        AlertState.INACTIVE,
        1.0,
        active_at_ms=0,
        fired_at_ms=60_000,
        resolved_at_ms=120_000,
    )
    assert to_payload([alert]) == [
        {
            "labels": {"alertname": "A"},
            "annotations": {"summary": "s"},
            "startsAt": "1970-01-01T00:01:00.000Z",
            "endsAt": "1970-01-01T00:02:00.000Z",
            "generatorURL": "",
        }
    ]


def test_webhook_gets_alertmanagers_payload_without_alertmanager() -> None:
    server, sink = start_sink()
    try:
        ev, now = _evaluator()
        client = WebhookClient([f"http://127.0.0.1:{server.server_port}/hook"])
        assert asyncio.run(client.send(ev.evaluate(now))) is True
        assert asyncio.run(client.send(ev.evaluate(now + 2000))) is True
    finally:
        server.shutdown()
    firing, resolved = sink.received
    assert firing["status"] == "firing"
    assert firing["version"] == "4"
    assert firing["groupLabels"] == {"alertname": "InferTargetDown", "service_id": "s1"}
    assert firing["commonLabels"] == {
        "alertname": "InferTargetDown",
        "service_id": "s1",
        "severity": "critical",
    }
    assert sorted(a["labels"]["source"] for a in firing["alerts"]) == ["p0", "p1"]
    assert resolved["status"] == "resolved"
    assert {a["status"] for a in resolved["alerts"]} == {"resolved"}
    assert client.sent_alerts == 4


def test_webhook_messages_group_by_alertname_and_service() -> None:
    alerts = [
        Alert({"alertname": "A", "service_id": s}, {}, AlertState.FIRING, 1.0, active_at_ms=0)
        for s in ("s1", "s2")
    ]
    assert [m["groupLabels"]["service_id"] for m in to_messages(alerts)] == ["s1", "s2"]
