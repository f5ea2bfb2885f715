"""Delivers alerts to Alertmanager's v2 API (``POST /api/v2/alerts``), with retries and counts.

The payload is what Prometheus sends (notifier.go): labels, annotations, ``startsAt`` (when it
fired), ``endsAt`` (resolution time, or a validity horizon while firing, so Alertmanager resolves
it by itself if infersight goes away) and ``generatorURL``. A delivery that still fails after the
retries is logged and counted in ``failed_alerts``, never dropped silently.

>>> client = AlertmanagerClient(["http://127.0.0.1:9093"])
>>> await client.send(alerts)
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx

from alerts.delivery import RetryPolicy, post_json
from alerts.state import Alert, AlertState


def rfc3339(ts_ms: int) -> str:
    return (
        datetime.fromtimestamp(ts_ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def to_payload(alerts: list[Alert], external_url: str = "") -> list[dict[str, Any]]:
    """The JSON body of ``POST /api/v2/alerts`` for ``alerts``."""
    out = []
    for alert in alerts:
        ends = alert.resolved_at_ms if alert.state is AlertState.INACTIVE else alert.valid_until_ms
        item: dict[str, Any] = {
            "labels": alert.labels,
            "annotations": alert.annotations,
            "startsAt": rfc3339(alert.fired_at_ms or alert.active_at_ms),
            "generatorURL": f"{external_url}/alerts" if external_url else "",
        }
        if ends:
            item["endsAt"] = rfc3339(ends)
        out.append(item)
    return out


class AlertmanagerClient:
    """Sends to every Alertmanager in ``urls`` (as Prometheus does for an HA pair)."""

    def __init__(self, urls: list[str], policy: RetryPolicy | None = None, external_url: str = "") -> None:
        self.urls = [u.rstrip("/") for u in urls]
        self.policy = policy or RetryPolicy()
        self.external_url = external_url
        self.sent_alerts = 0
        self.failed_alerts = 0

    async def send(self, alerts: list[Alert]) -> bool:
        """Deliver ``alerts`` to every Alertmanager; True when at least one took them."""
        if not alerts:
            return True
        body = to_payload(alerts, self.external_url)
        async with httpx.AsyncClient(timeout=self.policy.timeout_s) as client:
            results = await asyncio.gather(
                *(post_json(client, f"{url}/api/v2/alerts", body, self.policy) for url in self.urls)
            )
        if any(results):
            self.sent_alerts += len(alerts)
            return True
        self.failed_alerts += len(alerts)
        return False
