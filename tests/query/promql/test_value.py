"""Result JSON exactly as Prometheus' HTTP API writes it."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.series import STALE_NAN
from query.promql import value
from query.promql.value import (
    Matrix,
    MatrixSeries,
    Sample,
    Scalar,
    String,
    Vector,
    format_float,
    format_floats,
    format_time,
    to_api_json,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.5, "1.5"),
        (5.0, "5"),
        (0.0, "0"),
        (-0.0, "-0"),
        (1e21, "1000000000000000000000"),
        (1e-7, "0.0000001"),
        (1 / 3, "0.3333333333333333"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (math.nan, "NaN"),
        (-2.5, "-2.5"),
    ],
)
def test_format_float_is_gos_f_minus_one(value: float, text: str) -> None:
    assert format_float(value) == text


def test_vector_json() -> None:
    value = Vector(1_500, [Sample({"__name__": "up", "job": "a"}, 1.0)])
    assert to_api_json(value) == {
        "resultType": "vector",
        "result": [{"metric": {"__name__": "up", "job": "a"}, "value": [1.5, "1"]}],
    }


def _as_json(data: object) -> object:
    return json.loads(json.dumps(data))


def test_matrix_json() -> None:
    series = MatrixSeries({"job": "a"}, np.array([1000, 2000]), np.array([1.0, 2.5]))
    assert _as_json(to_api_json(Matrix([series]))) == {
        "resultType": "matrix",
        "result": [{"metric": {"job": "a"}, "values": [[1, "1"], [2, "2.5"]]}],
    }


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(st.integers(-(10**12), 10**13), st.floats(width=64)), max_size=30),
        max_size=8,
    )
)
def test_matrix_json_is_each_series_on_its_own(raw: list[list[tuple[int, float]]]) -> None:
    """All series are formatted in one pass; each must still get exactly its own points."""
    matrix = Matrix(
        [
            MatrixSeries(
                {"i": str(i)},
                np.array([t for t, _ in points], np.int64),
                np.array([v for _, v in points], np.float64),
            )
            for i, points in enumerate(raw)
        ]
    )
    expected = [
        {"metric": {"i": str(i)}, "values": [[format_time(t), format_float(v)] for t, v in points]}
        for i, points in enumerate(raw)
    ]
    assert _as_json(to_api_json(matrix)) == {"resultType": "matrix", "result": expected}


def test_scalar_and_string_json() -> None:
    assert to_api_json(Scalar(2000, 3.0)) == {"resultType": "scalar", "result": [2, "3"]}
    assert to_api_json(String(2000, "x")) == {"resultType": "string", "result": [2, "x"]}


_EDGES = [0.0, -0.0, 1e15, -1e15, 1e15 - 1, 1e16, 1e-4, -1e-4, 9.999999e-5, 0.5, -7.0, 2.0**53, STALE_NAN]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.one_of(st.floats(width=64), st.sampled_from(_EDGES)), max_size=200))
def test_format_floats_is_format_float_of_each(values: list[float]) -> None:
    """The array path (a range answer's values) writes exactly what the one-by-one path writes."""
    assert format_floats(np.array(values, np.float64)) == [format_float(v) for v in values]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=500))
def test_format_floats_agrees_on_any_bit_pattern(bits: list[int]) -> None:
    """Shortest digits by orjson, checked against ``repr`` over arbitrary doubles (every exponent,
    every mantissa), not only the values a test author thinks of."""
    values = [struct.unpack("<d", struct.pack("<Q", b))[0] for b in bits]
    # Most random bit patterns are huge or tiny: scale half of them into the range orjson serves.
    values += [math.ldexp(math.frexp(v)[0], e % 50 - 13) for v, e in zip(values, bits, strict=True)]
    assert format_floats(np.array(values, np.float64)) == [format_float(v) for v in values]


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.lists(
            st.tuples(
                st.integers(-(10**12), 10**13),
                st.one_of(st.floats(width=64), st.sampled_from(_EDGES)),
            ),
            max_size=4,
        ),
        max_size=4,
    )
)
def test_few_points_render_as_the_whole_array_path_does(raw: list[list[tuple[int, float]]]) -> None:
    """A refresh's newest steps are a few points, written one by one (``_FEW_POINTS``): the same
    text and the same point offsets as the array path writes for any number of points."""
    series = [
        MatrixSeries(
            {"i": str(i)},
            np.array([t for t, _ in points], np.int64),
            np.array([v for _, v in points], np.float64),
        )
        for i, points in enumerate(raw)
    ]
    assert sum(len(points) for points in raw) <= value._FEW_POINTS
    few = value.render_points(series)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(value, "_FEW_POINTS", -1)
        whole = value.render_points(series)
    assert [text for text, _ in few] == [text for text, _ in whole]
    assert [offsets.tolist() for _, offsets in few] == [offsets.tolist() for _, offsets in whole]
    body = value.matrix_data_json(
        [MatrixSeries(s.labels, s.ts_ms, s.values, t) for s, (t, _) in zip(series, few, strict=True)]
    )
    assert json.loads(body) == _as_json(to_api_json(Matrix(series)))
