"""Alert thresholds and durations, with defaults, overridable per service (``alerts.services``).

>>> Thresholds().replace_from({"ttft_tp99_ms": 5000}, "alerts.services[0]").ttft_tp99_ms
5000.0
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

from model.durations import parse_duration_ms
from model.errors import ConfigError

DURATION_FIELDS = (
    "latency_for",
    "errors_for",
    "traffic_for",
    "health_for",
    "resource_for",
    "keep_firing_for",
)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Values in the guide's units (ms, ratio 0-1, percent 0-100, bytes); durations in ms."""

    ttft_tp99_ms: float = 3000.0
    tpot_tp99_ms: float = 200.0
    error_ratio: float = 0.05
    utilization_percent: float = 90.0  # the "above 90%"
    memory_floor_percent: float = 75.0  # "near its limit" only counts above this
    memory_horizon_s: float = 900.0  # ... and when the trend reaches 100 % within this
    max_scrape_bytes: float = 32768.0  # the guide: a scrape may not exceed 32 KB (§1.10.4)
    restart_window_s: float = 900.0
    latency_for: int = 300_000
    errors_for: int = 300_000
    traffic_for: int = 300_000
    health_for: int = 60_000
    resource_for: int = 300_000
    keep_firing_for: int = 0

    def validate(self, where: str) -> None:
        checks = [
            (self.ttft_tp99_ms > 0, "ttft_tp99_ms", "must be > 0"),
            (self.tpot_tp99_ms > 0, "tpot_tp99_ms", "must be > 0"),
            (0 < self.error_ratio < 1, "error_ratio", "must be in (0, 1)"),
            (0 < self.utilization_percent < 100, "utilization_percent", "must be in (0, 100)"),
            (0 <= self.memory_floor_percent < 100, "memory_floor_percent", "must be in [0, 100)"),
            (self.memory_horizon_s > 0, "memory_horizon_s", "must be > 0"),
            (self.max_scrape_bytes > 0, "max_scrape_bytes", "must be > 0"),
            (self.restart_window_s > 0, "restart_window_s", "must be > 0"),
        ]
        for ok, name, message in checks:
            if not ok:
                raise ConfigError(f"{where}.{name}: {message} (got {getattr(self, name)})")

    def replace_from(self, data: dict[str, Any], where: str) -> Thresholds:
        """A copy with the keys of ``data`` applied (durations as ``5m`` or seconds); unknown keys fail."""
        known = {f.name for f in fields(self)}
        changes: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise ConfigError(f"{where}.{key}: unknown threshold (known: {', '.join(sorted(known))})")
            try:
                changes[key] = parse_duration_ms(value) if key in DURATION_FIELDS else float(value)
            except (TypeError, ValueError) as error:
                raise ConfigError(f"{where}.{key}: {error}") from error
        result = dataclasses.replace(self, **changes)
        result.validate(where)
        return result
