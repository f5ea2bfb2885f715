"""Bucket indexes follow the OTel spec (and its SDK, value for value) at every scale."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sketch.mapping import (
    DEFAULT_SCALE,
    MAX_SCALE,
    MIN_SCALE,
    ExponentialMapping,
    relative_error,
    scale_for_relative_error,
)

SCALES = [MIN_SCALE, -3, -1, 0, 1, 3, DEFAULT_SCALE, 10, MAX_SCALE]


def _edge_values() -> np.ndarray:
    rng = np.random.default_rng(7)
    return np.concatenate(
        (
            rng.lognormal(0.0, 8.0, 20_000),
            2.0 ** np.arange(-1074, 1024, dtype=np.float64),  # every power of two, subnormals included
            np.nextafter(2.0 ** np.arange(-1000, 1000, 37, dtype=np.float64), np.inf),
            [5e-324, 2.0**-1022, np.finfo(np.float64).max],
        )
    )


@pytest.mark.parametrize("scale", SCALES)
def test_indexes_match_the_otel_sdk(scale: int) -> None:
    mappings = pytest.importorskip("opentelemetry.sdk.metrics._internal.exponential_histogram.mapping")
    logarithm = pytest.importorskip(mappings.__name__ + ".logarithm_mapping")
    exponent = pytest.importorskip(mappings.__name__ + ".exponent_mapping")
    reference = logarithm.LogarithmMapping(scale) if scale > 0 else exponent.ExponentMapping(scale)
    values = _edge_values()
    expected = np.array([reference.map_to_index(float(v)) for v in values])
    np.testing.assert_array_equal(ExponentialMapping(scale).to_indexes(values), expected)


@pytest.mark.parametrize("scale", [0, 1, DEFAULT_SCALE, 12])
def test_index_is_ceil_log_base_minus_one(scale: int) -> None:
    # OTel data model: bucket i holds (base**i, base**(i+1)]; powers of two sit on upper ends.
    mapping = ExponentialMapping(scale)
    values = np.array([1.0, 2.0, 4.0, 0.5, 3.0, 1000.0, 1e-3])
    expected = [math.ceil(math.log2(v) * 2**scale) - 1 for v in values]
    assert mapping.to_indexes(values).tolist() == expected


@pytest.mark.parametrize("scale", [1, DEFAULT_SCALE, 10])
def test_values_lie_in_their_bucket(scale: int) -> None:
    mapping = ExponentialMapping(scale)
    values = np.random.default_rng(3).lognormal(0.0, 4.0, 10_000)
    indexes = mapping.to_indexes(values)
    lower = mapping.lower_boundaries(indexes)
    upper = mapping.lower_boundaries(indexes + 1)
    # A few ulps of slack: ln() and exp2() round, as in every implementation of the scheme.
    assert np.all(values > lower * (1 - 1e-12))
    assert np.all(values <= upper * (1 + 1e-12))


def test_representative_is_within_the_relative_error_of_its_bucket() -> None:
    mapping = ExponentialMapping(DEFAULT_SCALE)
    indexes = np.arange(-2000, 2000)
    lower, upper = mapping.lower_boundaries(indexes), mapping.lower_boundaries(indexes + 1)
    rep = mapping.representatives(indexes)
    alpha = mapping.relative_error
    assert np.all(rep - lower <= alpha * lower * (1 + 1e-9))
    assert np.all(upper - rep <= alpha * upper * (1 + 1e-9))


def test_scale_six_is_the_one_percent_scale() -> None:
    assert scale_for_relative_error(0.01) == 6
    assert relative_error(6) == pytest.approx(0.005415, abs=1e-6)
    assert relative_error(5) > 0.01


@pytest.mark.parametrize("scale", [MIN_SCALE - 1, MAX_SCALE + 1])
def test_rejects_scale_out_of_range(scale: int) -> None:
    with pytest.raises(ValueError, match="scale"):
        ExponentialMapping(scale)


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.1, 1e-9])
def test_rejects_unreachable_relative_error(alpha: float) -> None:
    with pytest.raises(ValueError, match="relative error"):
        scale_for_relative_error(alpha)
