"""Batched writes: samples to the ``samples`` table, new (series, day) pairs to ``series``.

An insert never touches more than ``max_partitions_per_insert`` partitions of a table (chDB and
newer servers refuse a block over ``max_partitions_per_insert_block``, 100 by default): a batch
spanning more days of samples, or more months of series rows, is sent as several inserts, each a
run of the table's partitions, rows in the same order.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from operator import attrgetter

import numpy as np
import numpy.ma  # np.unique's first call loads it otherwise: at start-up, not in the first insert
import pyarrow as pa

from model.labels import METRIC_NAME, Labels
from model.series import Sample
from store.admission import TS_MAX_MS, TS_MIN_MS
from store.backend import Backend
from store.limits import IngestGuard, Limits, label_problem, target_of
from store.recent_points import RecentPoints
from store.write_kernels import DAY_MS as _DAY_MS
from store.write_kernels import first_unknown_days, gather_columns, order_by_series
from store.write_kernels import warm as warm_kernels

_LABELS, _TS, _VALUE = attrgetter("labels"), attrgetter("ts_ms"), attrgetter("value")
_NO_DAY = np.iinfo(np.int64).min
# The default of ClickHouse's max_partitions_per_insert_block (chDB's too).
MAX_PARTITIONS_PER_INSERT = 100
# pyarrow loads pandas (when installed) on its first conversion of a Python list, about 0.3 s: here,
# at start-up, rather than inside the first insert.
pa.array([], pa.string())


def fingerprint(labels: Labels) -> int:
    """Stable 64-bit identity of a canonical label set (the same in every process and release)."""
    # One update of the joined parts: the same digest as an update per part, in fewer calls.
    data = b"".join(
        b"%s\xff%s\xfe" % (key.encode("utf-8", "surrogatepass"), value.encode("utf-8", "surrogatepass"))
        for key, value in labels
    )
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


class SampleWriter:
    """Turns batches of samples into column inserts. ``SampleWriter(backend).write(batch)``.

    Remembers which (series, day) rows it has written so the series table gets each once per
    process; a repeat after a restart collapses in the ReplacingMergeTree. Bad input is dropped and
    counted in ``guard.dropped`` (``store.limits``), never raised: a timestamp outside what the
    tables hold (``store.admission``) too (``timestamp_out_of_range``), so that no sample can fail
    a whole insert. The counts are added once the batch is stored (a retried batch counts once).

    ``on_stored(min_ts_ms, max_ts_ms)`` is called after a batch's samples were inserted, with the
    time bounds of the samples stored (not when nothing was stored, nor when the insert raised);
    an exception it raises reaches the caller of ``write``, who retries the batch (harmless: replays
    collapse).

    The hot path touches each sample three times in C (label-set lookup, timestamp, value); the rest
    is vector work over per-series tables: every label set seen gets a slot holding its fingerprint,
    metric name, label check and the last day whose series row is stored.
    """

    def __init__(
        self,
        backend: Backend,
        cache_size: int = 1_000_000,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.time,
        on_stored: Callable[[int, int], None] | None = None,
        max_partitions_per_insert: int = MAX_PARTITIONS_PER_INSERT,
    ) -> None:
        if max_partitions_per_insert < 2:
            raise ValueError("max_partitions_per_insert must be ≥ 2")
        self._backend = backend
        # The backend's in-memory newest points (chDB, one writer), fed with every stored point.
        self._recent: RecentPoints | None = getattr(backend, "recent", None)
        self._recent_slot = np.zeros(0, np.int64)  # writer slot → its slot there (-1: not asked yet)
        # The backend notes a write once stored; it is noted again once in the recent points, where
        # reads of new times look, for what readers keep (shared results, kept range answers).
        self._note_points: Callable[[int], None] | None = getattr(backend, "note_points", None)
        self.max_partitions_per_insert = max_partitions_per_insert
        self.guard = IngestGuard(limits, clock)
        self._on_stored = on_stored
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._seen_days: set[tuple[int, int]] = set()
        # Label set → slot, oldest first (evicted first past cache_size), and per-slot columns.
        self._slots: OrderedDict[Labels, int] = OrderedDict()
        self._slot_labels: list[Labels | None] = []
        self._free: list[int] = []
        self._fp = np.zeros(0, np.uint64)
        self._name = np.zeros(0, np.int32)  # code into self._names
        self._problem = np.zeros(0, np.int8)  # 0, or code into self._problems
        self._day = np.zeros(0, np.int64)  # the day whose series row is known stored
        self._names: list[str] = []
        self._name_codes: dict[str, int] = {}
        self._problems: list[str] = [""]
        warm_kernels()  # loaded (or compiled) here, not inside the first insert

    @property
    def backend(self) -> Backend:
        return self._backend

    def forget_stored_series(self) -> None:
        """Write each series' row again with its next samples: its table was re-created empty."""
        with self._lock:
            self._day[:] = _NO_DAY
            self._seen_days.clear()
            if self._recent is not None:
                self._recent.reset()

    def write(self, batch: list[Sample]) -> int:
        """Insert the batch; returns the number of samples written (the rest are counted as dropped).

        One write at a time: the API's ingest, remote write and the exporters share one writer.
        """
        if not batch:
            return 0
        n = len(batch)
        with self._lock:
            try:
                # C-level map/attrgetter rather than Python loops: this is the per-sample hot path.
                try:
                    slots = np.fromiter(map(self._slots.get, map(_LABELS, batch)), np.intp, n)
                except TypeError:  # a label set without a slot yet (None in the stream)
                    slots = self._resolve(list(map(_LABELS, batch)))
                ts = np.fromiter(map(_TS, batch), np.int64, n)
                values = np.fromiter(map(_VALUE, batch), np.float64, n)
                return self._write(slots, ts, values)
            finally:
                self._trim()

    def write_columns(
        self, labels: Sequence[Labels], counts: Sequence[int] | np.ndarray, ts: np.ndarray, values: np.ndarray
    ) -> int:
        """``write`` for samples already in columns, grouped by series (remote write decodes so).

        ``labels[i]`` is the label set of the next ``counts[i]`` samples of ``ts`` (int ms) and ``values``.
        """
        ts = np.asarray(ts, np.int64)
        values = np.asarray(values, np.float64)
        counts = np.asarray(counts, np.intp)
        if len(labels) != len(counts) or int(counts.sum()) != len(ts) or len(ts) != len(values):
            raise ValueError("labels/counts/ts/values do not line up")
        if len(ts) == 0:
            return 0
        with self._lock:
            try:
                return self._write(np.repeat(self._resolve(list(labels)), counts), ts, values)
            finally:
                self._trim()

    def write_indexed(
        self, labels: Sequence[Labels], index: np.ndarray, ts: np.ndarray, values: np.ndarray
    ) -> int:
        """``write`` for samples in columns: sample ``i`` belongs to ``labels[index[i]]`` (the ingest
        log's form, where one block joins many requests, each with its own label list)."""
        ts = np.asarray(ts, np.int64)
        values = np.asarray(values, np.float64)
        index = np.asarray(index, np.intp)
        if len(index) != len(ts) or len(ts) != len(values):
            raise ValueError("index/ts/values do not line up")
        if len(ts) == 0:
            return 0
        if int(index.min()) < 0 or int(index.max()) >= len(labels):
            raise ValueError("index out of range of labels")
        with self._lock:
            try:
                return self._write(self._resolve(list(labels))[index], ts, values)
            finally:
                self._trim()

    # -- label sets → slots -------------------------------------------------------------------

    def _resolve(self, labels: list[Labels]) -> np.ndarray:
        """Slots of the label sets, new ones added (the cache may overflow until ``_trim``)."""
        found = list(map(self._slots.get, labels))
        if None in found:
            for key in dict.fromkeys(k for k, slot in zip(labels, found, strict=True) if slot is None):
                self._add(key)
            found = list(map(self._slots.get, labels))
        return np.array(found, np.intp)

    def _add(self, labels: Labels) -> None:
        name = next((v for k, v in labels if k == METRIC_NAME), "")
        problem = label_problem(labels, self.guard.limits)
        if self._free:
            slot = self._free.pop()
            self._slot_labels[slot] = labels
        else:
            slot = len(self._slot_labels)
            self._slot_labels.append(labels)
            if slot >= len(self._fp):
                size = max(1024, 2 * len(self._fp))
                self._fp = np.resize(self._fp, size)
                self._name = np.resize(self._name, size)
                self._problem = np.resize(self._problem, size)
                self._day = np.resize(self._day, size)
        code = self._name_codes.get(name)
        if code is None:
            code = self._name_codes[name] = len(self._names)
            self._names.append(name)
        if problem is not None and problem not in self._problems:
            self._problems.append(problem)
        self._fp[slot] = fingerprint(labels) if problem is None else 0
        self._name[slot] = code
        self._problem[slot] = 0 if problem is None else self._problems.index(problem)
        self._day[slot] = _NO_DAY
        if slot < len(self._recent_slot):
            self._recent_slot[slot] = -1
        self._slots[labels] = slot

    def _trim(self) -> None:
        """Forget the oldest label sets past ``cache_size`` (between batches, so slots stay valid)."""
        excess = len(self._slots) - self._cache_size
        for _ in range(max(0, excess)):
            _, slot = self._slots.popitem(last=False)
            self._slot_labels[slot] = None
            self._free.append(slot)
        if excess > 0 and len(self._names) > 2 * len(self._slots) + 4096:
            self._compact_names()
        if len(self._seen_days) > 4 * self._cache_size:
            # Only a memory bound: each slot still knows its last stored day; a forgotten pair at
            # worst writes its series row again, which the ReplacingMergeTree collapses.
            self._seen_days.clear()

    def _compact_names(self) -> None:
        live = np.array(list(self._slots.values()), np.intp)
        used = sorted(set(self._name[live].tolist()))
        self._names = [self._names[c] for c in used]
        self._name_codes = {name: code for code, name in enumerate(self._names)}
        remap = np.zeros(max(used, default=0) + 1, np.int32)
        remap[used] = np.arange(len(used), dtype=np.int32)
        self._name[live] = remap[self._name[live]]

    # -- one batch --------------------------------------------------------------------------

    def _write(self, slots: np.ndarray, ts: np.ndarray, values: np.ndarray) -> int:
        reasons: Counter[str] = Counter()
        keep = self._screen(slots, ts, reasons)
        new_series = self._new_series(slots, ts, keep, reasons)
        index, names, name_rank = self._sorted_last_per_timestamp(slots, ts, np.flatnonzero(keep), reasons)
        if new_series:
            rows = self._series_rows(new_series)
            months = rows.column("day").to_numpy().astype("datetime64[M]").astype(np.int64)
            self._insert_by_partition("series", rows, months, self.max_partitions_per_insert)
        if len(index):
            fps, stored_ts, stored_values, name_codes = gather_columns(
                index, slots, ts, values, self._fp, self._name, name_rank
            )
            rows = pa.table(
                {
                    # dictionary-encoded: one string per name
                    "metric_name": pa.DictionaryArray.from_arrays(pa.array(name_codes), names),
                    "fingerprint": fps,
                    "ts_ms": stored_ts,
                    "value": stored_values,
                }
            )
            # Days by UTC; the server's own days may straddle two of ours, so one partition spare.
            self._insert_by_partition(
                "samples", rows, stored_ts // _DAY_MS, self.max_partitions_per_insert - 1
            )
        # Counted once stored: a batch that failed and is sent again counts its drops once.
        self.guard.count(reasons)
        # Only remember series rows once they are stored, so a failed insert is retried whole.
        if new_series:
            self._seen_days.update((fp, day) for fp, day, _ in new_series)
            self._day[[slot for _, _, slot in new_series]] = [day for _, day, _ in new_series]
        if len(index) and self._recent is not None:
            try:
                self._remember(slots[index], stored_ts, stored_values)
            finally:  # even part of them there is readable
                if self._note_points is not None:
                    self._note_points(int(stored_ts.min()))
        if len(index) and self._on_stored is not None:
            self._on_stored(int(stored_ts.min()), int(stored_ts.max()))
        return len(index)

    def _remember(self, slots: np.ndarray, ts: np.ndarray, values: np.ndarray) -> None:
        """Stored points into the backend's recent points, by their slots there."""
        assert self._recent is not None
        if len(self._recent_slot) < len(self._fp):
            grown = np.full(len(self._fp), -1, np.int64)
            grown[: len(self._recent_slot)] = self._recent_slot
            self._recent_slot = grown
        theirs = self._recent_slot[slots]
        if (theirs < 0).any():
            new = np.unique(slots[theirs < 0])
            self._recent_slot[new] = self._recent.slots_of(self._fp[new].tolist())
            theirs = self._recent_slot[slots]
        self._recent.append(theirs, ts, values)

    def _insert_by_partition(self, table: str, rows: pa.Table, keys: np.ndarray, span: int) -> None:
        """Insert ``rows`` in runs whose partition ``keys`` (day or month numbers) lie within
        ``span`` consecutive values: one insert for the usual batch."""
        for part in partition_runs(keys, span):
            self._backend.insert(table, rows if part is None else rows.take(part))

    def _screen(self, slots: np.ndarray, ts: np.ndarray, reasons: Counter[str]) -> np.ndarray:
        """Mask of samples with acceptable labels and timestamps."""
        problems = self._problem[slots]
        keep = problems == 0
        if not keep.all():
            for code, count in enumerate(np.bincount(problems).tolist()):
                if code and count:
                    reasons[self._problems[code]] += count
        if len(ts) and (int(ts.min()) < TS_MIN_MS or int(ts.max()) > TS_MAX_MS):
            _drop(keep, (ts < TS_MIN_MS) | (ts > TS_MAX_MS), "timestamp_out_of_range", reasons)
        low, high = self.guard.time_bounds_ms()
        if low is not None:
            _drop(keep, ts < low, "too_old", reasons)
        if high is not None:
            _drop(keep, ts > high, "too_far_in_future", reasons)
        return keep

    def _new_series(
        self, slots: np.ndarray, ts: np.ndarray, keep: np.ndarray, reasons: Counter[str]
    ) -> list[tuple[int, int, int]]:
        """New (fingerprint, day, slot) series rows the cardinality limits admit, in order of first
        appearance; the samples of refused ones leave ``keep``."""
        where = first_unknown_days(slots, ts, self._day, keep)
        if not len(where):  # the usual batch: every series already has its row for the day
            return []
        pairs = zip(slots[where].tolist(), (ts[where] // _DAY_MS).tolist(), strict=True)
        out: list[tuple[int, int, int]] = []
        refused: dict[tuple[int, str], list[int]] = {}
        for slot, day in dict.fromkeys(pairs):
            fp = int(self._fp[slot])
            if (fp, day) in self._seen_days:
                self._day[slot] = day
                continue
            labels = self._slot_labels[slot]
            assert labels is not None
            reason = self.guard.admit_series(self._names[self._name[slot]], target_of(labels), fp, day)
            if reason is None:
                out.append((fp, day, slot))
            else:
                refused.setdefault((day, reason), []).append(slot)
        if refused:
            days = ts // _DAY_MS
            for (day, reason), refused_slots in refused.items():  # one vector pass per (day, reason)
                _drop(keep, np.isin(slots, refused_slots) & (days == day), reason, reasons)
        return out

    def _sorted_last_per_timestamp(
        self, slots: np.ndarray, ts: np.ndarray, index: np.ndarray, reasons: Counter[str]
    ) -> tuple[np.ndarray, pa.Array, np.ndarray]:
        """``index`` in the table's key order (metric name, fingerprint, ts), so that ClickHouse finds
        the block already sorted; a repeated (series, timestamp) keeps its last value (Prometheus
        would refuse it). Also the batch's metric names, sorted, and each name code's rank among them.
        """
        if len(index) == 0:
            return index, pa.array([], pa.string()), np.zeros(0, np.int32)
        s = slots[index]
        # The batch's distinct series ranked by (metric name, fingerprint): a sort over series only.
        if 8 * len(s) < len(self._fp):
            present = np.unique(s)
        else:
            mark = np.zeros(len(self._fp), bool)
            mark[s] = True
            present = np.flatnonzero(mark)
        codes = self._name[present]
        distinct = np.unique(codes)
        by_name = sorted(distinct.tolist(), key=self._names.__getitem__)
        code_rank = np.empty(int(distinct[-1]) + 1, np.int32)
        code_rank[by_name] = np.arange(len(distinct), dtype=np.int32)
        names = pa.array([self._names[c] for c in by_name], pa.string())
        present = present[np.lexsort((self._fp[present], code_rank[codes]))]
        rank_of = np.empty(len(self._fp), np.intp)
        rank_of[present] = np.arange(len(present))
        # Series by series, batch order within each; rising: the usual batch, points in time order.
        ordered, rising = order_by_series(slots, index, rank_of, ts, len(present))
        if rising:
            return ordered, names, code_rank
        rank = rank_of[s]
        order = np.lexsort((np.arange(len(index)), ts[index], rank))  # series, time, then position
        r, t = rank[order], ts[index][order]
        earlier = np.r_[(r[1:] == r[:-1]) & (t[1:] == t[:-1]), False]  # followed by the same point
        if earlier.any():
            reasons["duplicate_timestamp"] += int(earlier.sum())
            order = order[~earlier]
        return index[order], names, code_rank

    def _series_rows(self, new_series: list[tuple[int, int, int]]) -> pa.Table:
        days, metric_names, fps, label_names, label_values = [], [], [], [], []
        for fp, day, slot in new_series:
            labels = self._slot_labels[slot]
            assert labels is not None
            days.append(day)
            metric_names.append(self._names[self._name[slot]])
            fps.append(fp)
            rest = [(k, v) for k, v in labels if k != METRIC_NAME]
            label_names.append([k for k, _ in rest])
            label_values.append([v for _, v in rest])
        return pa.table(
            {
                "day": pa.array(days, pa.int32()).cast(pa.date32()),
                "metric_name": pa.array(metric_names, pa.string()),
                "fingerprint": pa.array(fps, pa.uint64()),
                "label_names": pa.array(label_names, pa.list_(pa.string())),
                "label_values": pa.array(label_values, pa.list_(pa.string())),
            }
        )


def partition_runs(keys: np.ndarray, span: int) -> list[np.ndarray | None]:
    """Row positions grouped so that each group's ``keys`` lie within ``span`` consecutive values,
    each group in the rows' order; ``[None]`` (all rows at once) when they already do."""
    if len(keys) == 0:
        return [None]
    low, high = int(keys.min()), int(keys.max())
    if high - low < span:
        return [None]
    group = (keys - low) // span
    order = np.argsort(group, kind="stable")
    cuts = np.flatnonzero(np.diff(group[order])) + 1
    return list(np.split(order, cuts))


def _drop(keep: np.ndarray, refuse: np.ndarray, reason: str, reasons: Counter[str]) -> None:
    """Clear ``keep`` where ``refuse`` holds, counting the samples that were still kept."""
    refuse &= keep
    count = int(refuse.sum())
    if count:
        keep &= ~refuse
        reasons[reason] += count
