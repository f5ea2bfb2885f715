"""Result JSON exactly as Prometheus' HTTP API writes it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from query.promql.value import Matrix, MatrixSeries, Sample, Scalar, String, Vector, format_float, to_api_json


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


def test_matrix_json() -> None:
    series = MatrixSeries({"job": "a"}, np.array([1000, 2000]), np.array([1.0, 2.5]))
    assert to_api_json(Matrix([series])) == {
        "resultType": "matrix",
        "result": [{"metric": {"job": "a"}, "values": [[1, "1"], [2, "2.5"]]}],
    }


def test_scalar_and_string_json() -> None:
    assert to_api_json(Scalar(2000, 3.0)) == {"resultType": "scalar", "result": [2, "3"]}
    assert to_api_json(String(2000, "x")) == {"resultType": "string", "result": [2, "x"]}
