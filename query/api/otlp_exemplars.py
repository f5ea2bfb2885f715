"""The trace and span ids behind received values, kept in a small bounded ring in memory.

OTLP points carry exemplars, and every request span the trace receiver turns into observations has
its own ids: they link a slow bucket or a sketch window to the request that landed in it. The store
has no exemplar table, so the newest ``max_items`` are kept here per process (oldest forgotten
first, lost on restart), each with its project so that a read can be confined to one. Nothing is
served from it by this module; a query route reads ``recent``.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

from query.api.otlp_metrics import Exemplar

DEFAULT_MAX_ITEMS = 10_000


class ExemplarRing:
    """``ring.add(exemplars)``; ``ring.recent(project_id, metric, limit)``, newest first."""

    def __init__(self, max_items: int = DEFAULT_MAX_ITEMS) -> None:
        self._items: deque[Exemplar] = deque(maxlen=max_items)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def add(self, exemplars: Iterable[Exemplar]) -> None:
        with self._lock:
            self._items.extend(exemplars)

    def recent(
        self, project_id: str | None = None, metric: str | None = None, limit: int = 100
    ) -> list[Exemplar]:
        """The newest ``limit`` exemplars of ``metric`` (any: None), of ``project_id`` only unless None."""
        with self._lock:
            items = list(self._items)
        out = []
        for item in reversed(items):
            if (project_id is None or item.project_id == project_id) and (
                metric is None or item.metric == metric
            ):
                out.append(item)
                if len(out) >= limit:
                    break
        return out
