"""Sends alerts straight to a webhook in Alertmanager's webhook payload format (version 4).

For users without an Alertmanager: the receiver sees the same JSON an Alertmanager webhook
receiver would post, one message per group (``project_id``, ``alertname`` and ``service_id``: one
message never mixes two projects' alerts), with ``status`` ``firing`` while any alert of the group
fires and ``resolved`` when all have resolved.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any

import httpx

from alerts.alertmanager import rfc3339
from alerts.delivery import RetryPolicy, post_json
from alerts.state import Alert, AlertState

GROUP_BY = ("project_id", "alertname", "service_id")


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    first = maps[0]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


def _alert_json(alert: Alert, external_url: str) -> dict[str, Any]:
    resolved = alert.state is AlertState.INACTIVE
    fingerprint = hashlib.sha256(repr(alert.fingerprint).encode()).hexdigest()[:16]
    return {
        "status": "resolved" if resolved else "firing",
        "labels": alert.labels,
        "annotations": alert.annotations,
        "startsAt": rfc3339(alert.fired_at_ms or alert.active_at_ms),
        "endsAt": rfc3339(alert.resolved_at_ms) if resolved else "0001-01-01T00:00:00Z",
        "generatorURL": f"{external_url}/alerts" if external_url else "",
        "fingerprint": fingerprint,
    }


def to_messages(
    alerts: list[Alert], receiver: str = "webhook", external_url: str = ""
) -> list[dict[str, Any]]:
    """Alertmanager webhook bodies for ``alerts``, one per group."""
    groups: dict[tuple[str, ...], list[Alert]] = defaultdict(list)
    for alert in alerts:
        groups[tuple(alert.labels.get(k, "") for k in GROUP_BY)].append(alert)
    messages = []
    for key, members in sorted(groups.items()):
        group_labels = {k: v for k, v in zip(GROUP_BY, key, strict=True) if v}
        items = [_alert_json(a, external_url) for a in members]
        messages.append(
            {
                "version": "4",
                "receiver": receiver,
                "status": "firing" if any(i["status"] == "firing" for i in items) else "resolved",
                "alerts": items,
                "groupLabels": group_labels,
                "commonLabels": _common([a.labels for a in members]),
                "commonAnnotations": _common([a.annotations for a in members]),
                "externalURL": external_url,
                "groupKey": "{}:{" + ", ".join(f'{k}="{v}"' for k, v in group_labels.items()) + "}",
                "truncatedAlerts": 0,
            }
        )
    return messages


class WebhookClient:
    """Posts each group's message to every URL; counts what could not be delivered."""

    def __init__(self, urls: list[str], policy: RetryPolicy | None = None, external_url: str = "") -> None:
        self.urls = urls
        self.policy = policy or RetryPolicy()
        self.external_url = external_url
        self.sent_alerts = 0
        self.failed_alerts = 0

    async def send(self, alerts: list[Alert]) -> bool:
        ok = True
        async with httpx.AsyncClient(timeout=self.policy.timeout_s) as client:
            for message in to_messages(alerts, external_url=self.external_url):
                delivered = [await post_json(client, url, message, self.policy) for url in self.urls]
                count = len(message["alerts"])
                if any(delivered):
                    self.sent_alerts += count
                else:
                    self.failed_alerts += count
                    ok = False
        return ok
