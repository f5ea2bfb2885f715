"""The in-memory querier used by tests and the conformance runner."""

from __future__ import annotations

from model.labels import Matcher, MatchOp
from store.memory import MemoryStore


def test_select_filters_by_matchers_and_time() -> None:
    store = MemoryStore()
    for t in range(5):
        store.append({"__name__": "up", "job": "a"}, t * 1000, float(t))
        store.append({"__name__": "up", "job": "b"}, t * 1000, float(t))
    found = store.select([Matcher("job", MatchOp.RE, "a|c")], 1000, 3000)
    assert len(found) == 1
    assert found[0].ts_ms.tolist() == [1000, 2000, 3000]
    assert found[0].values.tolist() == [1.0, 2.0, 3.0]


def test_later_append_at_same_time_wins_and_clear_empties() -> None:
    store = MemoryStore()
    store.append({"__name__": "x"}, 0, 1.0)
    store.append({"__name__": "x"}, 0, 2.0)
    assert store.select([], 0, 0)[0].values.tolist() == [2.0]
    store.clear()
    assert store.select([], 0, 0) == []


def test_label_names_and_values() -> None:
    store = MemoryStore()
    store.append({"__name__": "x", "a": "1"}, 0, 1.0)
    store.append({"__name__": "y", "b": "2"}, 0, 1.0)
    assert store.label_names([], 0, 0) == ["__name__", "a", "b"]
    assert store.label_values("__name__", [], 0, 0) == ["x", "y"]
