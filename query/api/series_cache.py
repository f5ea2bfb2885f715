"""Remote-write series' label sets, found by their encoded Label records in one compiled pass.

Why: senders repeat the same series in every request (Prometheus sends one sample per series per
request, up to 2,000 series), so the receiver's per-request work is mostly finding each series'
label set again. Slicing every series' records out as ``bytes`` to key a dict cost about 200 ns a
series, most of a 1,000-series request's decoding. Here one compiled pass hashes each series' records
where they lie in the request, probes an open-addressing table of the entries, and compares the
request's bytes with the entry's copy in an arena: a hash collision is a miss, never a wrong label
set. Only misses (new series) are sliced out and decoded, by the caller's ``decode``.

    cache = LabelSetCache(decode)               # decode: one series' Label records → Labels
    labels = cache.resolve(data, starts, ends)  # data: the request as uint8; one Labels per series
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable

import numba
import numpy as np
import numpy.typing as npt

from model.labels import Labels
from query.api.write_request_scan import word as _word

IntArray = npt.NDArray[np.int64]
_M = np.uint64(0xC6A4A7935BD1E995)  # MurmurHash64A's multiplier and shift
_R = np.uint64(47)


@numba.njit(cache=True, nogil=True)
def _hash(data: np.ndarray, p: int, end: int, seed: np.uint64) -> np.uint64:
    """MurmurHash64A of ``data[p:end]`` (the tail a byte at a time)."""
    h = seed ^ (np.uint64(end - p) * _M)
    while p + 8 <= end:
        k = _word(data, p) * _M
        k ^= k >> _R
        h = (h ^ (k * _M)) * _M
        p += 8
    while p < end:
        h = (h ^ np.uint64(data[p])) * _M
        p += 1
    h ^= h >> _R
    h *= _M
    return h ^ (h >> _R)


@numba.njit(cache=True, nogil=True)
def _same(data: np.ndarray, p: int, arena: np.ndarray, q: int, size: int) -> bool:
    j = 0
    while j + 8 <= size:
        if _word(data, p + j) != _word(arena, q + j):
            return False
        j += 8
    while j < size:
        if data[p + j] != arena[q + j]:
            return False
        j += 1
    return True


@numba.njit(cache=True, nogil=True)
def _find(
    data: np.ndarray,
    starts: IntArray,
    ends: IntArray,
    seed: np.uint64,
    table: np.ndarray,
    entry_hash: np.ndarray,
    arena: np.ndarray,
    arena_from: IntArray,
    arena_to: IntArray,
    hashes: np.ndarray,
    entries: IntArray,
) -> int:
    """Fills each section's hash and entry (-1: not held); returns how many were not held.

    ``table`` slots hold entry + 1 (0: empty), probed linearly from the hash's low bits."""
    mask = np.uint64(len(table) - 1)
    missing = 0
    for i in range(len(starts)):
        p, end = starts[i], ends[i]
        h = _hash(data, p, end, seed)
        hashes[i] = h
        slot = h & mask
        found = -1
        while table[slot] != 0:
            entry = table[slot] - 1
            if (
                entry_hash[entry] == h
                and arena_to[entry] - arena_from[entry] == end - p
                and _same(data, p, arena, arena_from[entry], end - p)
            ):
                found = entry
                break
            slot = (slot + np.uint64(1)) & mask
        entries[i] = found
        missing += found < 0
    return missing


@numba.njit(cache=True, nogil=True)
def _insert(table: np.ndarray, entry_hash: np.ndarray, new: IntArray) -> None:
    """Place entries ``new`` (their hashes already in ``entry_hash``) in the table's first free slots."""
    mask = np.uint64(len(table) - 1)
    for entry in new:
        slot = entry_hash[entry] & mask
        while table[slot] != 0:
            slot = (slot + np.uint64(1)) & mask
        table[slot] = entry + 1


class LabelSetCache:
    """Up to ``capacity`` label sets, cleared whole when full (senders' series sets are stable).

    Thread-safe: small requests resolve on the event loop, large ones in worker threads, and the
    compiled pass runs without the GIL, so one lock covers a whole ``resolve``. The hash is seeded at
    random per process; a sender who makes sections collide anyway only lengthens its own probes.
    """

    def __init__(
        self, decode: Callable[[bytes], Labels], capacity: int = 50_000, max_arena_bytes: int = 64 << 20
    ) -> None:
        self._decode = decode
        self.capacity = capacity
        self.max_arena_bytes = max_arena_bytes
        self._seed = np.uint64(secrets.randbits(64))
        self._lock = threading.Lock()
        self.clear()

    def __len__(self) -> int:
        return len(self._labels)

    def clear(self) -> None:
        # Sized to the entries, at most half full: a table of a sender's few thousand series stays
        # in the CPU's cache (one sized for ``capacity`` at once made every probe a cache miss).
        self._table = np.zeros(4096, np.int32)
        self._labels: list[Labels] = []
        self._hash = np.zeros(1024, np.uint64)
        self._from = np.zeros(1024, np.int64)
        self._to = np.zeros(1024, np.int64)
        self._arena = np.zeros(1 << 16, np.uint8)  # the entries' encoded records, end to end
        self._used = 0

    def resolve(self, data: np.ndarray, starts: IntArray, ends: IntArray) -> list[Labels]:
        """The label set of each section ``data[starts[i]:ends[i]]`` (``decode``'s errors pass up)."""
        with self._lock:
            n = len(starts)
            if len(self._labels) + n > self.capacity or self._used + len(data) > self.max_arena_bytes:
                self.clear()  # before the lookup, so that the entries found below stay valid
            if 2 * (len(self._labels) + n) > len(self._table):
                self._grow(len(self._labels) + n)
            hashes = np.empty(n, np.uint64)
            entries = np.empty(n, np.int64)
            args = (self._table, self._hash, self._arena, self._from, self._to, hashes, entries)
            if _find(data, starts, ends, self._seed, *args):
                self._add_missing(data, starts, ends, hashes, entries)
            return list(map(self._labels.__getitem__, entries.tolist()))

    def _grow(self, entries: int) -> None:
        """A table at most half full with ``entries``, every entry placed again."""
        self._table = np.zeros(1 << (2 * entries - 1).bit_length(), np.int32)
        _insert(self._table, self._hash, np.arange(len(self._labels), dtype=np.int64))

    def _add_missing(
        self, data: np.ndarray, starts: IntArray, ends: IntArray, hashes: np.ndarray, entries: IntArray
    ) -> None:
        """Decode and add the sections not held, each distinct one once; fills ``entries``."""
        added: dict[bytes, int] = {}
        for i in np.flatnonzero(entries < 0).tolist():
            section = data[starts[i] : ends[i]].tobytes()
            entry = added.get(section)
            if entry is None:
                entry = added[section] = self._append(section, self._decode(section), hashes[i])
            entries[i] = entry
        _insert(self._table, self._hash, np.fromiter(added.values(), np.int64, len(added)))

    def _append(self, section: bytes, labels: Labels, key: np.uint64) -> int:
        entry = len(self._labels)
        if entry == len(self._from):
            self._hash, self._from, self._to = (
                np.resize(a, 2 * entry) for a in (self._hash, self._from, self._to)
            )
        end = self._used + len(section)
        if end > len(self._arena):
            self._arena = np.resize(self._arena, max(2 * len(self._arena), end))
        self._arena[self._used : end] = np.frombuffer(section, np.uint8)
        self._hash[entry], self._from[entry], self._to[entry] = key, self._used, end
        self._used = end
        self._labels.append(labels)
        return entry

    def warm(self) -> None:
        """Load (or compile) the compiled pass now, not inside the first request's time."""
        self.resolve(np.zeros(0, np.uint8), np.zeros(0, np.int64), np.zeros(0, np.int64))
        _insert(self._table, self._hash, np.zeros(0, np.int64))
