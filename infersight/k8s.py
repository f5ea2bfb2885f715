"""Starts the Kubernetes event watch for this pod when configured, with the pod's identity."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from collector.k8s_events import KubernetesEventWatcher
from infersight.config import Config
from model.events import Event, EventObject


def pod_identity(config: Config) -> EventObject:
    """The identity of the pod this process watches: its first target's labels."""
    target = config.targets[0] if config.targets else None
    if target is None:
        return EventObject(pod=config.kubernetes.pod)
    return EventObject(
        project_id=target.project_id,
        service_id=target.service_id,
        service_name=target.service_name,
        group_id=target.group_id,
        instance_name=target.instance_name,
        unit=target.role,
        pod=config.kubernetes.pod or target.source,
    )


def start_watch(
    config: Config, sink: Callable[[list[Event]], Awaitable[None]]
) -> tuple[KubernetesEventWatcher, asyncio.Task[None]] | None:
    """The watcher and its task, or None when the watch is not enabled."""
    if not config.kubernetes.enabled:
        return None
    watcher = KubernetesEventWatcher(
        config.kubernetes.namespace, config.kubernetes.pod, pod_identity(config), sink
    )
    return watcher, asyncio.create_task(watcher.run())
