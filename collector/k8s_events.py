"""Kubernetes events of the sidecar's own pod, mapped to the guide's pod-event reasons (T1-55).

The watch goes through the official ``kubernetes`` client: list once for a ``resourceVersion``,
then watch from it; after a dropped connection, watch again from the last version seen; when the
server answers 410 Gone (the version is too old), list again. The client is synchronous, so the
watch runs in a thread and hands events to the event loop. Every event it hands on carries an id made
from the Kubernetes object, so what a re-list sees again is stored once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import json
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger

from model.events import POD, Event, EventObject

# Kubernetes reason → the guide's reason. Where Kubernetes uses one reason for two situations
# (BackOff, Failed), the message tells which (see ``_guide_reason``).
REASONS = {
    "Created": "SuccessfulCreate",
    "SuccessfulCreate": "SuccessfulCreate",
    "Started": "Started",
    "Scheduled": "Scheduled",
    "SuccessfulMountVolume": "SuccessfulMountVolume",
    "SuccessfulAttachVolume": "SuccessfulMountVolume",
    "Pulling": "Pulling",
    "Pulled": "Pulled",
    "Killing": "Killing",
    "Unhealthy": "Unhealthy",
    "FailedScheduling": "FailedScheduling",
    "FailedMount": "FailedMount",
    "FailedAttachVolume": "FailedMount",
    "ErrImagePull": "FailedPullImage",
    "ImagePullBackOff": "BackOffPullImage",
    "CrashLoopBackOff": "CrashLoopBackOff",
    "InferInitContainerFailed": "InferInitContainerFailed",
}
ALARM_REASONS = {
    "BackOffStart", "CrashLoopBackOff", "FailedPullImage", "BackOffPullImage", "Unhealthy",
    "FailedScheduling", "FailedMount", "InferInitContainerFailed",
}  # fmt: skip


def _guide_reason(reason: str, message: str) -> str:
    text = message.lower()
    if reason == "BackOff":
        if "pull" in text:
            return "BackOffPullImage"
        return "CrashLoopBackOff" if "restarting failed container" in text else "BackOffStart"
    if reason == "Failed":
        return "FailedPullImage" if ("pull" in text or "image" in text) else "BackOffStart"
    return REASONS.get(reason, reason)


def _time_ms(obj: dict[str, Any]) -> int:
    """When it last happened: lastTimestamp, else eventTime (events.k8s.io style), else creation."""
    stamps = (
        obj.get("lastTimestamp"),
        obj.get("eventTime"),
        (obj.get("metadata") or {}).get("creationTimestamp"),
    )
    for stamp in stamps:
        if stamp:
            return int(dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp() * 1000)
    return 0


def to_event(obj: dict[str, Any], identity: EventObject) -> Event | None:
    """A core/v1 Event about a pod → a pod event for ``identity``'s service; None for other objects."""
    involved = obj.get("involvedObject") or {}
    if involved.get("kind") != "Pod" or not obj.get("reason"):
        return None
    reason = _guide_reason(str(obj["reason"]), str(obj.get("message", "")))
    type_ = "Alarm" if reason in ALARM_REASONS or obj.get("type") == "Warning" else "Normal"
    pod = str(involved.get("name", ""))
    who = dataclasses.replace(identity, pod=pod)
    message = str(obj.get("message") or reason)
    when_ms = _time_ms(obj)
    return Event(
        POD, type_, reason, message, who, when_ms, source="kubernetes", event_id=_event_id(obj, when_ms)
    )


def _event_id(obj: dict[str, Any], when_ms: int) -> str:
    """The occurrence's identity, the same however often it is seen: the Kubernetes object (its uid)
    and how many times it had happened then (``count`` as Kubernetes folds repeats, and the last
    time). A re-list after a restart or a 410 Gone sees the same object again and gives the same id,
    so the store keeps it once; a repeat folded into the object (count + 1) is a new occurrence."""
    meta = obj.get("metadata") or {}
    who = meta.get("uid") or f"{meta.get('namespace', '')}/{meta.get('name', '')}"
    count = obj.get("count") or (obj.get("series") or {}).get("count") or 1
    key = f"{who}\x00{count}\x00{when_ms}".encode()
    return "k8s-" + hashlib.blake2b(key, digest_size=16).hexdigest()


class KubernetesEventWatcher:
    """Watch events of one pod (``involvedObject.name``) in a namespace; hand them to ``sink``."""

    def __init__(
        self,
        namespace: str,
        pod: str,
        identity: EventObject,
        sink: Callable[[list[Event]], Awaitable[None]],
        api: Any = None,
        retry_s: float = 5.0,
    ) -> None:
        self.namespace = namespace
        self.pod = pod
        self.identity = identity
        self.sink = sink
        self._api = api
        self._retry_s = retry_s
        self._stop = threading.Event()
        self.resource_version: str | None = None

    def _core_api(self) -> Any:
        if self._api is None:
            from kubernetes import client, config  # the sidecar needs it only when this watch is on

            config.load_incluster_config()
            self._api = client.CoreV1Api()
        return self._api

    def _list(self, api: Any) -> list[dict[str, Any]]:
        listing = api.list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={self.pod}", _preload_content=False
        )
        body = json.loads(listing.data)
        self.resource_version = body.get("metadata", {}).get("resourceVersion")
        return list(body.get("items") or [])

    def run_blocking(self, emit: Callable[[list[Event]], None]) -> None:
        """The watch loop (in a thread) until ``stop()``; ``emit`` receives mapped events."""
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        api = self._core_api()
        while not self._stop.is_set():
            try:
                if self.resource_version is None:
                    self._emit(self._list(api), emit)
                stream = watch.Watch().stream(
                    api.list_namespaced_event,
                    self.namespace,
                    field_selector=f"involvedObject.name={self.pod}",
                    resource_version=self.resource_version,
                    timeout_seconds=60,
                )
                for change in stream:
                    if self._stop.is_set():
                        return
                    raw = change.get("raw_object") or {}
                    version = (raw.get("metadata") or {}).get("resourceVersion")
                    if version:
                        self.resource_version = version
                    if change.get("type") in ("ADDED", "MODIFIED"):
                        self._emit([raw], emit)
            except ApiException as err:
                if err.status == 410:  # Gone: our version is too old; list again
                    self.resource_version = None
                    continue
                logger.warning("kubernetes event watch failed ({}); retrying", err.status)
                self._stop.wait(self._retry_s)
            except Exception as err:  # loop boundary: reconnect from the last version seen
                logger.warning("kubernetes event watch dropped: {}; resuming", err)
                self._stop.wait(self._retry_s)

    def _emit(self, objects: list[dict[str, Any]], emit: Callable[[list[Event]], None]) -> None:
        events = [e for e in (to_event(o, self.identity) for o in objects) if e is not None]
        if events:
            emit(events)

    async def run(self) -> None:
        """Watch until ``stop()``. The blocking client runs in a daemon thread, so a watch parked in
        a long poll never holds up the process's exit."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def emit(events: list[Event]) -> None:
            asyncio.run_coroutine_threadsafe(self.sink(events), loop).result()

        def target() -> None:
            try:
                self.run_blocking(emit)
            finally:
                loop.call_soon_threadsafe(lambda: done.done() or done.set_result(None))

        threading.Thread(target=target, name="k8s-event-watch", daemon=True).start()
        try:
            await done
        finally:
            self._stop.set()

    def stop(self) -> None:
        self._stop.set()
