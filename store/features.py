"""What the connected ClickHouse can do, from its version: newer schema features only where present.

ClickHouse 18.16 (Debian's server) has none of LowCardinality (experimental then), column codecs,
TTL or async inserts; chDB 26.x has them all. The schema and the writers ask ``Features``, never
the version string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from store.backend import Backend

# First release where each feature is generally available (not behind an experimental flag).
_SINCE: dict[str, tuple[int, int]] = {
    "low_cardinality": (19, 3),
    "codecs": (20, 1),  # DoubleDelta/Gorilla arrive in 19.x; 20.1 has every codec the schema names
    "ttl": (19, 6),
    "async_insert": (21, 11),
    "dedup_token": (22, 2),  # insert_deduplication_token
    "select_settings": (19, 1),  # SETTINGS clause inside SELECT
}


@dataclass(frozen=True, slots=True)
class Features:
    """``Features.from_version("18.16.1").codecs is False``."""

    version: tuple[int, int, int]
    low_cardinality: bool
    codecs: bool
    ttl: bool
    async_insert: bool
    dedup_token: bool
    select_settings: bool

    @classmethod
    def from_version(cls, text: str) -> Features:
        """Parse ``version()`` output such as ``18.16.1`` or ``26.9.1.1``."""
        match = re.match(r"^\s*(\d+)\.(\d+)(?:\.(\d+))?", text)
        if not match:
            raise ValueError(f"unrecognised ClickHouse version {text!r}")
        major, minor, patch = int(match[1]), int(match[2]), int(match[3] or 0)
        flags = {name: (major, minor) >= since for name, since in _SINCE.items()}
        return cls(version=(major, minor, patch), **flags)

    @classmethod
    def probe(cls, backend: Backend) -> Features:
        """Ask the server for its version."""
        table = backend.query("SELECT version() AS v")
        return cls.from_version(str(table.column(0)[0].as_py()))

    def column_types(self) -> dict[str, str]:
        """Placeholder values for ``schema/*.sql``: types and codecs this server understands."""
        name = "LowCardinality(String)" if self.low_cardinality else "String"
        codec = self.codecs
        return {
            "{name_type}": name,
            # D2 in the reference notes: DoubleDelta for timestamps, Delta for sorted fingerprints,
            # plain ZSTD(1) for values (Gorilla was never better there).
            "{ts_codec}": " CODEC(DoubleDelta, ZSTD(1))" if codec else "",
            "{fp_codec}": " CODEC(Delta, ZSTD(1))" if codec else "",
            "{value_codec}": " CODEC(ZSTD(1))" if codec else "",
            # samples.value, stored series by series in time order: Delta first turns counters and
            # histogram buckets (most series) into small, mostly repeated steps; ZSTD(1) then does
            # what plain ZSTD(1) does for gauges. Measured per shape in docs/store.md.
            "{sample_value_codec}": " CODEC(Delta, ZSTD(1))" if codec else "",
        }
