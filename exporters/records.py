"""What each kind of batch looks like in a disk buffer's records, and where its identity comes from.

A sidecar ships three kinds of batch, each through a disk buffer of its own (``BufferedExporter``
with one of these codecs): samples, closed sketch windows and events. The store must see each item
once however often it is sent (an outage, an answer lost after the server stored the batch, a
restart that replays the buffer), so every item carries an identity from the moment it is written
to disk, and a replay resends that same identity:

- samples are their own identity: (series, timestamp); the samples table keeps one point each;
- a sketch row gets a random 64-bit ``row_id`` when it is buffered; reads keep one row per id;
- an event gets a random ``event_id`` when it is buffered (a Kubernetes event brings its own,
  made from the Kubernetes object); listing counts each id once;
- a metadata record is its own identity: (project, target, metric) with its time; the store keeps
  the newest per target and metric, so a resend changes nothing.

Sketch rows and events are JSON in a tagged payload (``segments.tagged``); they are small and few
next to samples.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any, Protocol, TypeVar

from collector.window import SketchRow, rows_from_wire, rows_to_wire, with_row_ids
from exporters.segments import (
    COLUMNS_KIND,
    decode_columns,
    encode_columns,
    frame,
    payload_kind,
    tagged,
)
from exporters.segments import columns_of as _columns_of
from model.events import Event, EventObject
from model.metadata import MetadataRecord
from model.series import Sample

T = TypeVar("T")

SKETCH_ROWS_KIND = 2  # 1 is the server ingest log's remote-write body
EVENTS_KIND = 3
METADATA_KIND = 4


class RecordCodec(Protocol[T]):
    """Turns a batch into one framed record and a payload back into the batch."""

    kind: int
    unit: str  # what one item is, for log lines: "samples", "sketch rows", "events"

    def encode(self, batch: list[T]) -> bytes: ...

    def decode(self, payload: bytes | memoryview) -> list[T]: ...


class WrongKindError(ValueError):
    """A record of another kind than the buffer's (a folder shared by mistake)."""


def _data(payload: bytes | memoryview, kind: int) -> memoryview:
    found, data = payload_kind(bytes(payload))
    if found != kind:
        raise WrongKindError(f"record of kind {found}, expected {kind}")
    return data


@dataclasses.dataclass(frozen=True)
class SampleRecords:
    """Samples as columns (the untagged payload)."""

    kind: int = COLUMNS_KIND
    unit: str = "samples"

    def encode(self, batch: list[Sample]) -> bytes:
        return frame(encode_columns(_columns_of(batch)))

    def decode(self, payload: bytes | memoryview) -> list[Sample]:
        return decode_columns(_data(payload, COLUMNS_KIND)).samples()


@dataclasses.dataclass(frozen=True)
class SketchRowRecords:
    """Closed sketch windows, each given its ``row_id`` here if it has none."""

    kind: int = SKETCH_ROWS_KIND
    unit: str = "sketch rows"

    def encode(self, batch: list[SketchRow]) -> bytes:
        data = json.dumps(rows_to_wire(with_row_ids(batch)), separators=(",", ":")).encode()
        return frame(tagged(SKETCH_ROWS_KIND, len(batch), data))

    def decode(self, payload: bytes | memoryview) -> list[SketchRow]:
        return rows_from_wire(json.loads(bytes(_data(payload, SKETCH_ROWS_KIND))))


def new_event_id() -> str:
    return uuid.uuid4().hex


def with_event_ids(events: list[Event]) -> list[Event]:
    """``events``, each without an id given a new one (events with one keep it)."""
    return [e if e.event_id else dataclasses.replace(e, event_id=new_event_id()) for e in events]


def event_to_wire(event: Event) -> dict[str, Any]:
    """The ``POST /api/v1/events`` form of one event, its id as ``id``."""
    body: dict[str, Any] = {
        "kind": event.kind,
        "type": event.type,
        "reason": event.reason,
        "message": event.message,
        "object": dataclasses.asdict(event.obj),
        "time": event.time_ms,
        "source": event.source,
    }
    if event.event_id:
        body["id"] = event.event_id
    return body


def event_from_record(data: dict[str, Any]) -> Event:
    """Inverse of :func:`event_to_wire` for records this process wrote itself."""
    return Event(
        data["kind"],
        data["type"],
        data["reason"],
        data["message"],
        EventObject(**data["object"]),
        int(data["time"]),
        data["source"],
        data.get("id", ""),
    )


@dataclasses.dataclass(frozen=True)
class EventRecords:
    """Events, each given its ``event_id`` here if it has none."""

    kind: int = EVENTS_KIND
    unit: str = "events"

    def encode(self, batch: list[Event]) -> bytes:
        data = json.dumps([event_to_wire(e) for e in with_event_ids(batch)], separators=(",", ":"))
        return frame(tagged(EVENTS_KIND, len(batch), data.encode()))

    def decode(self, payload: bytes | memoryview) -> list[Event]:
        return [event_from_record(item) for item in json.loads(bytes(_data(payload, EVENTS_KIND)))]


@dataclasses.dataclass(frozen=True)
class MetadataRecords:
    """Metric metadata (TYPE/HELP/UNIT of a target's families), as JSON."""

    kind: int = METADATA_KIND
    unit: str = "metadata records"

    def encode(self, batch: list[MetadataRecord]) -> bytes:
        data = json.dumps([r.to_wire() for r in batch], separators=(",", ":"))
        return frame(tagged(METADATA_KIND, len(batch), data.encode()))

    def decode(self, payload: bytes | memoryview) -> list[MetadataRecord]:
        return [MetadataRecord.from_wire(item) for item in json.loads(bytes(_data(payload, METADATA_KIND)))]


SAMPLES = SampleRecords()
SKETCH_ROWS = SketchRowRecords()
EVENTS = EventRecords()
METADATA = MetadataRecords()
