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
from urllib.parse import quote

import httpx
from loguru import logger

from alerts.state import Alert, AlertState


def _rfc3339(ts_ms: int) -> str:
    return (
        datetime.fromtimestamp(ts_ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def to_payload(
    alerts: list[Alert], external_url: str = "", exprs: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """The JSON body of ``POST /api/v2/alerts`` for ``alerts``."""
    out = []
    for alert in alerts:
        ends = alert.resolved_at_ms if alert.state is AlertState.INACTIVE else alert.valid_until_ms
        expr = (exprs or {}).get(alert.labels.get("alertname", ""), "")
        item: dict[str, Any] = {
            "labels": alert.labels,
            "annotations": alert.annotations,
            "startsAt": _rfc3339(alert.fired_at_ms or alert.active_at_ms),
            "generatorURL": f"{external_url}/graph?g0.expr={quote(expr)}" if external_url else "",
        }
        if ends:
            item["endsAt"] = _rfc3339(ends)
        out.append(item)
    return out


class AlertmanagerClient:
    """Sends to every Alertmanager in ``urls`` (as Prometheus does for an HA pair)."""

    def __init__(
        self,
        urls: list[str],
        timeout_s: float = 10.0,
        retries: int = 3,
        backoff_s: float = 0.5,
        external_url: str = "",
    ) -> None:
        self.urls = [u.rstrip("/") for u in urls]
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.external_url = external_url
        self.sent_alerts = 0
        self.failed_alerts = 0

    async def _post(self, client: httpx.AsyncClient, url: str, body: list[dict[str, Any]]) -> bool:
        for attempt in range(self.retries + 1):
            try:
                response = await client.post(f"{url}/api/v2/alerts", json=body)
                if response.status_code < 300:
                    return True
                if (
                    400 <= response.status_code < 500
                ):  # Alertmanager rejected the payload: retrying won't help
                    logger.error("alertmanager {} rejected {} alerts: {}", url, len(body), response.text)
                    return False
                error = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                error = repr(exc)
            if attempt < self.retries:
                await asyncio.sleep(self.backoff_s * 2**attempt)
        logger.error(
            "alertmanager {}: {} alerts not delivered after {} tries: {}",
            url,
            len(body),
            self.retries + 1,
            error,
        )
        return False

    async def send(self, alerts: list[Alert]) -> bool:
        """Deliver ``alerts`` to every Alertmanager; True when at least one took them."""
        if not alerts:
            return True
        body = to_payload(alerts, self.external_url)
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            results = await asyncio.gather(*(self._post(client, url, body) for url in self.urls))
        if any(results):
            self.sent_alerts += len(alerts)
            return True
        self.failed_alerts += len(alerts)
        return False
