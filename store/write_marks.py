"""The oldest point time written since a given moment, so a kept answer knows which of its steps a
later write can have changed.

Why: a PromQL step at time ``t`` reads only points at or before ``t``. A range answer computed
earlier stays right for every step before the oldest point written since, whether that write was
the next scrape (newer than every step: nothing changes) or a late point an hour back (the steps
from then on change). Waiting a fixed time for points to settle, as VictoriaMetrics' result cache
does (5 minutes), recomputes those minutes on every refresh and is still wrong for a point later
than that; knowing what was written is both cheaper and exact. One process owns a chDB folder,
so every write passes its backend, which notes each one here once its points can be read.

``count`` is read before an answer is computed; ``oldest_since(count)`` later is the oldest point
time among the writes noted after that read (None: none). The marks are bounded: past
``max_marks`` the two oldest are merged, and a merged mark answers with the older of its times,
which only makes a kept answer recompute more steps than it needed to, never fewer.
"""

from __future__ import annotations

import bisect
import threading

# Older than any point: what a write whose times are unknown (it failed partway) is noted as.
EVERYTHING_MS = -(2**63)
MAX_MARKS = 1024


class WriteMarks:
    """Noted writes as marks ``(count, oldest time)``, both increasing along the list: a mark is
    the oldest time written at or after its count (a later write with an older time replaces the
    marks it undercuts), so ``oldest_since`` is one bisection."""

    def __init__(self, max_marks: int = MAX_MARKS) -> None:
        self._lock = threading.Lock()
        self._max_marks = max(max_marks, 2)
        self._count = 0
        self._counts: list[int] = []
        self._oldest: list[int] = []

    @property
    def count(self) -> int:
        """How many writes were noted so far: what an answer computed from now on has seen."""
        return self._count

    def note(self, oldest_ms: int) -> None:
        """A write is readable now, its oldest point at ``oldest_ms``."""
        with self._lock:
            self._count += 1
            while self._oldest and self._oldest[-1] >= oldest_ms:
                self._oldest.pop()
                self._counts.pop()
            self._counts.append(self._count)
            self._oldest.append(oldest_ms)
            if len(self._counts) > self._max_marks:  # merge the two oldest: their older time, later count
                del self._counts[0]
                del self._oldest[1]

    def oldest_since(self, count: int) -> int | None:
        """The oldest point time among writes noted after ``count`` was read; None if none was."""
        with self._lock:
            at = bisect.bisect_right(self._counts, count)
            return self._oldest[at] if at < len(self._oldest) else None
