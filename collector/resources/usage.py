"""Two readings → the guide's ``ma_container_*`` figures (SEED-SPEC §1.2 rows 19-30): pure.

CPU cores used = Δ CPU seconds / Δ wall seconds; CPU util % = cores / limit cores * 100 (the limit
is the quota, or every host CPU when there is none); memory MB = working set / 2^20 (MiB, as the
console's "MB"), util % = working set / limit * 100 (limit: the cgroup's, else the host's RAM);
network = Δ bytes / Δ seconds (the guide's ``*_bytes`` series hold a rate in Byte/s, row 29-30).
A counter that went backwards (container restart) gives no rate for that interval.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.resources.cgroup import CgroupReading
from collector.resources.devices import DeviceTotals

CPU_USED_CORE = "ma_container_cpu_used_core"
CPU_UTIL = "ma_container_cpu_util"
MEMORY_USED_MEGABYTES = "ma_container_memory_used_megabytes"
MEMORY_UTIL = "ma_container_memory_util"
GPU_UTIL = "ma_container_gpu_util"
GPU_MEM_USED_MEGABYTES = "ma_container_gpu_mem_used_megabytes"
GPU_MEM_UTIL = "ma_container_gpu_mem_util"
NPU_UTIL = "ma_container_npu_util"
NPU_MEMORY_USED_MEGABYTES = "ma_container_npu_memory_used_megabytes"
NPU_MEMORY_UTIL = "ma_container_npu_memory_util"
NETWORK_RECEIVE_BYTES = "ma_container_network_receive_bytes"
NETWORK_TRANSMIT_BYTES = "ma_container_network_transmit_bytes"
# Not one of the guide's series: the cgroup's OOM-kill counter, for the OOMKilling pod event.
OOM_KILLS = "infersight_container_oom_kills_total"

MIB = 1 << 20


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything read at one moment; ``at_s`` on a monotonic clock; absent parts are ``None``."""

    at_s: float
    host_cpus: int
    host_memory_bytes: int | None
    cgroup: CgroupReading | None
    net: tuple[int, int] | None  # cumulative (rx, tx) bytes


def _rate(new: float, old: float, dt: float) -> float | None:
    return None if new < old or dt <= 0 else (new - old) / dt


def cpu_memory_figures(prev: Snapshot | None, cur: Snapshot) -> dict[str, float]:
    """CPU (needs ``prev``) and memory figures of ``cur``."""
    out: dict[str, float] = {}
    cg = cur.cgroup
    if cg is None:
        return out
    mem_limit = cg.memory_limit_bytes or cur.host_memory_bytes
    out[MEMORY_USED_MEGABYTES] = cg.memory_used_bytes / MIB
    if cg.oom_kills is not None:
        out[OOM_KILLS] = float(cg.oom_kills)
    if mem_limit:
        out[MEMORY_UTIL] = min(100.0, 100.0 * cg.memory_used_bytes / mem_limit)
    if prev is not None and prev.cgroup is not None:
        cores = _rate(cg.cpu_usage_s, prev.cgroup.cpu_usage_s, cur.at_s - prev.at_s)
        if cores is not None:
            limit = cg.cpu_limit_cores or float(cur.host_cpus)
            out[CPU_USED_CORE] = cores
            out[CPU_UTIL] = min(100.0, 100.0 * cores / limit) if limit > 0 else 0.0
    return out


def network_figures(prev: Snapshot | None, cur: Snapshot) -> dict[str, float]:
    if prev is None or prev.net is None or cur.net is None:
        return {}
    dt = cur.at_s - prev.at_s
    rx = _rate(cur.net[0], prev.net[0], dt)
    tx = _rate(cur.net[1], prev.net[1], dt)
    out = {}
    if rx is not None:
        out[NETWORK_RECEIVE_BYTES] = rx
    if tx is not None:
        out[NETWORK_TRANSMIT_BYTES] = tx
    return out


def device_figures(kind: str, totals: DeviceTotals | None) -> dict[str, float]:
    """``kind`` "gpu" or "npu" (the guide spells their memory series differently)."""
    if totals is None:
        return {}
    if kind == "gpu":
        names = (GPU_UTIL, GPU_MEM_USED_MEGABYTES, GPU_MEM_UTIL)
    else:
        names = (NPU_UTIL, NPU_MEMORY_USED_MEGABYTES, NPU_MEMORY_UTIL)
    return dict(zip(names, (totals.util_pct, totals.mem_used_mb, totals.mem_util_pct), strict=True))
