"""Value → bucket index of the OpenTelemetry / Prometheus native-histogram exponential scheme.

At scale ``s`` the base is ``2 ** (2 ** -s)`` and bucket ``i`` holds values in ``(base**i, base**(i+1)]``
(OTel data model, "ExponentialHistogram": ``index = ceil(log_base(v)) - 1``). Prometheus native
histograms use the same boundaries with schema = scale and index + 1 (their bucket ``i`` is
``(base**(i-1), base**i]``). The index is computed the way the OTel SDK's ``LogarithmMapping``
does (``floor(ln v · 2**s / ln 2)``, exact powers of two special-cased, subnormals in one bucket),
but on whole numpy arrays: one ``log`` per value, no Python loop.
"""

from __future__ import annotations

import functools
import math

import numpy as np

MIN_SCALE = -10
MAX_SCALE = 20  # the OTel SDK's limit: every index fits an Int32 at scale 20
DEFAULT_SCALE = 6  # relative error 0.54 %: the ≤ 1 % bound with room to spare

_MIN_NORMAL_EXPONENT = -1022  # IEEE 754 binary64
_MAX_NORMAL_EXPONENT = 1023
_MIN_NORMAL_VALUE = 2.0**_MIN_NORMAL_EXPONENT


def relative_error(scale: int) -> float:
    """Worst relative error of a value read back from its bucket: ``(base - 1) / (base + 1)``.

    The representative of ``(l, u]`` is the harmonic-style midpoint ``2lu / (l + u)``, whose
    distance to either end is the same fraction of that end (the DDSketch argument).
    """
    base = _base(scale)
    return 1.0 if math.isinf(base) else (base - 1.0) / (base + 1.0)


def scale_for_relative_error(alpha: float) -> int:
    """Smallest scale whose :func:`relative_error` is ≤ ``alpha`` (0.01 → 6)."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"relative error must be in (0, 1), got {alpha}")
    for scale in range(MIN_SCALE, MAX_SCALE + 1):
        if relative_error(scale) <= alpha:
            return scale
    raise ValueError(f"relative error {alpha} needs a scale above {MAX_SCALE}")


class ExponentialMapping:
    """Bucket indexes and boundaries at one scale. ``ExponentialMapping(6).to_indexes(np.array([1.5]))``."""

    __slots__ = ("_factor", "_max_index", "_min_index", "base", "relative_error", "scale")

    def __init__(self, scale: int = DEFAULT_SCALE) -> None:
        if not MIN_SCALE <= scale <= MAX_SCALE:
            raise ValueError(f"scale must be in [{MIN_SCALE}, {MAX_SCALE}], got {scale}")
        self.scale = scale
        self.base = _base(scale)
        self.relative_error = relative_error(scale)
        # OTel's multiplier: index = ln(v) · 2**scale / ln 2.
        self._factor = math.ldexp(1.0 / math.log(2.0), scale)
        # Indexes of the smallest normal (2**-1022, scale-0 index -1023) and the largest finite value.
        self._min_index = _power_of_two_index(_MIN_NORMAL_EXPONENT, scale)
        self._max_index = _power_of_two_index(_MAX_NORMAL_EXPONENT + 1, scale)

    def to_indexes(self, magnitudes: np.ndarray) -> np.ndarray:
        """Bucket index (int64) of each positive, finite value."""
        mantissa, exponent = np.frexp(magnitudes)  # v = m · 2**e, m in [0.5, 1)
        power_of_two = mantissa == 0.5
        index: np.ndarray
        if self.scale > 0:
            with np.errstate(divide="ignore"):
                index = np.floor(np.log(magnitudes) * self._factor).astype(np.int64)
            # ln is inexact at exact powers of two; there the lower boundary itself is the value.
            if power_of_two.any():
                exact = ((exponent[power_of_two].astype(np.int64) - 1) << self.scale) - 1
                index[power_of_two] = exact
        else:
            index = (exponent.astype(np.int64) - 1 - power_of_two) >> -self.scale
        # Subnormals share the bucket below the smallest normal, as in the OTel SDK.
        index[magnitudes <= _MIN_NORMAL_VALUE] = self._min_index
        np.minimum(index, self._max_index, out=index)
        return index

    def lower_boundaries(self, indexes: np.ndarray) -> np.ndarray:
        """``base ** index``: the exclusive lower end of each bucket."""
        return np.exp2(np.ldexp(indexes.astype(np.float64), -self.scale))

    def representatives(self, indexes: np.ndarray) -> np.ndarray:
        """Value read back per bucket: ``2lu / (l + u)``, within :attr:`relative_error` of all of it."""
        return self.lower_boundaries(indexes) * (2.0 * self.base / (1.0 + self.base))


@functools.lru_cache(maxsize=64)
def mapping_for(scale: int) -> ExponentialMapping:
    """The shared mapping of a scale (a mapping holds no state; sketches of one scale share it)."""
    return ExponentialMapping(scale)


def _base(scale: int) -> float:
    # 2**(2**10) overflows a double: at scale -10 two buckets span every float.
    return math.inf if scale <= -10 else 2.0 ** (2.0**-scale)


def _power_of_two_index(exponent: int, scale: int) -> int:
    """Index of the bucket whose upper end is ``2 ** exponent``."""
    return ((exponent << scale) - 1) if scale > 0 else (exponent - 1) >> -scale
