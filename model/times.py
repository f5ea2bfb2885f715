"""The instants infersight can keep: what ClickHouse's ``DateTime`` holds, in epoch milliseconds.

Every table is partitioned by day through ``DateTime`` (unsigned 32-bit seconds), so a time past
2106 wraps to a wrong day, and a later one stops an insert. Inputs dated outside these bounds are
refused or skipped where they enter (samples, sketch rows, exemplars, events, audit traces).
"""

from __future__ import annotations

MIN_TIME_MS = 0
MAX_TIME_MS = 4_291_747_199_999  # 2105-12-31T23:59:59.999Z
