"""Write marks: the oldest point written since a count was read, never later than the truth."""

from __future__ import annotations

import threading

from hypothesis import given
from hypothesis import strategies as st

from store.write_marks import WriteMarks


def _truth(writes: list[int], count: int) -> int | None:
    later = writes[count:]
    return min(later) if later else None


@given(
    writes=st.lists(st.integers(-(10**12), 10**12), max_size=60),
    max_marks=st.integers(2, 80),
)
def test_the_oldest_since_any_count_is_the_truth_or_older(writes: list[int], max_marks: int) -> None:
    """Exact while the marks fit; once merged, an answer may be older than the truth (a kept
    answer then recomputes more), never newer (it would keep a step a write changed)."""
    marks = WriteMarks(max_marks)
    for ts in writes:
        marks.note(ts)
    assert marks.count == len(writes)
    for count in range(len(writes) + 1):
        truth, told = _truth(writes, count), marks.oldest_since(count)
        if truth is None:
            assert told is None
        else:
            assert told is not None
            assert told <= truth
            if len(writes) <= max_marks:
                assert told == truth


def test_in_order_writes_stay_bounded_and_exact_for_recent_counts() -> None:
    marks = WriteMarks(max_marks=16)
    for i in range(1000):
        marks.note(i * 10_000)
    assert marks.oldest_since(999) == 9_990_000
    assert marks.oldest_since(990) == 9_900_000
    assert marks.oldest_since(1000) is None
    told = marks.oldest_since(0)
    assert told is not None
    assert told <= 10_000


def test_concurrent_notes_are_all_counted() -> None:
    marks = WriteMarks()

    def write(base: int) -> None:
        for i in range(500):
            marks.note(base + i)

    threads = [threading.Thread(target=write, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert marks.count == 2000
    assert marks.oldest_since(0) == 0
