"""CPU and memory of this container from its cgroup (v2 unified, or v1 cpuacct/cpu/memory).

Readings are cumulative CPU seconds and current memory bytes; cores and utilisation need two
readings (usage.py). Limits, as kubelet/cAdvisor read them:

- CPU limit in cores = quota / period (v2 ``cpu.max`` "200000 100000"; v1 ``cpu.cfs_quota_us`` /
  ``cpu.cfs_period_us``); "max" or -1 = no limit → ``None`` (the caller falls back to the
  number of CPUs the host has);
- memory used = usage - inactive file cache (the *working set* kubelet evicts on and
  ``kubectl top`` shows: page cache that can be dropped is not "used"); v2 ``memory.current`` and
  ``memory.stat`` ``inactive_file``; v1 ``memory.usage_in_bytes`` and ``total_inactive_file``;
- memory limit: v2 ``memory.max`` ("max" = none), v1 ``memory.limit_in_bytes`` (a value at or
  above 2^62 is the kernel's page-rounded "unlimited") → ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from collector.resources.cgroup_path import V1Groups, V2Group, locate

V1_UNLIMITED_BYTES = 1 << 62


@dataclass(frozen=True, slots=True)
class CgroupReading:
    """One reading: cumulative CPU seconds, working-set bytes and the limits (``None`` = none)."""

    cpu_usage_s: float
    cpu_limit_cores: float | None
    memory_used_bytes: int
    memory_limit_bytes: int | None
    oom_kills: int | None = None  # cumulative OOM kills in the cgroup, where the kernel reports it


def _read(path: Path) -> str:
    return path.read_text().strip()


def parse_flat_keyed(text: str) -> dict[str, int]:
    """``key value`` lines (cpu.stat, memory.stat) → dict; lines that are not are skipped."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def parse_cpu_max(text: str) -> float | None:
    """v2 ``cpu.max`` ("$MAX $PERIOD") → limit in cores, ``None`` for "max"."""
    fields = text.split()
    if not fields or fields[0] == "max":
        return None
    period = int(fields[1]) if len(fields) > 1 else 100_000
    return int(fields[0]) / period


def parse_v1_quota(quota_text: str, period_text: str) -> float | None:
    quota = int(quota_text)
    return None if quota <= 0 else quota / int(period_text)


def read_oom_kills(path: Path) -> int | None:
    """``oom_kill`` of v2 ``memory.events`` or v1 ``memory.oom_control`` (kernels ≥ 4.13)."""
    if not path.exists():
        return None
    return parse_flat_keyed(_read(path)).get("oom_kill")


def _working_set(usage: int, stat: dict[str, int], key: str) -> int:
    return max(0, usage - stat.get(key, 0))


@dataclass(frozen=True, slots=True)
class CgroupV2:
    """Reads one cgroup v2 directory (inside a container: /sys/fs/cgroup)."""

    path: Path

    def read(self) -> CgroupReading:
        cpu = parse_flat_keyed(_read(self.path / "cpu.stat"))
        cpu_max = self.path / "cpu.max"  # absent in the root cgroup
        limit = parse_cpu_max(_read(cpu_max)) if cpu_max.exists() else None
        usage = int(_read(self.path / "memory.current"))
        stat = parse_flat_keyed(_read(self.path / "memory.stat"))
        mem_max = self.path / "memory.max"
        raw_max = _read(mem_max) if mem_max.exists() else "max"
        return CgroupReading(
            cpu_usage_s=cpu["usage_usec"] / 1e6,
            cpu_limit_cores=limit,
            memory_used_bytes=_working_set(usage, stat, "inactive_file"),
            memory_limit_bytes=None if raw_max == "max" else int(raw_max),
            oom_kills=read_oom_kills(self.path / "memory.events"),
        )


@dataclass(frozen=True, slots=True)
class CgroupV1:
    """Reads cgroup v1 controller directories (they may be one and the same in tests)."""

    cpuacct: Path
    cpu: Path
    memory: Path

    def read(self) -> CgroupReading:
        limit = parse_v1_quota(_read(self.cpu / "cpu.cfs_quota_us"), _read(self.cpu / "cpu.cfs_period_us"))
        usage = int(_read(self.memory / "memory.usage_in_bytes"))
        stat = parse_flat_keyed(_read(self.memory / "memory.stat"))
        raw_limit = int(_read(self.memory / "memory.limit_in_bytes"))
        return CgroupReading(
            cpu_usage_s=int(_read(self.cpuacct / "cpuacct.usage")) / 1e9,
            cpu_limit_cores=limit,
            memory_used_bytes=_working_set(usage, stat, "total_inactive_file"),
            memory_limit_bytes=None if raw_limit >= V1_UNLIMITED_BYTES else raw_limit,
            oom_kills=read_oom_kills(self.memory / "memory.oom_control"),
        )


def detect(root: Path, mode: str = "auto", container_id: str = "") -> CgroupV2 | CgroupV1 | None:
    """The cgroup reader for this process's own group, or for the group of the container
    ``container_id`` (``None``: no cgroup); ``root`` is where /proc and /sys are.

    The group is the one ``/proc/self/cgroup`` names, under the mount points that
    ``/proc/self/mountinfo`` gives (``collector/resources/cgroup_path.py``): inside a container with
    its own cgroup namespace that is the mount point itself; on a host, or in a container without a
    namespace, a group below it, never the machine's root group.
    """
    found = locate(root, mode, container_id)
    if isinstance(found, V2Group):
        return CgroupV2(found.path)
    if isinstance(found, V1Groups):
        return CgroupV1(found.cpuacct, found.cpu, found.memory)
    return None
