"""Rollup buckets: what the store keeps per series and time bucket, and hands the query side.

A bucket is ``(end - width, end]``, closed on the right like a Prometheus window, so a window
``[t - range, t]`` whose ends are multiples of the width is a run of whole buckets plus, at most,
one point exactly at ``t - range`` (the last point of the bucket ending there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

WIDTHS_MS = (60_000, 300_000, 900_000, 3_600_000)


def widest_tiling(widths: tuple[int, ...], range_ms: int, times: npt.NDArray[np.int64]) -> int | None:
    """The widest width dividing ``range_ms`` and every time in ``times``: windows of that range
    ending at those times are runs of whole buckets. None when no width does."""
    for width in sorted(widths, reverse=True):
        if range_ms % width == 0 and not (times % width).any():
            return width
    return None


# Per bucket, in this order (``rollups`` table columns after the key). ``prev_*`` is the point
# before the last (irate/idelta); ``correction`` the sum of values before each drop (counter
# resets), ``resets``/``changes`` the drops and value changes between consecutive points — all
# within the bucket. ``min``/``max``/``sum`` are only used where ``nonfinite`` is 0.
BUCKET_COLUMNS = (
    "count",
    "sum",
    "min",
    "max",
    "nonfinite",
    "first_ts",
    "first_value",
    "last_ts",
    "last_value",
    "prev_ts",
    "prev_value",
    "correction",
    "resets",
    "changes",
)


# Always read: they place a window's start point and find non-finite values.
BASE_COLUMNS = ("count", "nonfinite", "last_ts", "last_value")


@dataclass(slots=True)
class Buckets:
    """Non-empty buckets of one width for several series, laid end to end.

    Series ``i`` (``labels[i]``, with ``__name__``) owns rows ``starts[i]:starts[i + 1]``, sorted by
    ``end_ms``; ``columns`` holds the ``BUCKET_COLUMNS`` that were asked for, one value per row.
    One block rather than an object per series: the query side works on all rows at once.
    """

    labels: list[dict[str, str]]
    starts: npt.NDArray[np.int64]
    end_ms: npt.NDArray[np.int64]
    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.end_ms)
