"""The all-series numpy paths give exactly what the per-series / per-step paths give."""

from __future__ import annotations

import math

import numpy as np
import promql_parser as pp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.series import STALE_NAN
from query.promql import aggregations, engine, histogram, range_functions
from query.promql.blocks import Col, RangeBlock, RangeSeries, ScalarBlock, VectorBlock
from query.promql.engine import Engine
from query.promql.histogram import bucket_quantile
from store.memory import MemoryStore
from tests.query.promql import go_rate


def _counter_block(seed: int, n_series: int, names: int = 1) -> RangeBlock:
    rng = np.random.default_rng(seed)
    series = []
    for i in range(n_series):
        n = int(rng.integers(0, 60))
        ts = np.sort(rng.choice(np.arange(0, 3_600_000, 1000), size=n, replace=False)).astype(np.int64)
        vs = np.cumsum(rng.integers(0, 50, size=n)).astype(np.float64) * 0.1
        resets = rng.random(n) < 0.05
        vs = np.where(resets, rng.random(n), vs)  # counter resets (drops) now and then
        series.append(RangeSeries({"__name__": f"m{i % names}", "i": str(i)}, ts, vs))
    refs = np.arange(0, 3_700_000, 37_000, dtype=np.int64)
    return RangeBlock(series, refs, 300_000)


_RATES = {"rate": (True, True), "increase": (True, False), "delta": (False, False)}


def _assert_rates_equal_prometheus(name: str, block: RangeBlock) -> None:
    flat = range_functions._rate_all_series(name, block)
    got = {c.labels["i"]: c for c in flat.cols}
    for s in block.series:
        lo = np.searchsorted(s.ts, block.refs - block.range_ms, "left")
        hi = np.searchsorted(s.ts, block.refs, "right")
        expected = [
            go_rate.extrapolated_rate(s.ts[a:b], s.values[a:b], ref, block.range_ms, *_RATES[name])
            for a, b, ref in zip(lo.tolist(), hi.tolist(), block.refs.tolist(), strict=True)
        ]
        present = [e is not None for e in expected]
        if not any(present):
            assert s.labels["i"] not in got
            continue
        col = got[s.labels["i"]]
        assert col.mask.tolist() == present
        for value, e in zip(col.values.tolist(), expected, strict=True):
            assert e is None or value == e or (math.isnan(value) and math.isnan(e))


@pytest.mark.parametrize("name", ["rate", "increase", "delta"])
@pytest.mark.parametrize("seed", range(5))
def test_rate_of_all_series_equals_prometheus_window_by_window(name: str, seed: int) -> None:
    _assert_rates_equal_prometheus(name, _counter_block(seed, 30))


def test_rate_of_all_series_keeps_distinct_names_distinct() -> None:
    block = _counter_block(1, 6, names=2)
    flat = range_functions._rate_all_series("rate", block)
    assert len({tuple(sorted(c.labels.items())) for c in flat.cols}) == len(flat.cols)


@pytest.mark.parametrize("odd", [math.nan, math.inf, -math.inf])
def test_rate_of_all_series_with_non_finite_values_equals_prometheus(odd: float) -> None:
    block = _counter_block(2, 6)
    filled = [s for s in block.series if len(s.values) > 3]
    filled[0].values[3] = odd
    filled[1].values[-1] = odd
    for name in _RATES:
        _assert_rates_equal_prometheus(name, block)


BOUNDS = ["0.1", "0.5", "1", "5", "+Inf"]


@pytest.mark.parametrize("seed", range(10))
def test_histogram_quantile_all_steps_equals_per_step(seed: int) -> None:
    rng = np.random.default_rng(seed)
    steps = 50
    counts = np.cumsum(rng.integers(0, 5, size=(len(BOUNDS), steps)), axis=0).astype(np.float64)
    counts[:, :3] = 0  # no observations: NaN
    if seed % 2:
        counts[1] -= 2  # not monotonic: ensureMonotonic must repair it
    mask = rng.random(steps) < 0.8
    cols = [Col({"__name__": "h_bucket", "le": le}, counts[i], mask.copy()) for i, le in enumerate(BOUNDS)]
    phi = rng.choice([0.0, 0.25, 0.5, 0.9, 0.99, 1.0, -1.0, 2.0], size=steps)
    out = histogram.histogram_quantile(None, [ScalarBlock(phi), VectorBlock(cols)], np.arange(steps))
    assert isinstance(out, VectorBlock)
    (col,) = out.cols
    bounds = [float(b) for b in BOUNDS]
    for i in np.flatnonzero(mask):
        expected = bucket_quantile(float(phi[i]), list(zip(bounds, counts[:, i].tolist(), strict=True)))
        got = float(col.values[i])
        assert got == expected or (math.isnan(got) and math.isnan(expected)), (i, phi[i], got, expected)
    assert (col.mask == mask).all()
    fast = histogram._all_steps(phi, bounds, counts, np.stack([mask] * len(BOUNDS)))
    assert fast is not None  # the comparison above went through the numpy path


def test_laid_end_to_end_reuses_consecutive_slices_and_copies_the_rest() -> None:
    from query.promql.blocks import laid_end_to_end

    base = np.arange(20_000, dtype=np.int64)
    consecutive = [base[2:5000], base[5000:5000], base[5000:11000]]
    joined = laid_end_to_end(consecutive)
    assert joined.tolist() == list(range(2, 11000))
    assert np.shares_memory(joined, base)
    gap = [base[2:5000], base[5001:9000]]
    assert laid_end_to_end(gap).tolist() == [*range(2, 5000), *range(5001, 9000)]
    assert not np.shares_memory(laid_end_to_end(gap), base)
    mixed = [base[0:2000], np.arange(7, 3007, dtype=np.int64)]
    assert laid_end_to_end(mixed).tolist() == [*range(2000), *range(7, 3007)]
    short = [base[2:5], base[5:11]]  # a few points each: copied, cheaper than the check
    assert laid_end_to_end(short).tolist() == list(range(2, 11))
    assert not np.shares_memory(laid_end_to_end(short), base)
    assert laid_end_to_end([base[3:3]]).tolist() == []


def _latest_one_by_one(
    pairs: list[tuple[np.ndarray, np.ndarray]], refs: np.ndarray, lookback: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prometheus' instant selector, series by series: the latest point at or before each step."""
    values, present, sample_ts = [], [], []
    for times, sv in pairs:
        if not len(times):
            values.append(np.zeros(len(refs)))
            sample_ts.append(np.zeros(len(refs), np.int64))
            present.append(np.zeros(len(refs), bool))
            continue
        idx = np.searchsorted(times, refs, "right") - 1
        ok = idx >= 0
        idx = np.maximum(idx, 0)
        values.append(sv[idx])
        sample_ts.append(times[idx])
        ok &= (times[idx] >= refs - lookback) & ~engine.is_stale(sv[idx])
        present.append(ok)
    return np.array(values), np.array(present), np.array(sample_ts)


@settings(deadline=None)  # the first example may compile a kernel (numba)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_series=st.integers(1, 30),
    lookback=st.sampled_from([1, 1_000, 300_000]),
    shift=st.sampled_from([0, -(10**15), 10**15]),
)
def test_latest_points_of_all_series_equal_each_series_searched_alone(
    seed: int, n_series: int, lookback: int, shift: int
) -> None:
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range(n_series):
        n = int(rng.integers(1, 40))
        ts = np.sort(rng.choice(np.arange(-600_000, 1_800_000, 1000), size=n, replace=False)) + shift
        vs = rng.normal(size=n)
        vs[rng.random(n) < 0.1] = STALE_NAN  # staleness markers now and then
        pairs.append((ts.astype(np.int64), vs))
    refs = np.arange(-700_000, 2_000_000, int(rng.integers(1, 200)) * 1000, dtype=np.int64) + shift
    latest = engine._latest_points(pairs, refs, lookback)
    assert latest is not None
    want = _latest_one_by_one(pairs, refs, lookback)
    np.testing.assert_array_equal(latest[1], want[1])
    np.testing.assert_array_equal(np.where(want[1], latest[2], 0), np.where(want[1], want[2], 0))
    same = np.where(want[1], latest[0], 0.0).view(np.uint64) == np.where(want[1], want[0], 0.0).view(
        np.uint64
    )
    assert same.all()


def test_latest_points_of_far_apart_times_and_series_without_points() -> None:
    pairs = [
        (np.array([-(2**61), 5], np.int64), np.array([1.0, STALE_NAN])),
        (np.zeros(0, np.int64), np.zeros(0)),
        (np.array([2**61], np.int64), np.array([2.0])),
    ]
    refs = np.array([-(2**61), 0, 10, 2**61, 7], np.int64)  # the last step earlier than the one before
    values, present, sample_ts = engine._latest_points(pairs, refs, 2**62)
    want = _latest_one_by_one(pairs, refs, 2**62)
    np.testing.assert_array_equal(present, want[1])
    np.testing.assert_array_equal(np.where(present, values, 0.0), np.where(want[1], want[0], 0.0))
    np.testing.assert_array_equal(np.where(present, sample_ts, 0), np.where(want[1], want[2], 0))
    assert present.tolist() == [
        [True, True, False, False, False],
        [False] * 5,
        [False, False, False, True, False],
    ]
    empty = engine._latest_points([], refs, 1)
    assert [a.shape for a in empty] == [(0, 5)] * 3


def test_instant_selectors_in_blocks_of_series_answer_as_in_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Series are searched in blocks bounded in points; any block size gives the same answer,
    including series without points in range and staleness markers."""
    store = MemoryStore()
    rng = np.random.default_rng(3)
    for i in range(23):
        for t in np.sort(rng.choice(np.arange(0, 3_600_000, 5_000), size=40, replace=False)).tolist():
            value = STALE_NAN if rng.random() < 0.05 else float(rng.normal())
            store.append({"__name__": "m", "i": str(i)}, int(t), value)
    queries = ["m", "sum by (i) (m)", "timestamp(m)", "count(m)"]
    whole = {q: Engine(store).range(q, 0, 3_600_000, 30_000) for q in queries}
    for rows_points in (1, 7, 120, 1 << 20):
        monkeypatch.setattr(engine, "_LATEST_BLOCK_POINTS", rows_points)
        for q in queries:
            got = Engine(store).range(q, 0, 3_600_000, 30_000)
            assert [s.labels for s in got.series] == [s.labels for s in whole[q].series]
            for a, b in zip(got.series, whole[q].series, strict=True):
                np.testing.assert_array_equal(a.ts_ms, b.ts_ms)
                np.testing.assert_array_equal(a.values, b.values)


@settings(deadline=None)  # the first example may compile a kernel (numba)
@given(
    values=st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.sampled_from([0.0, -0.0, math.inf, -math.inf, math.nan]),
        ),
        min_size=1,
        max_size=30,
    ),
    seed=st.integers(0, 2**16),
)
@pytest.mark.parametrize("op", ["avg", "min", "max"])
def test_a_group_of_one_is_what_the_fold_gives(op: str, values: list[float], seed: int) -> None:
    """The shortcut for a group of one member gives, bit for bit, what the general fold does."""
    rng = np.random.default_rng(seed)
    col = Col({"a": "1"}, np.array(values), rng.random(len(values)) < 0.7)
    fold = aggregations.FOLDERS[op]
    with np.errstate(all="ignore"):
        short = fold([col], len(values))
        # the general fold, made to run by a second member that is never present
        absent = Col({"a": "2"}, np.zeros(len(values)), np.zeros(len(values), dtype=bool))
        folded = fold([col, absent], len(values))
    np.testing.assert_array_equal(short[1], folded[1])
    assert (short[0].view(np.uint64) == folded[0].view(np.uint64)).all()


def _folded_one_by_one(op: str, cols: list[Col], names: list[str], n: int) -> dict[tuple, tuple]:
    """``sum``/``count``/``group`` by ``names`` as defined: groups in order of first member, each
    member added in turn where present (Prometheus 2.42's arithmetic, in its order)."""
    groups: dict[tuple, list[Col]] = {}
    for c in cols:
        groups.setdefault(tuple((k, c.labels[k]) for k in sorted(names) if c.labels.get(k)), []).append(c)
    out = {}
    for key, members in groups.items():
        total, count = np.zeros(n), np.zeros(n)
        for c in members:
            for i in range(n):
                if c.mask[i]:
                    with np.errstate(all="ignore"):
                        total[i] = total[i] + c.values[i]
                    count[i] += 1
        out[key] = ({"sum": total, "count": count, "group": np.ones(n)}[op], count > 0)
    return out


MAGNITUDES = st.sampled_from([1e-300, 1e-3, 1.0, 3.0, 1e15, 1e16, 1e300, math.inf, -math.inf, math.nan])


@pytest.mark.parametrize("op", ["sum", "count", "group"])
@settings(deadline=None)  # the first example may compile a kernel (numba)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_cols=st.integers(0, 60),
    n_steps=st.integers(1, 6),
    groups=st.integers(1, 12),
    by=st.sampled_from([(), ("g",), ("g", "h"), ("missing",)]),
    scales=st.lists(MAGNITUDES, min_size=1, max_size=4),
)
def test_folding_groups_together_is_bit_for_bit_the_fold_one_by_one(
    op: str, seed: int, n_cols: int, n_steps: int, groups: int, by: tuple, scales: list[float]
) -> None:
    """Sums whose order matters (1e16 + 1 - 1e16), infinities and NaN: the groups folded at once, or
    by rank, or by running sums, give the bits of adding each member in turn."""
    rng = np.random.default_rng(seed)
    cols = []
    for i in range(n_cols):
        scale = scales[int(rng.integers(len(scales)))]
        values = rng.choice([-1.0, 1.0], n_steps) * scale * rng.integers(1, 4, n_steps)
        labels = {"g": str(int(rng.integers(groups))), "h": str(int(rng.integers(2))), "i": str(i)}
        cols.append(Col(labels, values, rng.random(n_steps) < 0.8))
    node = pp.parse(f"{op} by ({', '.join(by)}) (x)" if by else f"{op}(x)")
    with np.errstate(all="ignore"):
        got = aggregations.evaluate(node, VectorBlock(cols), None)
    want = _folded_one_by_one(op, cols, list(by), n_steps)
    assert [tuple(sorted(c.labels.items())) for c in got.cols] == list(want)
    for col, (values, present) in zip(got.cols, want.values(), strict=True):
        np.testing.assert_array_equal(col.mask, present)
        got_values, want_values = np.where(present, col.values, 0.0), np.where(present, values, 0.0)
        # every NaN is the same answer (``NaN`` in JSON); every other value bit for bit
        np.testing.assert_array_equal(np.isnan(got_values), np.isnan(want_values))
        numbers = ~np.isnan(want_values)
        assert (got_values[numbers].view(np.uint64) == want_values[numbers].view(np.uint64)).all()
