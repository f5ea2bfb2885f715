"""Collector batches to ``infersight server`` over HTTP, for sidecars in other processes.

Each kind goes through a disk buffer of its own before it gets here (``infersight/exporting.py``),
so a failed POST raises and the buffer keeps the batch; a resent batch carries the same identities
(sketch ``id``, event ``id``), which the server's store keeps once.

A failure is raised in words an operator can act on, once per batch; the buffer decides how often
it is logged (``collector/outage.py``): an unreachable server is ``RetryableError("POST <url>:
ConnectError: …")``; a refusal is the HTTP status with the server's own error text.
"""

from __future__ import annotations

from typing import Any

import httpx

from collector.proxy.exemplars import Exemplar, exemplars_to_wire
from collector.window import SketchRow, rows_to_wire
from exporters.errors import RetryableError
from exporters.records import event_to_wire
from model.events import Event
from model.metadata import MetadataRecord
from model.series import Sample
from model.wire import encode_batch


class HttpExporter:
    """POSTs batches to ``<ship_to>/api/v1/ingest``; a failed POST raises so the caller keeps the batch.

    With ``api_key`` every request carries it as a bearer token (the server's auth on)."""

    def __init__(self, ship_to: str, timeout_s: float = 10.0, api_key: str = "") -> None:
        self._api = ship_to.rstrip("/") + "/api/v1"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(timeout=timeout_s, headers=headers)

    async def _post(self, path: str, body: Any) -> None:
        url = f"{self._api}/{path}"
        try:
            response = await self._client.post(url, json=body)
        except httpx.TransportError as err:
            raise RetryableError(f"POST {url}: {type(err).__name__}: {err or 'no answer'}") from err
        if response.is_error:
            detail = " ".join(response.text[:300].split())
            raise httpx.HTTPStatusError(
                f"POST {url}: HTTP {response.status_code}: {detail}",
                request=response.request,
                response=response,
            )

    async def send(self, batch: list[Sample]) -> None:
        await self._post("ingest", encode_batch(batch))

    async def send_events(self, events: list[Event]) -> None:
        """POST events (e.g. the pod's Kubernetes events) to ``<ship_to>/api/v1/events``."""
        await self._post("events", {"events": [event_to_wire(e) for e in events]})

    async def send_sketches(self, rows: list[SketchRow]) -> None:
        """POST closed quantile-sketch windows to ``<ship_to>/api/v1/sketches``."""
        await self._post("sketches", rows_to_wire(rows))

    async def send_exemplars(self, exemplars: list[Exemplar]) -> None:
        """POST the proxy's exemplars to ``<ship_to>/api/v1/ingest/exemplars`` (best-effort: no buffer)."""
        await self._post("ingest/exemplars", exemplars_to_wire(exemplars))

    async def send_metadata(self, records: list[MetadataRecord]) -> None:
        """POST the targets' TYPE/HELP/UNIT to ``<ship_to>/api/v1/ingest/metadata``."""
        await self._post("ingest/metadata", {"metadata": [r.to_wire() for r in records]})

    async def fetch_slos(self) -> list[Any]:
        """The SLO definitions the server holds for this key's project (``GET /api/v1/slos``)."""
        url = f"{self._api}/slos"
        try:
            response = await self._client.get(url)
        except httpx.TransportError as err:
            raise RetryableError(f"GET {url}: {type(err).__name__}: {err or 'no answer'}") from err
        if response.is_error:
            raise RetryableError(
                f"GET {url}: HTTP {response.status_code}: {' '.join(response.text[:200].split())}"
            )
        data = response.json().get("data")
        if not isinstance(data, list):
            raise RetryableError(f"GET {url}: no list of SLOs in the answer")
        return data

    async def aclose(self) -> None:
        await self._client.aclose()
