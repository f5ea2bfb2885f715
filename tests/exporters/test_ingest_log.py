"""The server's ingest log: acknowledged once written, inserted in blocks, kept through store outages
and restarts, refused (never dropped) when full."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from exporters.ingest_log import IngestLog, IngestLogFull
from exporters.segments import Columns, columns_of, encode_columns, frame, tagged
from model.labels import Labels, to_labels
from model.series import Sample
from store.backend import StoreUnavailableError

T0 = 1_764_000_000_000


class Writer:
    """Records each block it is given as (labels, ts, value) per sample; ``down``: retryable refusal;
    ``refuse``: a permanent one."""

    def __init__(self) -> None:
        self.down = False
        self.refuse = False
        self.blocks: list[list[tuple[Labels, int, float]]] = []

    def write_indexed(
        self, labels: list[Labels], index: np.ndarray, ts: np.ndarray, values: np.ndarray
    ) -> int:
        if self.down:
            raise StoreUnavailableError("down")
        if self.refuse:
            raise ValueError("refused")
        owners = [labels[i] for i in index.tolist()]
        self.blocks.append(list(zip(owners, ts.tolist(), values.tolist(), strict=True)))
        return len(ts)

    @property
    def samples(self) -> list[tuple[Labels, int, float]]:
        return [s for block in self.blocks for s in block]


def _batch(i: int, n: int = 3) -> list[Sample]:
    return [Sample(to_labels({"__name__": "m", "i": str(i)}), T0 + k, float(k)) for k in range(n)]


def _rows(batches: list[list[Sample]]) -> list[tuple[Labels, int, float]]:
    return [(s.labels, s.ts_ms, s.value) for batch in batches for s in batch]


def test_appends_are_inserted_as_one_block(tmp_path: Path) -> None:
    writer = Writer()
    log = IngestLog(writer, tmp_path)
    for i in range(3):
        log.append(columns_of(_batch(i)))
    assert writer.blocks == []  # acknowledged, not inserted yet
    assert log.flush()
    assert writer.blocks == [_rows([_batch(0), _batch(1), _batch(2)])]
    assert log.counts() == {"accepted": 9, "stored": 9, "rejected": 0, "refused_log_full": 0, "pending": 0}
    assert not list(tmp_path.glob("*.seg"))  # inserted segments leave the disk


def test_a_block_joins_repeated_label_lists(tmp_path: Path) -> None:
    writer = Writer()
    log = IngestLog(writer, tmp_path)
    columns = columns_of(_batch(0) + _batch(1))
    later = Columns(list(columns.labels), columns.index[::-1].copy(), columns.ts_ms + 10, columns.values)
    log.append(columns)
    log.append(later)
    assert log.flush()
    (block,) = writer.blocks
    assert block == list(
        zip(
            [columns.labels[i] for i in np.r_[columns.index, later.index].tolist()],
            np.r_[columns.ts_ms, later.ts_ms].tolist(),
            np.r_[columns.values, later.values].tolist(),
            strict=True,
        )
    )


def test_store_down_keeps_everything_and_delivers_it_later(tmp_path: Path) -> None:
    writer = Writer()
    writer.down = True
    log = IngestLog(writer, tmp_path, retry_interval_s=0.0)
    log.append(columns_of(_batch(0)))
    assert not log.flush()  # accepted, not stored
    log.append(columns_of(_batch(1)))  # still accepted while the store is down
    assert not log.flush()
    assert log.pending_samples == 6
    writer.down = False
    assert log.flush()
    assert writer.samples == _rows([_batch(0), _batch(1)])
    assert log.pending_samples == 0


def test_a_restart_replays_what_was_not_inserted(tmp_path: Path) -> None:
    """The process dies (no stop) with one sealed segment the store refused and an open one; a new
    log on the folder inserts both, in order, and a torn last record is discarded."""
    writer = Writer()
    writer.down = True
    first = IngestLog(writer, tmp_path)
    first.append(columns_of(_batch(0)))
    assert not first.flush()  # sealed, kept
    first.append(columns_of(_batch(1)))
    first.queue.close()
    with (tmp_path / "open.wal").open("ab") as wal:  # killed inside a write: never acknowledged
        wal.write(frame(b"x" * 100)[:50])
    writer.down = False
    second = IngestLog(writer, tmp_path)
    assert second.pending_samples == 6
    assert second.flush()
    assert writer.samples == _rows([_batch(0), _batch(1)])


def test_a_tagged_payload_is_replayed_through_its_decoder(tmp_path: Path) -> None:
    columns = columns_of(_batch(7))
    writer = Writer()
    writer.down = True
    first = IngestLog(writer, tmp_path)
    first.append(columns, tagged(5, len(columns), b"batch-7"))
    first.queue.close()
    writer.down = False
    seen: list[bytes] = []

    def decode(data: memoryview) -> Columns:
        seen.append(bytes(data))
        return columns_of(_batch(7))

    second = IngestLog(writer, tmp_path, decoders={5: decode})
    assert second.flush()
    assert seen == [b"batch-7"]
    assert writer.samples == _rows([_batch(7)])


def test_full_log_refuses_and_counts(tmp_path: Path) -> None:
    writer = Writer()
    writer.down = True
    record = len(frame(encode_columns(columns_of(_batch(0)))))
    log = IngestLog(writer, tmp_path, max_bytes=2 * record)
    log.append(columns_of(_batch(0)))
    assert not log.flush()  # sealed: the bound counts sealed segments too
    log.append(columns_of(_batch(1)))
    with pytest.raises(IngestLogFull):
        log.append(columns_of(_batch(2)))
    assert log.refused_samples == 3
    writer.down = False
    assert log.flush()
    assert writer.samples == _rows([_batch(0), _batch(1)])  # nothing acknowledged was dropped
    log.append(columns_of(_batch(2)))  # room again


def test_a_permanent_refusal_drops_that_block_only(tmp_path: Path) -> None:
    writer = Writer()
    writer.refuse = True
    log = IngestLog(writer, tmp_path)
    log.append(columns_of(_batch(0)))
    assert log.flush()
    writer.refuse = False
    log.append(columns_of(_batch(1)))
    assert log.flush()
    assert writer.samples == _rows([_batch(1)])
    assert log.counts()["rejected"] == 3


def test_the_thread_inserts_by_age_and_on_flush(tmp_path: Path) -> None:
    writer = Writer()
    log = IngestLog(writer, tmp_path, max_batch_age_s=0.05)
    log.start()
    try:
        log.append(columns_of(_batch(0)))
        assert log.flush(timeout_s=30)
        log.append(columns_of(_batch(1)))
        assert log.flush(timeout_s=30)
    finally:
        log.stop()
    assert writer.samples == _rows([_batch(0), _batch(1)])


def test_stop_inserts_what_is_left(tmp_path: Path) -> None:
    writer = Writer()
    log = IngestLog(writer, tmp_path, max_batch_age_s=3600)
    log.start()
    log.append(columns_of(_batch(0)))
    log.stop()
    assert writer.samples == _rows([_batch(0)])
    assert not list(tmp_path.glob("*.seg"))
    assert not (tmp_path / "open.wal").exists()
