"""``POST /api/v1/events`` with ids: a resent event (a sidecar's retry whose answer it lost) is one
occurrence, not streamed or counted again; ids are checked; events without ids work as before."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from query.api.app import create_app
from store.open import Store

POD = {"project_id": "p1", "service_id": "svc-1", "pod": "pod-0"}


@pytest.fixture
def client(chdb_store: Store) -> TestClient:
    return TestClient(create_app(chdb_store))


def _event(i: int, now: int, **extra: object) -> dict:
    return {"kind": "pod", "type": "Alarm", "reason": "Unhealthy", "message": "probe failed",
            "object": POD, "time": now - i, **extra}  # fmt: skip


def _occurrences(client: TestClient) -> int:
    (event,) = client.get("/api/v1/events", params={"pod": "pod-0"}).json()["data"]["events"]
    return event["count"]


def _counted(client: TestClient) -> float:
    body = client.get("/api/v1/query", params={"query": 'sum(infersight_events_total{reason="Unhealthy"})'})
    return float(body.json()["data"]["result"][0]["value"][1])


def test_a_resent_batch_adds_no_occurrence_and_no_count(client: TestClient) -> None:
    now = int(time.time() * 1000)
    batch = {"events": [_event(i, now, id=f"sidecar-{i}", source="infersight") for i in range(3)]}
    first = client.post("/api/v1/events", json=batch).json()["data"]
    again = client.post("/api/v1/events", json=batch).json()["data"]
    assert (first["received"], first["repeated"]) == (3, 0)
    assert (again["received"], again["repeated"]) == (3, 3)
    assert _occurrences(client) == 3
    assert _counted(client) == 3
    twice_in_one = {"events": [_event(9, now, id="sidecar-9"), _event(9, now, id="sidecar-9")]}
    assert client.post("/api/v1/events", json=twice_in_one).json()["data"]["repeated"] == 1
    assert _occurrences(client) == 4


def test_events_without_ids_still_fold_every_occurrence(client: TestClient) -> None:
    now = int(time.time() * 1000)
    for _ in range(2):
        assert client.post("/api/v1/events", json=_event(0, now)).status_code == 200
    assert _occurrences(client) == 2


@pytest.mark.parametrize("bad", [7, "x" * 65, "new\nline", ["a"], None])
def test_bad_ids_are_refused_naming_the_field(client: TestClient, bad: object) -> None:
    answer = client.post("/api/v1/events", json=_event(0, int(time.time() * 1000), id=bad))
    assert answer.status_code == 400
    assert answer.json()["errorType"] == "bad_data"
    assert answer.json()["error"].startswith("id:")
