"""A simulated accelerator per engine, in the exposition formats of the real exporters.

No GPU or NPU exists here, so the demo's sidecars read these instead: ``/dcgm/metrics`` in
dcgm-exporter's format (``DCGM_FI_DEV_GPU_UTIL``, ``DCGM_FI_DEV_FB_USED``/``_FREE`` in MiB) and
``/npu-exporter/metrics`` in Ascend npu-exporter's (``npu_chip_info_utilization``,
``npu_chip_info_hbm_used_memory``/``_total_memory`` in MB). The collector's readers are tested
against captured output of the real exporters; these only give the demo moving figures.
Utilisation follows the engine's running requests; memory is weights plus the KV cache in use.
"""

from __future__ import annotations

GPU_MODEL = "NVIDIA H100 80GB HBM3"
GPU_TOTAL_MIB = 81559
NPU_TOTAL_MB = 65536
WEIGHTS_FRACTION = 0.35


def _utilisation(running: int) -> float:
    return float(min(100, 5 + 12 * running))


def _used(total: float, kv_usage: float) -> float:
    return round(total * (WEIGHTS_FRACTION + (0.9 - WEIGHTS_FRACTION) * kv_usage))


def dcgm_text(running: int, kv_usage: float, uuid: str) -> str:
    used = _used(GPU_TOTAL_MIB, kv_usage)
    labels = f'gpu="0",UUID="{uuid}",device="nvidia0",modelName="{GPU_MODEL}",Hostname="sim"'
    return (
        "# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).\n# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n"
        f"DCGM_FI_DEV_GPU_UTIL{{{labels}}} {_utilisation(running):.0f}\n"
        "# HELP DCGM_FI_DEV_FB_FREE Framebuffer memory free (in MiB).\n# TYPE DCGM_FI_DEV_FB_FREE gauge\n"
        f"DCGM_FI_DEV_FB_FREE{{{labels}}} {GPU_TOTAL_MIB - used:.0f}\n"
        "# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).\n# TYPE DCGM_FI_DEV_FB_USED gauge\n"
        f"DCGM_FI_DEV_FB_USED{{{labels}}} {used:.0f}\n"
    )


def npu_exporter_text(running: int, kv_usage: float) -> str:
    used = _used(NPU_TOTAL_MB, kv_usage)
    return (
        "# HELP npu_chip_info_utilization the ai core utilization\n# TYPE npu_chip_info_utilization gauge\n"
        f'npu_chip_info_utilization{{id="0"}} {_utilisation(running):.0f}\n'
        "# HELP npu_chip_info_hbm_used_memory the npu hbm used memory\n"
        "# TYPE npu_chip_info_hbm_used_memory gauge\n"
        f'npu_chip_info_hbm_used_memory{{id="0"}} {used:.0f}\n'
        "# HELP npu_chip_info_hbm_total_memory the npu hbm total memory\n"
        "# TYPE npu_chip_info_hbm_total_memory gauge\n"
        f'npu_chip_info_hbm_total_memory{{id="0"}} {NPU_TOTAL_MB}\n'
    )
