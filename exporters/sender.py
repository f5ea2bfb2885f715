"""What an exporter's final hop offers: send one batch, raising if it did not arrive."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from model.series import Sample

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)


class Sender(Protocol[T_contra]):
    async def send(self, batch: list[T_contra]) -> None: ...


SampleSender = Sender[Sample]


@dataclass(frozen=True)
class SendWith(Generic[T]):
    """A ``Sender`` from a coroutine function, e.g. ``SendWith(http.send_sketches)``."""

    send_batch: Callable[[list[T]], Awaitable[None]]

    async def send(self, batch: list[T]) -> None:
        await self.send_batch(batch)
