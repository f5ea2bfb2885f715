"""The store's ``select`` yields series in Prometheus' order, by their labels, whichever way the read
is answered (points in memory or the tables), so the engine takes that order as it is.

The order is not cosmetic: an aggregation adds its members in it, and a float sum's bits depend on
the order of its terms.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model.labels import Matcher, MatchOp, to_labels
from model.series import Sample
from store.open import Store, open_store
from store.reads import ClickHouseQuerier

T0 = 1_700_000_000_000
LATER = T0 + 10 * 3_600_000  # past the window kept in memory: reads around T0 go to the tables
LABEL_VALUES = st.text(alphabet="abcAB-_09", min_size=1, max_size=6)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    label_sets=st.lists(
        st.fixed_dictionaries(
            {"__name__": st.sampled_from(["m_a", "m_b", "m"]), "pod": LABEL_VALUES},
            optional={"zone": LABEL_VALUES, "a": LABEL_VALUES},
        ),
        min_size=1,
        max_size=25,
        unique_by=lambda labels: to_labels(labels),
    )
)
def test_series_come_in_their_labels_order(tmp_path_factory, label_sets: list[dict[str, str]]) -> None:
    store = open_store(f"chdb://{tmp_path_factory.mktemp('order') / 'data'}")
    try:
        store.writer.write([Sample(to_labels(labels), t, 1.0) for labels in label_sets for t in (T0, LATER)])
        querier = ClickHouseQuerier(store.backend)
        matchers = [Matcher("__name__", MatchOp.RE, "m.*")]
        expected = sorted(to_labels(labels) for labels in label_sets)
        assert querier.recent is not None
        assert not querier.recent.covers(T0 - 60_000)
        for start, end in ((T0 - 60_000, T0), (LATER - 60_000, LATER)):  # the tables, then memory
            series = querier.select(matchers, start, end)
            assert [to_labels(s.labels) for s in series] == expected
            assert list(querier.find_series(matchers, start, end).values()) == [
                dict(labels) for labels in expected
            ]
    finally:
        store.close()


def test_a_series_written_after_the_look_up_is_left_for_the_next_read(chdb_store: Store) -> None:
    chdb_store.writer.write([Sample(to_labels({"__name__": "m", "pod": "b"}), T0, 1.0)])
    querier = ClickHouseQuerier(chdb_store.backend)
    querier.recent = None
    matchers = [Matcher("__name__", MatchOp.EQ, "m")]
    assert [s.labels["pod"] for s in querier.select(matchers, T0 - 1, T0)] == ["b"]
    chdb_store.writer.write([Sample(to_labels({"__name__": "m", "pod": "a"}), T0, 1.0)])
    assert [s.labels["pod"] for s in querier.select(matchers, T0 - 1, T0)] == ["a", "b"]
