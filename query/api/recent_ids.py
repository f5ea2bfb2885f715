"""The ids of the last items a receiver stored, so that a resent one is not handed on a second time.

The store already reads each id once (``store/events.py``), whatever arrives; this spares the rest of
an event's path — the live stream (SSE) and the ``infersight_events_total`` counter — a repeat when
a sidecar resends a batch whose answer it lost. Bounded (oldest forgotten first) and per process:
a resend after the server restarted is still folded by the store. Keys hold the project, so no caller
can make another project's event look like a repeat.
"""

from __future__ import annotations

import threading
from collections import OrderedDict


class RecentIds:
    """``recent.fresh(keys)`` → the keys not seen; ``recent.remember(keys)`` once they are stored."""

    def __init__(self, max_ids: int = 100_000) -> None:
        self.max_ids = max_ids
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def seen(self, key: tuple[str, str]) -> bool:
        with self._lock:
            return key in self._seen

    def remember(self, keys: list[tuple[str, str]]) -> None:
        with self._lock:
            for key in keys:
                self._seen[key] = None
                self._seen.move_to_end(key)
            while len(self._seen) > self.max_ids:
                self._seen.popitem(last=False)
