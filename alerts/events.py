"""Firing and resolved alerts as service events (SEED-SPEC §3), beside the guide's own events.

A critical alert that starts firing is an ``Exception`` event, any other a ``Warning``; its
resolution is ``Normal``. The reason is the alert's name, the message its summary, so the Events
tab shows what woke the operator and when it ended.
"""

from __future__ import annotations

from alerts.state import Alert, AlertState
from model.events import SERVICE, Event, EventObject


def to_events(alerts: list[Alert]) -> list[Event]:
    """Events for alert transitions; alerts naming neither a service nor a pod are left out."""
    events = []
    for alert in alerts:
        labels = alert.labels
        obj = EventObject(
            project_id=labels.get("project_id", ""),
            service_id=labels.get("service_id", ""),
            service_name=labels.get("service_name", ""),
            group_id=labels.get("group_id", ""),
            instance_name=labels.get("instance_name", ""),
            pod=labels.get("source", ""),
        )
        if not (obj.service_id or obj.pod):
            continue
        summary = alert.annotations.get("summary") or labels.get("alertname", "alert")
        if alert.state is AlertState.FIRING:
            kind = "Exception" if labels.get("severity") == "critical" else "Warning"
            message, time_ms = f"Alert firing: {summary}", alert.fired_at_ms
        else:
            kind, message, time_ms = "Normal", f"Alert resolved: {summary}", alert.resolved_at_ms
        events.append(Event(SERVICE, kind, labels.get("alertname", "Alert"), message, obj, time_ms))
    return events
