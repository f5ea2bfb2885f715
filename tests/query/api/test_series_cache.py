"""The remote-write label-set cache: the label set found for a series' bytes is always the one its
bytes decode to — across requests, table probes, clears, threads and hash collisions."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from model.labels import Labels, to_labels
from query.api.series_cache import LabelSetCache, _find, _insert


def _decode(section: bytes) -> Labels:
    """A stand-in for the protobuf decoder: the section's bytes, readable."""
    return to_labels({"raw": section.hex()})


def _counting(decoded: list[bytes]) -> Callable[[bytes], Labels]:
    """``_decode``, noting each section it is asked for in ``decoded``."""

    def decode(section: bytes) -> Labels:
        decoded.append(section)
        return _decode(section)

    return decode


def _request(sections: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sections end to end, with filler between (a section never starts at 0 or on a word)."""
    data, starts, ends = bytearray(), [], []
    for section in sections:
        data += b"\x01\x02\x03"
        starts.append(len(data))
        data += section
        ends.append(len(data))
    return np.frombuffer(bytes(data), np.uint8), np.array(starts, np.int64), np.array(ends, np.int64)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.lists(st.binary(max_size=40), max_size=30), min_size=1, max_size=6),
    st.integers(min_value=1, max_value=60),
)
def test_every_section_gets_the_label_set_its_bytes_decode_to(
    requests: list[list[bytes]], capacity: int
) -> None:
    cache = LabelSetCache(_decode, capacity=capacity)
    for sections in requests:
        assert cache.resolve(*_request(sections)) == [_decode(s) for s in sections]
        assert len(cache) <= max(capacity, len(set(sections)))


def test_a_known_series_is_the_same_object_and_only_new_ones_are_decoded() -> None:
    decoded: list[bytes] = []
    cache = LabelSetCache(_counting(decoded))
    first = [b"series-%d" % i * (i % 5 + 1) for i in range(500)]
    a = cache.resolve(*_request(first))
    b = cache.resolve(*_request([*reversed(first), b"new", b"new"]))
    assert decoded == [*first, b"new"]  # each once; the repeated new one once
    assert all(x is y for x, y in zip(a, reversed(b[:500]), strict=True))
    assert b[500] is b[501]


def test_clearing_when_full_keeps_answers_right() -> None:
    cache = LabelSetCache(_decode, capacity=100)
    for start in range(0, 1000, 70):
        sections = [b"s%d" % i for i in range(start, start + 70)]
        assert cache.resolve(*_request(sections)) == [_decode(s) for s in sections]
        assert len(cache) <= 100


def test_a_hash_collision_is_a_miss_not_a_wrong_label_set() -> None:
    """Entry 0 holds section A but is filed under B's hash, as if A and B collided: looking B up
    reaches entry 0 first, finds other bytes, and reports B as not held."""
    data, starts, ends = _request([b"section-A-bytes!", b"section-B-bytes!"])  # same length
    table = np.zeros(1024, np.int32)
    seed = np.uint64(12345)
    empty_hash, hashes, entries = np.zeros(1, np.uint64), np.empty(2, np.uint64), np.empty(2, np.int64)
    arena = data[starts[0] : ends[0]].copy()
    arena_from, arena_to = np.array([0], np.int64), np.array([len(arena)], np.int64)
    assert (
        _find(data, starts, ends, seed, table, empty_hash, arena, arena_from, arena_to, hashes, entries) == 2
    )
    entry_hash = np.array([hashes[1]], np.uint64)  # A filed under B's hash
    _insert(table, entry_hash, np.array([0], np.int64))
    assert (
        _find(data, starts, ends, seed, table, entry_hash, arena, arena_from, arena_to, hashes, entries) == 2
    )
    assert entries.tolist() == [-1, -1]
    entry_hash[0] = hashes[0]  # filed rightly: A is found, B still not
    table[:] = 0
    _insert(table, entry_hash, np.array([0], np.int64))
    assert (
        _find(data, starts, ends, seed, table, entry_hash, arena, arena_from, arena_to, hashes, entries) == 1
    )
    assert entries.tolist() == [0, -1]


def test_threads_resolving_at_once_each_get_their_own_answers() -> None:
    cache = LabelSetCache(_decode, capacity=300)  # small: clears happen while others resolve
    errors: list[str] = []

    def work(k: int) -> None:
        for round_ in range(40):
            sections = [b"t%d-%d" % (k, (round_ * 7 + i) % 250) for i in range(50)]
            if cache.resolve(*_request(sections)) != [_decode(s) for s in sections]:
                errors.append(f"thread {k} round {round_}")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_the_table_grows_and_keeps_what_it_held() -> None:
    decoded: list[bytes] = []
    cache = LabelSetCache(_counting(decoded))
    first = [b"grow-%d" % i for i in range(3000)]  # more than half of the first table's 4096 slots
    second = [b"grow-%d" % i for i in range(1500, 6000)]
    a = cache.resolve(*_request(first))
    b = cache.resolve(*_request(second))
    assert b == [_decode(s) for s in second]
    assert all(x is y for x, y in zip(a[1500:], b[:1500], strict=True))
    assert decoded == [*first, *second[1500:]]  # the first 3000 were found again after growing
    assert len(cache._table) >= 2 * len(cache)
