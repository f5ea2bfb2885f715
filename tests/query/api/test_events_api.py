"""The events API over the embedded store: control-plane events in, folded list out, SSE stream."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from query.api.app import create_app
from store.open import Store


@pytest.fixture
def client(chdb_store: Store) -> TestClient:
    return TestClient(create_app(chdb_store))


OBJ = {"project_id": "p1", "service_id": "svc-1", "group_id": "dep-1"}


def test_templates_render_the_guides_wording_and_fold(client: TestClient) -> None:
    now = int(time.time() * 1000)
    body = {
        "events": [
            {"template": "E36", "args": ["RUNNING", "ALARM"], "object": OBJ, "time": now - i}
            for i in range(3)
        ]
    }
    assert client.post("/api/v1/events", json=body).status_code == 200
    pod = {**OBJ, "pod": "pod-0"}
    client.post(
        "/api/v1/events",
        json={
            "kind": "pod",
            "type": "Alarm",
            "reason": "Unhealthy",
            "message": "probe failed",
            "object": pod,
        },
    )
    data = client.get("/api/v1/events", params={"kind": "service"}).json()["data"]
    (event,) = data["events"]
    assert event["message"] == "Service status transitioned from RUNNING to ALARM."
    assert (event["type"], event["count"]) == ("Exception", 3)
    pods = client.get("/api/v1/events", params={"pod": "pod-0"}).json()["data"]["events"]
    assert [e["reason"] for e in pods] == ["Unhealthy"]
    # events are series too
    query = 'sum(infersight_events_total{reason="E36"})'
    result = client.get("/api/v1/query", params={"query": query}).json()["data"]["result"]
    assert result[0]["value"][1] == "3"


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"template": "E99", "object": OBJ}, "template"),
        ({"template": "E36", "args": ["only one"], "object": OBJ}, "args"),
        ({"kind": "pod", "type": "Warning", "reason": "x", "message": "m", "object": OBJ}, "type"),
        (
            {"kind": "pod", "type": "Alarm", "reason": "x", "message": "m", "object": {"colour": "red"}},
            "object.colour",
        ),
        ({"events": [{"template": "E20", "object": OBJ}, {"template": "E20"}]}, "events[1].object"),
        ({"template": "E20", "object": OBJ, "time": "now"}, "time"),
    ],
)
def test_bad_events_are_400_naming_the_field(client: TestClient, body: dict, named: str) -> None:
    response = client.post("/api/v1/events", json=body)
    assert response.status_code == 400
    assert named in response.json()["error"]
    assert client.get("/api/v1/events").json()["data"]["events"] == []


def test_stream_pushes_new_events(client: TestClient) -> None:
    with client.stream("GET", "/api/v1/events/stream") as stream:
        lines = stream.iter_lines()
        assert next(lines).startswith(": infersight")
        client.post(
            "/api/v1/events", json={"template": "N02", "args": ["DEPLOYING", "RUNNING"], "object": OBJ}
        )
        received = [line for line in (next(lines) for _ in range(4)) if line.startswith("data: ")]
    assert json.loads(received[0][6:])["message"] == "Service status change from DEPLOYING to RUNNING."
