"""Collector batches to ``infersight server`` over HTTP, for sidecars in other processes."""

from __future__ import annotations

import httpx

from model.series import Sample
from model.wire import encode_batch


class HttpExporter:
    """POSTs batches to ``<ship_to>/api/v1/ingest``; a failed POST raises so the caller keeps the batch."""

    def __init__(self, ship_to: str, timeout_s: float = 10.0) -> None:
        self._url = ship_to.rstrip("/") + "/api/v1/ingest"
        self._client = httpx.AsyncClient(timeout=timeout_s)

    async def send(self, batch: list[Sample]) -> None:
        response = await self._client.post(self._url, json=encode_batch(batch))
        response.raise_for_status()

    async def aclose(self) -> None:
        await self._client.aclose()
