"""What an exporter's final hop offers: send one batch, raising if it did not arrive."""

from __future__ import annotations

from typing import Protocol

from model.series import Sample


class Sender(Protocol):
    async def send(self, batch: list[Sample]) -> None: ...
