"""Where every event goes: the store, live subscribers (SSE), and counters as series.

Events are also series (``infersight_events_total`` by kind, type, reason and object), so alert
rules can fire on them like on any metric.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence

from model.events import Event
from model.labels import to_labels
from model.series import Sample
from store.events import EventLog
from store.writes import SampleWriter

EVENTS_TOTAL = "infersight_events_total"


class EventHub:
    """``hub.publish(events)`` stores them, counts them and wakes every ``subscribe()`` queue."""

    def __init__(
        self,
        log: EventLog,
        writer: SampleWriter | None = None,
        queue_size: int = 1000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self.log = log
        self._writer = writer
        self._subscribers: dict[asyncio.Queue[Event], asyncio.AbstractEventLoop] = {}
        self._queue_size = queue_size
        self._counts: Counter[tuple[tuple[str, str], ...]] = Counter()

    def publish(self, events: Sequence[Event]) -> None:
        """Store and count events (blocking: call from a worker thread on an event loop)."""
        if not events:
            return
        self.log.append(events)
        if self._writer is not None:
            self._writer.write(self._count(events))
        for queue, loop in list(self._subscribers.items()):
            # publish() runs in a worker thread; queues belong to the event loop that subscribed.
            loop.call_soon_threadsafe(_offer, queue, list(events))

    def _count(self, events: Sequence[Event]) -> list[Sample]:
        """Counter samples stamped when counted (event times may be older or out of order)."""
        touched = set()
        for event in events:
            labels = to_labels(
                {
                    "__name__": EVENTS_TOTAL,
                    "kind": event.kind,
                    "type": event.type,
                    "reason": event.reason,
                    "project_id": event.obj.project_id,
                    "service_id": event.obj.service_id,
                    "group_id": event.obj.group_id,
                    "source": event.obj.pod,
                }
            )
            self._counts[labels] += 1
            touched.add(labels)
        now_ms = int(self._clock() * 1000)
        return [Sample(labels, now_ms, float(self._counts[labels])) for labels in touched]

    def subscribe(self) -> asyncio.Queue[Event]:
        """A queue of new events; call from the event loop that will read it."""
        queue: asyncio.Queue[Event] = asyncio.Queue(self._queue_size)
        self._subscribers[queue] = asyncio.get_running_loop()
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event]) -> None:
        self._subscribers.pop(queue, None)


def _offer(queue: asyncio.Queue[Event], events: list[Event]) -> None:
    for event in events:
        if queue.full():
            queue.get_nowait()  # a slow subscriber loses its oldest, never blocks the hub
        queue.put_nowait(event)
