"""Events in the real store: folding into occurrences, filters, literal text search, retention."""

from __future__ import annotations

import pytest

from model.event_catalog import render
from model.events import Event, EventObject
from store.events import EventLog, EventQuery, Retention
from store.open import Store

NOW = 1_764_000_000_000
SVC = EventObject(project_id="p1", service_id="svc-1", service_name="my-llm", group_id="dep-1")
POD = EventObject(project_id="p1", service_id="svc-1", group_id="dep-1", pod="my-llm-pod-0")


@pytest.fixture
def log(chdb_store: Store) -> EventLog:
    return EventLog(chdb_store.backend)


def test_repeats_fold_into_occurrences(log: EventLog) -> None:
    unhealthy = [
        Event("pod", "Alarm", "Unhealthy", render("Unhealthy"), POD, NOW - 60_000 + i * 1000)
        for i in range(5)
    ]
    log.append(
        [
            *unhealthy,
            Event(
                "service", "Normal", "ServiceStatusChanged", render("N02", "DEPLOYING", "RUNNING"), SVC, NOW
            ),
        ]
    )
    folded, cursor = log.list(EventQuery(), NOW)
    assert cursor is None
    assert [(e.reason, e.count) for e in folded] == [("ServiceStatusChanged", 1), ("Unhealthy", 5)]
    assert folded[1].first_ms == NOW - 60_000
    assert folded[1].last_ms == NOW - 56_000
    assert folded[0].to_json()["message"] == "Service status change from DEPLOYING to RUNNING."


def test_filters_and_literal_text(log: EventLog) -> None:
    log.append(
        [
            Event("service", "Exception", "E01", render("E01", "quota 100% used; '_'"), SVC, NOW),
            Event("service", "Exception", "E36", render("E36", "RUNNING", "ALARM"), SVC, NOW - 1),
        ]
    )
    hits, _ = log.list(EventQuery(text="100% used; '_'"), NOW)
    assert [e.reason for e in hits] == ["E01"]
    assert log.list(EventQuery(text="100_ used"), NOW)[0] == []
    hits, _ = log.list(EventQuery(filters=(("reason", "E36"),)), NOW)
    assert [e.message for e in hits] == ["Service status transitioned from RUNNING to ALARM."]
    with pytest.raises(ValueError, match="not a filter"):
        log.list(EventQuery(filters=(("message; DROP", "x"),)), NOW)


def test_pagination_covers_everything_once(log: EventLog) -> None:
    log.append(
        [Event("service", "Warning", "W02", render("W02", f"dep-{i}"), SVC, NOW - i) for i in range(23)]
    )
    seen, cursor = [], None
    while True:
        page, cursor = log.list(EventQuery(limit=5, cursor=cursor), NOW)
        seen += [e.message for e in page]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 23


def test_retention_hides_then_drops_by_kind(chdb_store: Store) -> None:
    log = EventLog(chdb_store.backend, Retention(pod_ms=3_600_000, service_ms=30 * 86_400_000))
    two_days_ago = NOW - 2 * 86_400_000
    log.append(
        [
            Event("pod", "Alarm", "Unhealthy", render("Unhealthy"), POD, two_days_ago),
            Event("pod", "Alarm", "Unhealthy", render("Unhealthy"), POD, NOW - 7_200_000),  # 2 h old: hidden
            Event("pod", "Normal", "Started", render("Started"), POD, NOW - 60_000),
            Event("service", "Exception", "E36", render("E36", "RUNNING", "ALARM"), SVC, two_days_ago),
        ]
    )
    shown, _ = log.list(EventQuery(), NOW)
    assert sorted(e.reason for e in shown) == ["E36", "Started"]
    dropped = log.enforce_retention(NOW)
    assert len(dropped) == 1
    assert dropped[0].startswith("pod/")
    left = chdb_store.backend.query(
        "SELECT kind, count() AS n FROM infersight.events GROUP BY kind ORDER BY kind"
    )
    assert left.to_pylist() == [{"kind": "pod", "n": 2}, {"kind": "service", "n": 1}]


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (Event("node", "Normal", "x", "m", POD, NOW), "kind"),
        (Event("pod", "Warning", "x", "m", POD, NOW), "type"),
        (Event("pod", "Alarm", "", "m", POD, NOW), "reason"),
        (Event("pod", "Alarm", "x", "m", EventObject(), NOW), "object"),
    ],
)
def test_invalid_events_are_refused_naming_the_field(log: EventLog, event: Event, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        log.append([event])


# -- exactly once: an event stored again under its id is not another occurrence -------------------------


def test_an_event_stored_twice_under_its_id_is_one_occurrence(store: Store) -> None:
    log = EventLog(store.backend)
    events = [
        Event(
            "pod", "Alarm", "Unhealthy", render("Unhealthy"), POD, NOW - 60_000 + i * 1000, event_id=f"u{i}"
        )
        for i in range(3)
    ]
    log.append(events)
    log.append(events[1:])  # a retry whose answer was lost
    log.append(events)  # the buffer replayed after a restart
    (folded,), _ = log.list(EventQuery(), NOW)
    assert (folded.count, folded.first_ms, folded.last_ms) == (3, NOW - 60_000, NOW - 58_000)
    stored = store.backend.query(f"SELECT count() AS n FROM {store.backend.database}.events")
    assert stored.column(0)[0].as_py() == 8  # stored eight times, three occurrences


def test_events_without_ids_are_each_an_occurrence(store: Store) -> None:
    log = EventLog(store.backend)
    same = Event("pod", "Alarm", "Unhealthy", render("Unhealthy"), POD, NOW)
    log.append([same, same])  # the control plane posting a repeat: two occurrences
    (folded,), _ = log.list(EventQuery(), NOW)
    assert folded.count == 2


def test_another_projects_event_id_folds_nothing_away(store: Store) -> None:
    log = EventLog(store.backend)
    other = EventObject(project_id="p2", service_id="svc-1", pod="my-llm-pod-0")
    log.append([Event("pod", "Alarm", "Unhealthy", render("Unhealthy"), POD, NOW, event_id="x")])
    log.append([Event("pod", "Alarm", "Unhealthy", render("Unhealthy"), other, NOW, event_id="x")])
    for project in ("p1", "p2"):
        (folded,), _ = log.list(EventQuery(filters=(("project_id", project),)), NOW)
        assert folded.count == 1
