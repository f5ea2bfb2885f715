"""Service and pod events, as the guide's Events tab shows them (SEED-SPEC §3).

Each occurrence is one ``Event``; identical events (same kind, type, reason, message and object)
are folded when listed, which gives the guide's "Occurrences" column with first and last time.
"""

from __future__ import annotations

from dataclasses import dataclass

from model.times import MAX_TIME_MS, MIN_TIME_MS

SERVICE = "service"
POD = "pod"
KINDS = (SERVICE, POD)
# Service events: Normal / Exception / Warning; pod events: Normal / Alarm (the guide's words).
TYPES = {SERVICE: ("Normal", "Exception", "Warning"), POD: ("Normal", "Alarm")}
SOURCES = ("infersight", "kubernetes", "platform")
MAX_EVENT_ID = 64


@dataclass(frozen=True, slots=True)
class EventObject:
    """What an event concerns: a service, or a deployment / instance / unit / pod below it."""

    project_id: str = ""
    service_id: str = ""
    service_name: str = ""
    group_id: str = ""
    instance_name: str = ""
    unit: str = ""
    pod: str = ""


@dataclass(frozen=True, slots=True)
class Event:
    """One occurrence. ``time_ms`` is when it happened (epoch ms)."""

    kind: str
    type: str
    reason: str
    message: str
    obj: EventObject
    time_ms: int
    source: str = "infersight"
    # Identity of the occurrence ("" = none yet: the store gives it one). A resent event keeps its
    # id, and listing counts each id once, so a retry or a replay never adds an occurrence.
    event_id: str = ""

    def validate(self) -> None:
        """Raise ValueError naming the field that is wrong."""
        if self.kind not in KINDS:
            raise ValueError(f"kind: must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.type not in TYPES[self.kind]:
            raise ValueError(
                f"type: a {self.kind} event is one of {', '.join(TYPES[self.kind])}, got {self.type!r}"
            )
        if not self.reason:
            raise ValueError("reason: required")
        if not self.message:
            raise ValueError("message: required")
        if self.source not in SOURCES:
            raise ValueError(f"source: must be one of {', '.join(SOURCES)}, got {self.source!r}")
        if not MIN_TIME_MS <= self.time_ms <= MAX_TIME_MS:
            raise ValueError("time: epoch milliseconds, from 1970 up to the year 2105")
        if not (self.obj.service_id or self.obj.pod):
            raise ValueError("object: needs at least service_id or pod")
        if len(self.event_id) > MAX_EVENT_ID or not self.event_id.isprintable():
            raise ValueError(f"id: at most {MAX_EVENT_ID} printable characters")
