"""Collector batches to ``infersight server`` over HTTP, for sidecars in other processes.

Each kind goes through a disk buffer of its own before it gets here (``infersight/exporting.py``),
so a failed POST raises and the buffer keeps the batch; a resent batch carries the same identities
(sketch ``id``, event ``id``), which the server's store keeps once.
"""

from __future__ import annotations

import httpx

from collector.window import SketchRow, rows_to_wire
from exporters.records import event_to_wire
from model.events import Event
from model.series import Sample
from model.wire import encode_batch


class HttpExporter:
    """POSTs batches to ``<ship_to>/api/v1/ingest``; a failed POST raises so the caller keeps the batch."""

    def __init__(self, ship_to: str, timeout_s: float = 10.0) -> None:
        self._api = ship_to.rstrip("/") + "/api/v1"
        self._client = httpx.AsyncClient(timeout=timeout_s)

    async def send(self, batch: list[Sample]) -> None:
        response = await self._client.post(f"{self._api}/ingest", json=encode_batch(batch))
        response.raise_for_status()

    async def send_events(self, events: list[Event]) -> None:
        """POST events (e.g. the pod's Kubernetes events) to ``<ship_to>/api/v1/events``."""
        body = {"events": [event_to_wire(e) for e in events]}
        response = await self._client.post(f"{self._api}/events", json=body)
        response.raise_for_status()

    async def send_sketches(self, rows: list[SketchRow]) -> None:
        """POST closed quantile-sketch windows to ``<ship_to>/api/v1/sketches``."""
        response = await self._client.post(f"{self._api}/sketches", json=rows_to_wire(rows))
        response.raise_for_status()

    async def aclose(self) -> None:
        await self._client.aclose()
