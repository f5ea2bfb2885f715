"""A block the store refuses is split until the refused requests (and samples) are found: the rest is
stored, what is dropped is counted by reason and logged once; a store that cannot take anything now
(unreachable, too many parts) drops nothing."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from loguru import logger

from exporters.ingest_log import IngestLog
from exporters.segments import columns_of
from model.labels import Labels, to_labels
from model.series import Sample
from store.backend import StoreUnavailableError
from store.insert_errors import is_transient
from store.limits import IngestGuard

T0 = 1_764_000_000_000
POISON = -7  # a timestamp this writer refuses, as a store refuses what it cannot hold


class PoisonWriter:
    """Stores a block unless it holds a ``POISON`` timestamp (a permanent refusal, as chDB raises
    it); ``down``: every insert fails as an unreachable store; ``busy``: as a store with too many
    parts (chDB's RuntimeError with ClickHouse's code)."""

    def __init__(self) -> None:
        self.guard = IngestGuard()
        self.down = False
        self.busy = False
        self.inserts = 0
        self.stored: list[tuple[Labels, int, float]] = []

    def write_indexed(
        self, labels: list[Labels], index: np.ndarray, ts: np.ndarray, values: np.ndarray
    ) -> int:
        self.inserts += 1
        if self.down:
            raise StoreUnavailableError("down")
        if self.busy:
            raise RuntimeError("Code: 252. DB::Exception: Too many parts (300). (TOO_MANY_PARTS)")
        if (np.asarray(ts) == POISON).any():
            raise RuntimeError("Code: 321. DB::Exception: value -1 is out of the allowed Date range")
        owners = [labels[i] for i in np.asarray(index).tolist()]
        self.stored.extend(zip(owners, ts.tolist(), values.tolist(), strict=True))
        return len(ts)


def _request(client: int, n: int, poison_at: tuple[int, ...] = ()) -> list[Sample]:
    return [
        Sample(
            to_labels({"__name__": "m", "client": str(client), "k": str(k % 3)}),
            POISON if k in poison_at else T0 + k,
            float(k),
        )
        for k in range(n)
    ]


def _rows(samples: list[Sample]) -> Counter[tuple[Labels, int, float]]:
    return Counter((s.labels, s.ts_ms, s.value) for s in samples if s.ts_ms != POISON)


def _log(writer: PoisonWriter, folder: Path, **options: int) -> IngestLog:
    return IngestLog(writer, folder, max_batch_samples=1 << 20, retry_interval_s=0.0, **options)  # type: ignore[arg-type]


def test_one_clients_bad_sample_costs_the_others_nothing(tmp_path: Path) -> None:
    writer = PoisonWriter()
    log = _log(writer, tmp_path)
    requests = [_request(c, 20, poison_at=(11,) if c == 5 else ()) for c in range(12)]
    lines: list[str] = []
    sink = logger.add(lines.append, level="ERROR", format="{message}")
    try:
        for request in requests:
            log.append(columns_of(request))
        assert log.flush()
    finally:
        logger.remove(sink)
    assert Counter(writer.stored) == _rows([s for r in requests for s in r])  # the bad request's rest too
    assert writer.guard.dropped == {"store_refused": 1}
    assert log.counts()["rejected"] == 1
    assert log.counts()["stored"] == 12 * 20 - 1
    assert len(lines) == 1  # once per block, not per sample or retry
    assert 'client="5"' in lines[0]
    assert "Code: 321" in lines[0]


def test_a_store_that_cannot_take_anything_now_drops_nothing(tmp_path: Path) -> None:
    writer = PoisonWriter()
    log = _log(writer, tmp_path)
    requests = [_request(c, 10, poison_at=(3,) if c == 1 else ()) for c in range(4)]
    for request in requests:
        log.append(columns_of(request))
    writer.busy = True  # chDB's "too many parts": not the data's fault
    assert not log.flush()
    writer.busy, writer.down = False, True
    assert not log.flush()
    assert log.counts()["rejected"] == 0
    assert log.pending_samples == 40
    writer.down = False
    assert log.flush()
    assert Counter(writer.stored) == _rows([s for r in requests for s in r])
    assert writer.guard.dropped == {"store_refused": 1}


def test_an_outage_in_the_middle_of_the_search_keeps_the_whole_block(tmp_path: Path) -> None:
    writer = PoisonWriter()
    log = _log(writer, tmp_path)
    requests = [_request(c, 8, poison_at=(0,) if c == 2 else ()) for c in range(6)]
    for request in requests:
        log.append(columns_of(request))
    original = writer.write_indexed
    calls = 0

    def fails_on_the_third(*args: object) -> int:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise StoreUnavailableError("gone mid-search")
        return original(*args)  # type: ignore[arg-type]

    writer.write_indexed = fails_on_the_third  # type: ignore[method-assign]
    assert not log.flush()
    assert log.counts()["rejected"] == 0
    assert log.flush()  # sent again: what was stored before is stored again (replays collapse)
    assert set(writer.stored) == set(_rows([s for r in requests for s in r]))
    assert writer.guard.dropped == {"store_refused": 1}


def test_the_search_is_bounded(tmp_path: Path) -> None:
    writer = PoisonWriter()
    log = _log(writer, tmp_path, max_isolation_inserts=6)
    requests = [_request(c, 10, poison_at=tuple(range(10))) for c in range(50)]
    for request in requests:
        log.append(columns_of(request))
    assert log.flush()
    assert writer.inserts <= 1 + 6
    assert writer.stored == []
    assert writer.guard.dropped == {"store_refused": 500}
    assert log.pending_samples == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 40), st.sets(st.integers(0, 39), max_size=3)),
        min_size=1,
        max_size=12,
    )
)
def test_exactly_the_refused_samples_are_dropped(shape: list[tuple[int, set[int]]]) -> None:
    writer = PoisonWriter()
    with tempfile.TemporaryDirectory() as folder:
        log = _log(writer, Path(folder), max_isolation_inserts=10_000)
        requests = [_request(c, n, tuple(p for p in poison if p < n)) for c, (n, poison) in enumerate(shape)]
        for request in requests:
            log.append(columns_of(request))
        assert log.flush()
        log.stop()
    poisoned = sum(s.ts_ms == POISON for r in requests for s in r)
    assert Counter(writer.stored) == _rows([s for r in requests for s in r])
    assert writer.guard.dropped == ({"store_refused": poisoned} if poisoned else {})


@pytest.mark.parametrize("message", ["Code: 241. Memory limit exceeded", "Code: 243. Not enough space"])
def test_chdb_codes_for_a_full_store_are_transient(message: str) -> None:
    assert is_transient(RuntimeError(message))
    assert not is_transient(RuntimeError("Code: 321. value out of range"))
    assert not is_transient(ValueError("no code"))
