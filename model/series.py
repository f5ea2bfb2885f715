"""Samples (what collectors emit) and series (what the store returns to the query side)."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from model.labels import Labels

# Prometheus' staleness marker: a specific NaN bit pattern (value.StaleNaN = 0x7ff0000000000002).
STALE_NAN_BITS = 0x7FF0000000000002
STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]


def is_stale_nan(value: float) -> bool:
    """True only for Prometheus' staleness marker, not for an ordinary NaN."""
    return math.isnan(value) and struct.unpack("<Q", struct.pack("<d", value))[0] == STALE_NAN_BITS


@dataclass(frozen=True, slots=True)
class Sample:
    """One point of one series: ``labels`` is canonical and includes ``__name__``; ``ts_ms`` is int ms."""

    labels: Labels
    ts_ms: int
    value: float

    @property
    def name(self) -> str:
        for key, val in self.labels:
            if key == "__name__":
                return val
        return ""


Batch = list[Sample]


@dataclass(slots=True)
class Series:
    """All points of one series in a time range, sorted by time; ``labels`` includes ``__name__``."""

    labels: dict[str, str]
    ts_ms: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class StepWindows:
    """The times a selector evaluated over a range query's steps looks at: ``[t - window_ms, t]``
    for every step ``t`` of the grid that ends at ``last_ms`` and repeats every ``step_ms``.

    Why: a 24-hour dashboard steps every 2 minutes with ``[1m]`` windows, a 7-day one every 20
    minutes; every point between the windows is read, sent and dropped for nothing. A store may
    leave out points no window holds (``holds``); keeping more is never wrong.
    """

    last_ms: int
    step_ms: int
    window_ms: int

    def holds(self, ts_ms: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Which of the times (none after ``last_ms``) some window holds."""
        return (self.last_ms - ts_ms) % self.step_ms <= self.window_ms
