"""GPU utilisation and memory: NVML (``nvidia-ml-py``) in the pod, or a dcgm-exporter scrape.

NVML sees exactly the GPUs the container was given (the device plugin mounts only those), so
no filtering is needed. A dcgm-exporter runs per node: with Kubernetes pod attribution on, its
series carry ``pod``; rows of *this* pod are taken when there are any, else every GPU row (an
exporter without pod labels, e.g. one per single-GPU node). Fields: ``DCGM_FI_DEV_GPU_UTIL`` (%),
``DCGM_FI_DEV_FB_USED`` and ``DCGM_FI_DEV_FB_FREE`` (MiB; total = used + free, as
dcgm-exporter has no total field by default).

Absent pieces degrade: no ``pynvml`` module, no driver or no GPU → one log line, no GPU series.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from loguru import logger

from collector.parse import parse_text
from collector.resources.devices import DeviceReading

MIB = 1 << 20


class NvmlUnavailableError(RuntimeError):
    """NVML cannot be used here (library, driver or device missing); the message says which."""


class NvmlReader:
    """Reads every GPU NVML shows; ``NvmlReader.open()`` raises ``NvmlUnavailableError``."""

    def __init__(self, nvml: Any, handles: list[Any]) -> None:
        self.nvml = nvml
        self.handles = handles

    @classmethod
    def open(cls) -> NvmlReader:
        try:
            import pynvml  # nvidia-ml-py; optional: the sidecar runs without it
        except ImportError as exc:
            raise NvmlUnavailableError("nvidia-ml-py is not installed (pip install nvidia-ml-py)") from exc
        try:
            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
        except pynvml.NVMLError as exc:
            raise NvmlUnavailableError(f"NVML could not start: {exc}") from exc
        if count == 0:
            raise NvmlUnavailableError("NVML sees no GPU")
        return cls(pynvml, [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)])

    def read(self) -> list[DeviceReading]:
        out = []
        for i, handle in enumerate(self.handles):
            util = self.nvml.nvmlDeviceGetUtilizationRates(handle)
            mem = self.nvml.nvmlDeviceGetMemoryInfo(handle)
            out.append(DeviceReading(str(i), float(util.gpu), mem.used / MIB, mem.total / MIB))
        return out

    def close(self) -> None:
        self.nvml.nvmlShutdown()


DCGM_FIELDS = ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE")


def parse_dcgm(text: str, pod: str = "") -> list[DeviceReading]:
    """GPU rows of a dcgm-exporter scrape; ``pod`` picks this pod's rows when any carry it."""
    rows = [s for s in parse_text(text, strict=False) if s.name in DCGM_FIELDS]
    mine = [s for s in rows if pod and s.labels.get("pod") == pod]
    if mine:
        rows = mine
    fields: dict[str, dict[str, float]] = defaultdict(dict)
    for s in rows:
        # a MIG instance is its own device: gpu + GPU_I_ID
        key = s.labels.get("UUID", s.labels.get("gpu", "")) + "/" + s.labels.get("GPU_I_ID", "")
        fields[key][s.name] = s.value
    out = []
    for key, f in sorted(fields.items()):
        used = f.get("DCGM_FI_DEV_FB_USED")
        free = f.get("DCGM_FI_DEV_FB_FREE")
        total = (used or 0.0) + (free or 0.0)
        out.append(DeviceReading(key, f.get("DCGM_FI_DEV_GPU_UTIL", 0.0), used or 0.0, total))
    return out


def log_unavailable(reason: str) -> None:
    """The one line the sidecar writes when it has no GPU figures."""
    logger.info("resources: no GPU figures ({}); ma_container_gpu_* will be absent", reason)
