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
