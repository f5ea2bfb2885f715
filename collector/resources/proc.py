"""CPU and memory from plain /proc, for a sidecar that runs outside any container (or cgroup).

CPU seconds = the busy jiffies of the aggregate ``cpu`` line of /proc/stat (everything but idle
and iowait) / USER_HZ; the "limit" is every CPU the host has. Memory used = MemTotal -
MemAvailable of /proc/meminfo (what the kernel could not hand out without swapping), limit =
MemTotal. Same reading shape as the cgroup readers, so the rest does not care which it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from collector.resources.cgroup import CgroupReading

USER_HZ = 100  # the kernel's fixed clock-tick unit for /proc/stat (sysconf(_SC_CLK_TCK) on Linux)


def parse_stat_cpu(text: str) -> tuple[float, int]:
    """/proc/stat → (busy CPU seconds since boot, number of CPUs)."""
    busy_ticks, cpus = 0, 0
    for line in text.splitlines():
        if line.startswith("cpu "):
            # user nice system idle iowait irq softirq steal guest guest_nice
            values = [int(v) for v in line.split()[1:]]
            idle = values[3] + (values[4] if len(values) > 4 else 0)
            # guest time is already inside user/nice
            busy_ticks = sum(values[:8]) - idle
        elif line.startswith("cpu") and line[3:4].isdigit():
            cpus += 1
    return busy_ticks / USER_HZ, cpus


def parse_meminfo(text: str) -> dict[str, int]:
    """/proc/meminfo → bytes per key (values are in kB)."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            out[key] = int(fields[0]) * (1024 if len(fields) > 1 and fields[1] == "kB" else 1)
    return out


@dataclass(frozen=True, slots=True)
class ProcHost:
    """Reads the host's /proc under ``root``."""

    root: Path

    def read(self) -> CgroupReading:
        busy_s, cpus = parse_stat_cpu((self.root / "proc" / "stat").read_text())
        mem = parse_meminfo((self.root / "proc" / "meminfo").read_text())
        total = mem.get("MemTotal", 0)
        available = mem.get("MemAvailable", mem.get("MemFree", 0))
        return CgroupReading(
            cpu_usage_s=busy_s,
            cpu_limit_cores=float(cpus or os.cpu_count() or 1),
            memory_used_bytes=max(0, total - available),
            memory_limit_bytes=total or None,
        )
