"""Pod and service events derived from what the store holds, evaluated every tick.

Per pod (the ``source`` label): its scrape health (``up``), whether it still reports at all, and
restarts: ``process_start_time_seconds`` moving forward, or the sidecar's
``infersight_target_restarts_total`` going up (the sidecar reads a restart from the target's own
counters when it has no start time, ``collector/restarts.py``, so this works for every engine).
Only for a pod with neither (series written by another sender) does a request counter going back
count as a restart; where either is there, one counter's reset alone is not one.
Per service: a status derived from its pods, as the guide's status rules have it (SEED-SPEC §4.3):
first seen → DEPLOYING; all pods healthy → RUNNING; some failing → ALARM; none healthy → ABNORMAL.

Reasons are the guide's where it has one (``Started``, ``CrashLoopBackOff``, ``Unhealthy``,
``Healthy``; service templates N02, E36, W02); infersight's own are ``ScrapeFailed``,
``ScrapeRecovered``, ``PodNotReporting``, the resource thresholds and ``OOMKilling`` (Kubernetes'
name for it).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from model.event_catalog import POD_REASONS, render
from model.events import POD, SERVICE, Event, EventObject
from model.labels import Matcher, MatchOp
from model.series import Series, is_stale_nan
from query.promql.storage import Querier

UP, DOWN, SILENT = "up", "down", "silent"


@dataclass(frozen=True, slots=True)
class Threshold:
    """A pod event when a utilisation series (%) crosses ``above``; re-armed below ``above - 5``."""

    metric: str
    above: float
    reason: str
    what: str


# The guide's resource series (SEED-SPEC §1.2); reasons are infersight's (the guide names none).
THRESHOLDS = (
    Threshold("ma_container_memory_util", 95.0, "MemoryNearLimit", "Memory use"),
    Threshold("ma_container_gpu_mem_util", 98.0, "GPUMemoryExhausted", "GPU memory use"),
    Threshold("ma_container_npu_memory_util", 98.0, "NPUMemoryExhausted", "NPU memory use"),
)
REARM_GAP = 5.0
OOM_KILLS = "infersight_container_oom_kills_total"  # written by the collector's resource reader
START_TIME = "process_start_time_seconds"
TARGET_RESTARTS = "infersight_target_restarts_total"  # written by the sidecar with ``up``
CRASH_LOOP_RESTARTS = 3
CRASH_LOOP_WINDOW_MS = 600_000


@dataclass
class _Pod:
    obj: EventObject
    state: str
    # Last value per series (label set) of the restart signals: a start time, the request counters.
    last: dict[tuple[tuple[str, str], ...], float] = field(default_factory=dict)
    restarts: deque[int] = field(default_factory=deque)
    over: set[str] = field(default_factory=set)  # thresholds currently crossed


def _last(series: Series) -> tuple[int, float] | None:
    for ts, value in zip(series.ts_ms[::-1], series.values[::-1], strict=True):
        if not is_stale_nan(float(value)):
            return int(ts), float(value)
    return None


def _obj(labels: dict[str, str]) -> EventObject:
    return EventObject(
        project_id=labels.get("project_id", ""),
        service_id=labels.get("service_id", ""),
        service_name=labels.get("service_name", ""),
        group_id=labels.get("group_id", ""),
        instance_name=labels.get("instance_name", ""),
        unit=labels.get("role", ""),
        pod=labels.get("source", ""),
    )


class EventDetector:
    """``events = detector.tick(now_ms)``; hand them to the ``EventHub``."""

    def __init__(self, querier: Querier, silent_after_ms: int = 60_000, window_ms: int = 600_000) -> None:
        self._querier = querier
        self._silent_after_ms = silent_after_ms
        self._window_ms = window_ms
        self._pods: dict[str, _Pod] = {}
        self._services: dict[str, str] = {}

    def _select(self, name: str, now_ms: int) -> dict[str, list[tuple[dict[str, str], int, float]]]:
        """Per pod, the last non-stale point of each series of metric ``name`` within the window."""
        out: dict[str, list[tuple[dict[str, str], int, float]]] = {}
        matchers = [Matcher("__name__", MatchOp.EQ, name), Matcher("source", MatchOp.NE, "")]
        for series in self._querier.select(matchers, now_ms - self._window_ms, now_ms):
            last = _last(series)
            if last is not None:
                out.setdefault(series.labels.get("source", ""), []).append((series.labels, *last))
        return out

    def tick(self, now_ms: int) -> list[Event]:
        events: list[Event] = []
        up = self._select("up", now_ms)
        starts = self._select(START_TIME, now_ms)
        target_restarts = self._select(TARGET_RESTARTS, now_ms)
        requests = self._select("infer_service_request_total", now_ms)
        utilisation = [(t, self._select(t.metric, now_ms)) for t in THRESHOLDS]
        oom_kills = self._select(OOM_KILLS, now_ms)
        for pod_name, points in up.items():
            labels, ts, value = max(points, key=lambda p: p[1])
            state = SILENT if now_ms - ts > self._silent_after_ms else (UP if value == 1 else DOWN)
            pod = self._pods.get(pod_name)
            if pod is None:
                pod = self._pods[pod_name] = _Pod(_obj(labels), state)
                if state != UP:
                    events += self._pod_transition(pod, UP, state, now_ms)
            elif pod.state != state:
                events += self._pod_transition(pod, pod.state, state, now_ms)
                pod.state = state
            signals = [*starts.get(pod_name, []), *target_restarts.get(pod_name, [])]
            if not signals:
                signals = requests.get(pod_name, [])
            events += self._restarts(pod, signals, now_ms)
            events += self._oom_kills(pod, oom_kills.get(pod_name, []), now_ms)
            for threshold, points in utilisation:
                events += self._threshold(pod, threshold, points.get(pod_name, []), now_ms)
        events += self._service_status(now_ms)
        return events

    def _pod_event(
        self, pod: _Pod, reason: str, message: str, now_ms: int, type_: str | None = None
    ) -> Event:
        kind_type = type_ or POD_REASONS.get(reason, ("Alarm", ""))[0]
        return Event(POD, kind_type, reason, message, pod.obj, now_ms)

    def _pod_transition(self, pod: _Pod, old: str, new: str, now_ms: int) -> list[Event]:
        name = pod.obj.pod
        if new == DOWN:
            return [
                self._pod_event(
                    pod, "ScrapeFailed", f"Scraping metrics of pod [{name}] failed.", now_ms, "Alarm"
                ),
                self._pod_event(pod, "Unhealthy", render("Unhealthy"), now_ms),
            ]
        if new == SILENT:
            message = f"Pod [{name}] has not reported metrics for {self._silent_after_ms // 1000} seconds."
            return [self._pod_event(pod, "PodNotReporting", message, now_ms, "Alarm")]
        recovered = self._pod_event(
            pod, "ScrapeRecovered", f"Scraping metrics of pod [{name}] recovered.", now_ms, "Normal"
        )
        return [recovered, self._pod_event(pod, "Healthy", render("Healthy"), now_ms)] if old != UP else []

    def _restarts(
        self, pod: _Pod, signals: list[tuple[dict[str, str], int, float]], now_ms: int
    ) -> list[Event]:
        """A restart: a start time that moved forward or a restart count that went up; else (a pod
        with neither) a request counter that went back."""
        restarted = False
        for labels, _, value in signals:
            key = tuple(sorted(labels.items()))
            previous = pod.last.get(key)
            if previous is not None:
                forward = labels.get("__name__") in (START_TIME, TARGET_RESTARTS)
                restarted |= value > previous if forward else value < previous
            pod.last[key] = value
        if not restarted:
            return []
        pod.restarts.append(now_ms)
        while pod.restarts and pod.restarts[0] < now_ms - CRASH_LOOP_WINDOW_MS:
            pod.restarts.popleft()
        events = [self._pod_event(pod, "Started", render("Started"), now_ms)]
        if len(pod.restarts) >= CRASH_LOOP_RESTARTS:
            events.append(self._pod_event(pod, "CrashLoopBackOff", render("CrashLoopBackOff"), now_ms))
        return events

    def _oom_kills(
        self, pod: _Pod, points: list[tuple[dict[str, str], int, float]], now_ms: int
    ) -> list[Event]:
        """The container's OOM-kill counter went up: one event per increase (Kubernetes' reason)."""
        events = []
        for labels, _, value in points:
            key = tuple(sorted(labels.items()))
            previous = pod.last.get(key)
            pod.last[key] = value
            if previous is not None and value > previous:
                kills = int(value - previous)
                message = (
                    f"The container of pod [{pod.obj.pod}] was killed for running out of memory ({kills}x)."
                )
                events.append(self._pod_event(pod, "OOMKilling", message, now_ms, "Alarm"))
        return events

    def _threshold(
        self, pod: _Pod, threshold: Threshold, points: list[tuple[dict[str, str], int, float]], now_ms: int
    ) -> list[Event]:
        if not points:
            return []
        value = max(v for _, _, v in points)  # the fullest device or container of the pod
        if threshold.metric in pod.over:
            if value < threshold.above - REARM_GAP:
                pod.over.discard(threshold.metric)
            return []
        if value < threshold.above:
            return []
        pod.over.add(threshold.metric)
        message = f"{threshold.what} of pod [{pod.obj.pod}] reached {value:.0f}% of its limit."
        return [self._pod_event(pod, threshold.reason, message, now_ms, "Alarm")]

    def _service_status(self, now_ms: int) -> list[Event]:
        by_service: dict[str, list[_Pod]] = {}
        for pod in self._pods.values():
            by_service.setdefault(pod.obj.service_id, []).append(pod)
        events = []
        for service_id, pods in by_service.items():
            if not service_id:
                continue
            healthy = sum(p.state == UP for p in pods)
            status = "RUNNING" if healthy == len(pods) else ("ALARM" if healthy else "ABNORMAL")
            old = self._services.get(service_id, "DEPLOYING")
            self._services[service_id] = status
            if status == old:
                continue
            obj = EventObject(pods[0].obj.project_id, service_id, pods[0].obj.service_name)
            if status == "RUNNING":
                events.append(
                    Event(SERVICE, "Normal", "ServiceStatusChanged", render("N02", old, status), obj, now_ms)
                )
                continue
            events.append(Event(SERVICE, "Exception", "E36", render("E36", old, status), obj, now_ms))
            for group in sorted({p.obj.group_id for p in pods if p.state != UP and p.obj.group_id}):
                events.append(Event(SERVICE, "Warning", "W02", render("W02", group), obj, now_ms))
        return events

    @property
    def service_status(self) -> dict[str, str]:
        return dict(self._services)
