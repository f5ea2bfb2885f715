"""Answers of series look-ups (which series match, their label names and values), kept while the
store's series are unchanged.

Why: a dashboard refresh asks the same selectors every time, and finding their series (a GROUP BY
over the ``series`` table with the matchers' regexes) was a third of a short query's store time.
An answer is keyed by everything its SQL depends on (the matchers, the caller's project matcher
among them, and the days of the range), so no caller sees another scope's answer; it is stored
under the backend's ``series_changes`` as read *before* the SQL ran, and used only while that
count is unchanged, so a series written during or after the look-up makes the next one read
again. A backend without the count (a ClickHouse server that other processes write to) is never
cached.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sized
from typing import Any, TypeVar

T = TypeVar("T", bound=Sized)

MAX_ENTRIES = 1024
# Entries (series, names, values) of all answers kept together, so memory stays bounded (a series'
# label set is a few hundred bytes); an answer with more than a tenth of them is not kept.
MAX_TOTAL_ENTRIES = 100_000


class SeriesLookups:
    """``cached(key, compute)``: ``compute()``'s answer, from memory while the store's series are the same."""

    def __init__(self, backend: Any, max_entries: int = MAX_ENTRIES) -> None:
        self._backend = backend
        self.enabled = isinstance(getattr(backend, "series_changes", None), int)
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[int, Any]] = OrderedDict()
        self._total = 0
        self.hits = 0
        self.misses = 0

    def cached(self, key: Hashable, compute: Callable[[], T]) -> T:
        if not self.enabled:
            return compute()
        stamp = self._backend.series_changes
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] == stamp:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry[1]
            self.misses += 1
        answer = compute()
        if len(answer) <= MAX_TOTAL_ENTRIES // 10:
            with self._lock:
                old = self._entries.pop(key, None)
                self._total += len(answer) - (len(old[1]) if old is not None else 0)
                self._entries[key] = (stamp, answer)
                while len(self._entries) > self._max_entries or self._total > MAX_TOTAL_ENTRIES:
                    self._total -= len(self._entries.popitem(last=False)[1][1])
        return answer
