"""Both stores (chDB and a ClickHouse server): writes read back exactly; matchers act as Prometheus's."""

from __future__ import annotations

import math

import pytest

from model.labels import Matcher, MatchOp, to_labels
from model.series import STALE_NAN, Sample, is_stale_nan
from store.open import Store

T0 = 1_700_000_000_000


def _sample(name: str, ts_ms: int, value: float, **labels: str) -> Sample:
    return Sample(to_labels({"__name__": name, **labels}), ts_ms, value)


def _load(store: Store) -> None:
    batch = []
    for i in range(10):
        ts = T0 + i * 10_000
        batch.append(_sample("req_total", ts, float(i), code="2xx", service_id="a"))
        batch.append(_sample("req_total", ts, float(2 * i), code="5xx", service_id="a"))
        batch.append(_sample("req_total", ts, float(3 * i), code="2xx", service_id="b"))
        batch.append(_sample("other", ts, 1.0, service_id="a"))
    store.writer.write(batch)


def _select(store: Store, *matchers: Matcher, start: int = T0, end: int = T0 + 100_000):
    return sorted(store.querier.select(list(matchers), start, end), key=lambda s: sorted(s.labels.items()))


def test_roundtrip_exact(store: Store) -> None:
    _load(store)
    series = _select(store, Matcher("__name__", MatchOp.EQ, "req_total"))
    assert [s.labels for s in series] == [
        {"__name__": "req_total", "code": "2xx", "service_id": "a"},
        {"__name__": "req_total", "code": "2xx", "service_id": "b"},
        {"__name__": "req_total", "code": "5xx", "service_id": "a"},
    ]
    assert series[1].values.tolist() == [3.0 * i for i in range(10)]
    assert series[0].ts_ms.tolist() == [T0 + i * 10_000 for i in range(10)]


@pytest.mark.parametrize(
    ("matcher", "expected_codes"),
    [
        (Matcher("code", MatchOp.EQ, "5xx"), ["5xx"]),
        (Matcher("code", MatchOp.NE, "5xx"), ["2xx", "2xx"]),
        (Matcher("code", MatchOp.RE, "2.."), ["2xx", "2xx"]),
        (Matcher("code", MatchOp.RE, "2"), []),  # anchored: "2" does not match "2xx"
        (Matcher("code", MatchOp.NRE, "2..|4.."), ["5xx"]),
        (Matcher("missing", MatchOp.EQ, ""), ["2xx", "2xx", "5xx"]),  # absent label reads as ""
    ],
)
def test_matchers(store: Store, matcher: Matcher, expected_codes: list[str]) -> None:
    _load(store)
    series = _select(store, Matcher("__name__", MatchOp.EQ, "req_total"), matcher)
    assert sorted(s.labels["code"] for s in series) == sorted(expected_codes)


def test_time_range_is_inclusive_and_pushed_down(store: Store) -> None:
    _load(store)
    series = _select(store, Matcher("service_id", MatchOp.EQ, "b"), start=T0 + 20_000, end=T0 + 40_000)
    assert series[0].ts_ms.tolist() == [T0 + 20_000, T0 + 30_000, T0 + 40_000]


@pytest.mark.parametrize(
    "nasty",
    [
        "o'x",
        'a"b',
        "back\\slash",
        "'; DROP TABLE samples; --",
        "{lv0:String}",
        "ü✓",
        "tab\there",
        "nl\nx",
        "x\\ty",
    ],
)
def test_label_values_with_sql_metacharacters_match_literally(store: Store, nasty: str) -> None:
    store.writer.write([_sample("m", T0, 1.0, v=nasty), _sample("m", T0, 2.0, v="plain")])
    series = _select(store, Matcher("v", MatchOp.EQ, nasty))
    assert [s.labels["v"] for s in series] == [nasty]
    assert sorted(store.querier.label_values("v", [], T0, T0)) == sorted([nasty, "plain"])


def test_nan_inf_and_stale_marker_survive(store: Store) -> None:
    store.writer.write(
        [_sample("g", T0, math.nan), _sample("g", T0 + 1, math.inf), _sample("g", T0 + 2, STALE_NAN)]
    )
    (series,) = _select(store, Matcher("__name__", MatchOp.EQ, "g"))
    assert math.isnan(series.values[0])
    assert not is_stale_nan(float(series.values[0]))
    assert series.values[1] == math.inf
    assert is_stale_nan(float(series.values[2]))


def test_replayed_batch_is_not_duplicated(store: Store) -> None:
    batch = [_sample("c", T0 + i, float(i)) for i in range(5)]
    store.writer.write(batch)
    store.writer.write(batch)
    (series,) = _select(store, Matcher("__name__", MatchOp.EQ, "c"))
    assert series.values.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_label_names_and_values(store: Store) -> None:
    _load(store)
    q = store.querier
    assert q.label_names([], T0, T0) == ["__name__", "code", "service_id"]
    assert q.label_names([Matcher("__name__", MatchOp.EQ, "other")], T0, T0) == ["__name__", "service_id"]
    assert q.label_values("__name__", [], T0, T0) == ["other", "req_total"]
    assert q.label_values("code", [Matcher("service_id", MatchOp.EQ, "b")], T0, T0) == ["2xx"]
    # A range on a day with no data finds nothing.
    assert q.label_names([], T0 - 10 * 86_400_000, T0 - 9 * 86_400_000) == []
