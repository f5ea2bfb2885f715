"""Where a stage hands its batches: the ``Consumer`` protocol, and a list sink for tests.

A receiver gets its next hop when built and knows nothing after it (OTel's nextConsumer,
VictoriaMetrics' pushData); exporters implement ``Consumer``, the collector never imports them.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from model.series import Sample


@runtime_checkable
class Consumer(Protocol):
    """Takes one batch of samples; may raise, the caller logs and carries on."""

    async def consume(self, batch: list[Sample]) -> None: ...


class ListConsumer:
    """Keeps every batch it is given, in order (cf. OTel's ``consumertest.MetricsSink``).

    >>> sink = ListConsumer()
    >>> sink.samples
    []
    """

    def __init__(self) -> None:
        self.batches: list[list[Sample]] = []

    async def consume(self, batch: list[Sample]) -> None:
        self.batches.append(list(batch))

    @property
    def samples(self) -> list[Sample]:
        return [s for batch in self.batches for s in batch]
