"""Collector batches into the store, in-process (``infersight run`` / ``demo`` / ``server``)."""

from __future__ import annotations

import asyncio

from model.series import Sample
from store.writes import SampleWriter


class StoreExporter:
    """A collector ``Consumer`` writing each batch to the store from a worker thread.

    The store call blocks (chDB runs in-process), so it runs off the event loop that scrapes.
    """

    def __init__(self, writer: SampleWriter) -> None:
        self._writer = writer

    async def send(self, batch: list[Sample]) -> None:
        await asyncio.to_thread(self._writer.write, batch)
