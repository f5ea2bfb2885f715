"""Which metadata a sidecar ships: a family's only when it is new or changed, and all of it now and then.

Targets repeat the same ``# HELP``/``# TYPE`` lines in every scrape; shipping them every 10 s
would cost more than the samples of many families. ``MetadataTracker`` remembers what was shipped
and hands back only what changed since, plus everything every ``resend_s`` (so a server whose
store lost the table, or a new server, learns it all within that time; and the store's copy is
refreshed, which retention relies on to keep a live target's metadata).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from model.metadata import FamilyMetadata, MetadataRecord

MetadataSink = Callable[[list[MetadataRecord]], Awaitable[None]]
RESEND_S = 600.0
# Families of one target shipped per scrape at most; a target exposing more is cut here.
MAX_FAMILIES = 10_000


class MetadataTracker:
    """``due = tracker.due(families)``; ship ``due.families``; then ``tracker.shipped(due)``."""

    def __init__(self, resend_s: float = RESEND_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.resend_s = resend_s
        self._clock = clock
        self._sent: dict[str, FamilyMetadata] = {}
        self._full_at: float | None = None

    def due(self, families: list[FamilyMetadata]) -> tuple[list[FamilyMetadata], bool]:
        """What to ship now, and whether it is the full set (a periodic resend)."""
        families = families[:MAX_FAMILIES]
        if self._full_at is None or self._clock() - self._full_at >= self.resend_s:
            return families, True
        return [f for f in families if self._sent.get(f.metric) != f], False

    def shipped(self, families: list[FamilyMetadata], full: bool) -> None:
        """Remember what reached the sink (after it returned without raising)."""
        if full or len(self._sent) + len(families) > 2 * MAX_FAMILIES:
            # a full set replaces what was remembered: families a target dropped are forgotten
            self._sent = {f.metric: f for f in families}
            self._full_at = self._clock() if full else None
            return
        self._sent.update((f.metric, f) for f in families)
