"""Pod and service events derived from stored series: down, recovery, silence, restarts, status."""

from __future__ import annotations

from model.labels import to_labels
from model.series import Sample
from query.events.detector import EventDetector
from store.open import Store

T0 = 1_764_000_000_000
IDENTITY = {"project_id": "p1", "service_id": "svc-1", "service_name": "my-llm", "group_id": "dep-1"}


def _write(
    store: Store, ts_ms: int, pod: str, up: float, start_s: float | None = None, requests: float | None = None
) -> None:
    ident = {**IDENTITY, "source": pod}
    batch = [Sample(to_labels({"__name__": "up", **ident}), ts_ms, up)]
    if start_s is not None:
        batch.append(Sample(to_labels({"__name__": "process_start_time_seconds", **ident}), ts_ms, start_s))
    if requests is not None:
        batch.append(
            Sample(
                to_labels({"__name__": "infer_service_request_total", "code": "2xx", **ident}),
                ts_ms,
                requests,
            )
        )
    store.writer.write(batch)


def _reasons(events) -> list[tuple[str, str, str]]:
    return [(e.kind, e.reason, e.message) for e in events]


def test_status_lifecycle_and_pod_health(chdb_store: Store) -> None:
    detector = EventDetector(chdb_store.querier, silent_after_ms=30_000)
    _write(chdb_store, T0, "pod-0", 1)
    _write(chdb_store, T0, "pod-1", 1)
    assert _reasons(detector.tick(T0 + 1000)) == [
        ("service", "ServiceStatusChanged", "Service status change from DEPLOYING to RUNNING.")
    ]
    _write(chdb_store, T0 + 10_000, "pod-0", 1)
    _write(chdb_store, T0 + 10_000, "pod-1", 0)
    assert _reasons(detector.tick(T0 + 11_000)) == [
        ("pod", "ScrapeFailed", "Scraping metrics of pod [pod-1] failed."),
        ("pod", "Unhealthy", "The health check fails."),
        ("service", "E36", "Service status transitioned from RUNNING to ALARM."),
        (
            "service",
            "W02",
            "Checking the health status of some pods failed during the deployment [dep-1]. "
            "(Check the pod events for the cause.)",
        ),
    ]
    assert detector.tick(T0 + 12_000) == []  # nothing new: no repeated events
    _write(chdb_store, T0 + 20_000, "pod-0", 1)
    _write(chdb_store, T0 + 20_000, "pod-1", 1)
    assert [r for _, r, _ in _reasons(detector.tick(T0 + 21_000))] == [
        "ScrapeRecovered",
        "Healthy",
        "ServiceStatusChanged",
    ]
    # pod-1 stops reporting altogether; pod-0 goes on.
    _write(chdb_store, T0 + 60_000, "pod-0", 1)
    events = detector.tick(T0 + 61_000)
    assert [(e.reason, e.obj.pod) for e in events][:1] == [("PodNotReporting", "pod-1")]
    assert detector.service_status == {"svc-1": "ALARM"}


def test_restarts_and_crash_loop(chdb_store: Store) -> None:
    detector = EventDetector(chdb_store.querier)
    _write(chdb_store, T0, "pod-0", 1, start_s=100.0, requests=50)
    detector.tick(T0 + 1)
    reasons = []
    for i, (start, requests) in enumerate([(200.0, 3), (200.0, 1), (300.0, 9), (400.0, 12)], start=1):
        _write(chdb_store, T0 + i * 10_000, "pod-0", 1, start_s=start, requests=requests)
        reasons.append([e.reason for e in detector.tick(T0 + i * 10_000 + 1)])
    # a new start time; then a request counter reset with the same start time (one counter's reset,
    # not a restart); then two more restarts: the third within 10 min is a crash loop.
    assert reasons == [["Started"], [], ["Started"], ["Started", "CrashLoopBackOff"]]


def test_request_counter_going_back_is_a_restart_only_without_other_signals(chdb_store: Store) -> None:
    detector = EventDetector(chdb_store.querier)
    reasons = []
    for i, requests in enumerate([50, 60, 2]):
        _write(chdb_store, T0 + i * 10_000, "pod-0", 1, requests=requests)
        reasons.append([e.reason for e in detector.tick(T0 + i * 10_000 + 1) if e.kind == "pod"])
    assert reasons == [[], [], ["Started"]]


def test_the_sidecars_restart_count_going_up_is_a_restart_and_back_to_zero_is_not(chdb_store: Store) -> None:
    detector = EventDetector(chdb_store.querier)
    ident = {**IDENTITY, "source": "pod-0"}
    reasons = []
    # the sidecar sees a restart (0 → 1), then restarts itself (1 → 0), then sees another (0 → 1)
    for i, count in enumerate([0, 1, 1, 0, 1]):
        ts = T0 + i * 10_000
        chdb_store.writer.write(
            [
                Sample(to_labels({"__name__": "up", **ident}), ts, 1),
                Sample(to_labels({"__name__": "infersight_target_restarts_total", **ident}), ts, count),
                Sample(to_labels({"__name__": "infer_service_request_total", **ident}), ts, 100 - i),
            ]
        )
        reasons.append([e.reason for e in detector.tick(ts + 1) if e.kind == "pod"])
    # the request counter going down every tick is not looked at: the pod has a restart count
    assert reasons == [[], ["Started"], [], [], ["Started"]]


def test_counters_of_different_codes_are_not_a_restart(chdb_store: Store) -> None:
    detector = EventDetector(chdb_store.querier)
    for i, (ok, failed) in enumerate([(100, 3), (180, 4), (260, 4)]):
        ident = {**IDENTITY, "source": "pod-0"}
        name = "infer_service_request_total"
        chdb_store.writer.write(
            [
                Sample(to_labels({"__name__": "up", **ident}), T0 + i * 10_000, 1),
                Sample(to_labels({"__name__": name, "code": "2xx", **ident}), T0 + i * 10_000, ok),
                Sample(to_labels({"__name__": name, "code": "5xx", **ident}), T0 + i * 10_000, failed),
            ]
        )
        assert [e.reason for e in detector.tick(T0 + i * 10_000 + 1) if e.kind == "pod"] == []


def test_memory_near_limit_fires_once_and_rearms(chdb_store: Store) -> None:
    detector = EventDetector(chdb_store.querier)
    ident = {**IDENTITY, "source": "pod-0"}
    fired = []
    for i, util in enumerate([60.0, 96.0, 97.0, 92.0, 89.0, 99.0]):
        ts = T0 + i * 10_000
        chdb_store.writer.write(
            [
                Sample(to_labels({"__name__": "up", **ident}), ts, 1),
                Sample(to_labels({"__name__": "ma_container_memory_util", **ident}), ts, util),
            ]
        )
        fired.append([e.message for e in detector.tick(ts + 1) if e.reason == "MemoryNearLimit"])
    assert fired == [
        [],
        ["Memory use of pod [pod-0] reached 96% of its limit."],
        [],
        [],
        [],
        ["Memory use of pod [pod-0] reached 99% of its limit."],
    ]


def test_oom_kill_counter_increase_is_an_event(chdb_store: Store) -> None:
    detector = EventDetector(chdb_store.querier)
    ident = {**IDENTITY, "source": "pod-0"}
    fired = []
    for i, kills in enumerate([0.0, 0.0, 2.0, 2.0]):
        ts = T0 + i * 10_000
        chdb_store.writer.write(
            [
                Sample(to_labels({"__name__": "up", **ident}), ts, 1),
                Sample(to_labels({"__name__": "infersight_container_oom_kills_total", **ident}), ts, kills),
            ]
        )
        fired.append([e.message for e in detector.tick(ts + 1) if e.reason == "OOMKilling"])
    assert fired == [[], [], ["The container of pod [pod-0] was killed for running out of memory (2x)."], []]
