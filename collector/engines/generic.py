"""Any target without an adapter: its series are kept under their own names, nothing derived."""

from __future__ import annotations

from collector.engines.mapping import Derived
from collector.parse import ParsedSample


def derive(samples: list[ParsedSample]) -> list[ParsedSample]:
    """Derive nothing; the sidecar keeps every original series anyway."""
    return []


def adapt(samples: list[ParsedSample]) -> Derived:
    return Derived([])
