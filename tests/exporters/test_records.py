"""Every kind a sidecar buffers keeps its identity on disk: sketch rows their row_id, events their
event_id, through a restart and a replay; a record of the wrong kind is skipped, not a blocked queue."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.k8s_events import to_event
from collector.window import SketchRow, WindowedSketches, rows_from_wire, rows_to_wire
from exporters.buffer import BufferedExporter
from exporters.records import EVENTS, SAMPLES, SKETCH_ROWS
from model.events import POD, Event, EventObject
from model.labels import to_labels
from model.series import Sample
from sketch import ExponentialHistogram, to_columns

WHO = EventObject(project_id="p", service_id="svc", pod="pod-0")


class Sink:
    def __init__(self) -> None:
        self.down = False
        self.received: list[list] = []

    async def send(self, batch: list) -> None:
        if self.down:
            raise ConnectionError("server unreachable")
        self.received.append(batch)

    @property
    def items(self) -> list:
        return [item for batch in self.received for item in batch]


def _rows(n: int = 3) -> list[SketchRow]:
    windows = WindowedSketches()
    for i in range(n):
        windows.observe("ttft", {"service_id": "svc", "source": f"pod-{i}"}, np.array([1.0, 2.0 + i]), 1000.0)
    return windows.drain_all()


def _events(n: int = 3) -> list[Event]:
    return [Event(POD, "Normal", "Started", f"started {i}", WHO, 1_000 + i) for i in range(n)]


def test_sketch_rows_get_ids_on_disk_and_keep_them_through_a_restart(tmp_path: Path) -> None:
    sink = Sink()
    sink.down = True

    async def first_life() -> None:
        exporter = BufferedExporter(sink, tmp_path, codec=SKETCH_ROWS, retry_interval_s=0.0)
        await exporter.consume(_rows())
        assert not await exporter.flush()  # the server is down: kept on disk
        exporter.queue.close()  # killed: no stop()

    asyncio.run(first_life())
    sink.down = False

    async def second_life() -> BufferedExporter:
        exporter = BufferedExporter(sink, tmp_path, codec=SKETCH_ROWS, retry_interval_s=0.0)
        assert exporter.pending_samples == 3
        assert await exporter.flush()
        return exporter

    exporter = asyncio.run(second_life())
    assert exporter.exported_samples == 3
    sent = sink.items
    assert all(row.row_id for row in sent)
    assert len({row.row_id for row in sent}) == 3
    assert [dataclasses.replace(row, row_id=0) for row in sent] == _rows()


def test_a_segment_resent_after_a_lost_answer_carries_the_same_ids(tmp_path: Path) -> None:
    """The store took the batch but the answer was lost: the buffer sends the same ids again."""
    attempts: list[list[Event]] = []

    class LostAnswer:
        async def send(self, batch: list[Event]) -> None:
            attempts.append(batch)
            if len(attempts) == 1:
                raise ConnectionError("connection dropped after the server stored the batch")

    exporter = BufferedExporter(LostAnswer(), tmp_path, codec=EVENTS, retry_interval_s=0.0)

    async def scenario() -> None:
        await exporter.consume(_events())
        assert not await exporter.flush()
        assert await exporter.flush()

    asyncio.run(scenario())
    first, second = attempts
    assert [e.event_id for e in first] == [e.event_id for e in second]
    assert all(e.event_id for e in first)
    assert first == second


def test_ids_given_before_buffering_are_kept(tmp_path: Path) -> None:
    sink = Sink()
    rows = [dataclasses.replace(row, row_id=100 + i) for i, row in enumerate(_rows())]
    events = [dataclasses.replace(e, event_id=f"k8s-{i}") for i, e in enumerate(_events())]

    async def scenario() -> None:
        for codec, batch in ((SKETCH_ROWS, rows), (EVENTS, events)):
            exporter = BufferedExporter(sink, tmp_path / codec.unit, codec=codec)
            await exporter.consume(batch)
            await exporter.stop()

    asyncio.run(scenario())
    assert sink.received == [rows, events]


def test_a_record_of_another_kind_is_skipped_and_counted(tmp_path: Path) -> None:
    sink = Sink()
    exporter = BufferedExporter(sink, tmp_path, codec=EVENTS, retry_interval_s=0.0)
    samples = [Sample(to_labels({"__name__": "m"}), 1, 1.0)]
    exporter.queue.append_record(SAMPLES.encode(samples), 1)  # a folder shared by mistake
    asyncio.run(exporter.consume(_events(2)))
    asyncio.run(exporter.stop())
    assert len(sink.items) == 2
    assert exporter.rejected_samples == 1
    assert exporter.pending_samples == 0


def test_wire_ids_are_checked() -> None:
    (row,) = _rows(1)
    wire = rows_to_wire([dataclasses.replace(row, row_id=2**64 - 1)])
    assert rows_from_wire(wire)[0].row_id == 2**64 - 1
    for bad in (-1, 2**64, "7", 1.5, True, None):
        with pytest.raises(ValueError, match="id"):
            rows_from_wire([{**wire[0], "id": bad}])
    assert "id" not in rows_to_wire([row])[0]  # no id yet: none sent, the store gives one


def test_a_relisted_kubernetes_event_has_the_same_id_and_a_repeat_a_new_one() -> None:
    obj = {
        "metadata": {"uid": "0b1c", "namespace": "ns", "name": "pod-0.17f"},
        "involvedObject": {"kind": "Pod", "name": "pod-0"},
        "reason": "BackOff",
        "message": "Back-off restarting failed container",
        "type": "Warning",
        "count": 3,
        "lastTimestamp": "2024-07-31T18:47:15Z",
    }
    first, relisted = to_event(obj, WHO), to_event(dict(obj), WHO)
    repeated = to_event({**obj, "count": 4, "lastTimestamp": "2024-07-31T18:48:15Z"}, WHO)
    other = to_event({**obj, "metadata": {**obj["metadata"], "uid": "9f"}}, WHO)
    assert first is not None
    assert relisted is not None
    assert repeated is not None
    assert other is not None
    assert first.event_id.startswith("k8s-")
    assert first.event_id == relisted.event_id
    assert len({first.event_id, repeated.event_id, other.event_id}) == 3
    first.validate()


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    events=st.lists(
        st.builds(
            Event,
            kind=st.just(POD),
            type=st.sampled_from(["Normal", "Alarm"]),
            reason=_text,
            message=_text,
            obj=st.builds(EventObject, project_id=_text, service_id=_text, pod=_text),
            time_ms=st.integers(0, 2**62),
            source=st.sampled_from(["infersight", "kubernetes", "platform"]),
            event_id=st.sampled_from(["", "k8s-1", "x"]),
        ),
        min_size=1,
        max_size=5,
    ),
    values=st.lists(st.floats(-1e9, 1e9, allow_nan=False), min_size=1, max_size=20),
    row_id=st.integers(0, 2**64 - 1),
)
def test_any_batch_round_trips_through_its_record(
    events: list[Event], values: list[float], row_id: int
) -> None:
    decoded = EVENTS.decode(EVENTS.encode(events)[8:])
    assert [dataclasses.replace(e, event_id="") for e in decoded] == [
        dataclasses.replace(e, event_id="") for e in events
    ]
    assert all(
        d.event_id == (e.event_id or d.event_id) and d.event_id for d, e in zip(decoded, events, strict=True)
    )
    h = ExponentialHistogram()
    h.add_many(np.asarray(values))
    row = SketchRow("m", (("source", "p"),), 10_000, 10, to_columns(h), row_id)
    (back,) = SKETCH_ROWS.decode(SKETCH_ROWS.encode([row])[8:])
    assert back.row_id == (row_id or back.row_id) != 0
    assert dataclasses.replace(back, row_id=0) == dataclasses.replace(row, row_id=0)
