"""Per-accelerator readings and how they become one container figure (shared by GPU and NPU)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class DeviceReading:
    """One GPU or NPU: utilisation in %, memory used and total in MB (MiB, as the tools print)."""

    device: str
    util_pct: float
    mem_used_mb: float
    mem_total_mb: float


@dataclass(frozen=True, slots=True)
class DeviceTotals:
    """The container's figure over its devices: mean utilisation, summed memory, memory util %."""

    util_pct: float
    mem_used_mb: float
    mem_util_pct: float
    devices: int


def combine(readings: list[DeviceReading]) -> DeviceTotals | None:
    """Mean utilisation over the devices (each is 0-100 %, so the mean stays in the guide's
    0-100 % range), memory summed; ``None`` when there is no device."""
    if not readings:
        return None
    used = sum(r.mem_used_mb for r in readings)
    total = sum(r.mem_total_mb for r in readings)
    return DeviceTotals(
        util_pct=sum(r.util_pct for r in readings) / len(readings),
        mem_used_mb=used,
        mem_util_pct=100.0 * used / total if total > 0 else 0.0,
        devices=len(readings),
    )
