"""Resource panels (CPU, memory, GPU, NPU, network), shared by the service, deployment and pod views.

Series and definitions: SEED-SPEC §1.2 rows 19-30 and §1.5 (console T1-58). These are real-time
gauges, so panels show them as sampled; at service level amounts are summed over pods and
utilisations averaged; below service level (§1.10.3) each pod is its own line.
"""

from __future__ import annotations

from dashboards.panels import PanelSpec, Query

UTIL_THRESHOLDS = ((80.0, "orange"), (90.0, "red"))  # the alert packs' saturation line is 90 %


def _pair(title: str, unit: str, description: str, exprs: list[tuple[str, str]], by_pod: bool) -> PanelSpec:
    legend = "{{source}} " if by_pod else ""
    is_util = unit == "percent"
    return PanelSpec(
        title=title,
        queries=tuple(Query(expr, f"{legend}{name}".strip()) for name, expr in exprs),
        unit=unit,
        description=description,
        thresholds=UTIL_THRESHOLDS if is_util else (),
        max_value=100 if is_util else None,
    )


def resource_panels(sel: str, by_pod: bool) -> list[PanelSpec]:
    """CPU, memory, GPU, NPU and network panels over series matching ``sel``."""
    by = " by (source)" if by_pod else ""

    def amount(name: str) -> str:
        return f"sum{by} ({name}{{{sel}}})"

    def util(name: str) -> str:
        return f"avg{by} ({name}{{{sel}}})"

    return [
        _pair(
            "Used CPU",
            "short",
            "Used CPU cores (ma_container_cpu_used_core).",
            [("cores", amount("ma_container_cpu_used_core"))],
            by_pod,
        ),
        _pair(
            "CPU usage",
            "percent",
            "CPU utilisation, real-time data (ma_container_cpu_util).",
            [("CPU", util("ma_container_cpu_util"))],
            by_pod,
        ),
        _pair(
            "Used memory",
            "decmbytes",
            "Used memory in MB (ma_container_memory_used_megabytes).",
            [("memory", amount("ma_container_memory_used_megabytes"))],
            by_pod,
        ),
        _pair(
            "Memory usage",
            "percent",
            "Memory utilisation (ma_container_memory_util).",
            [("memory", util("ma_container_memory_util"))],
            by_pod,
        ),
        _pair(
            "GPU usage",
            "percent",
            "GPU utilisation; available when GPU resources are used.",
            [("GPU", util("ma_container_gpu_util"))],
            by_pod,
        ),
        _pair(
            "GPU memory",
            "percent",
            "GPU memory utilisation (ma_container_gpu_mem_util).",
            [("GPU memory", util("ma_container_gpu_mem_util"))],
            by_pod,
        ),
        _pair(
            "Used GPU memory",
            "decmbytes",
            "GPU memory usage in MB (ma_container_gpu_mem_used_megabytes).",
            [("GPU memory", amount("ma_container_gpu_mem_used_megabytes"))],
            by_pod,
        ),
        _pair(
            "NPU usage",
            "percent",
            "NPU utilisation; available when NPU resources are used.",
            [("NPU", util("ma_container_npu_util"))],
            by_pod,
        ),
        _pair(
            "NPU memory",
            "percent",
            "NPU memory utilisation (ma_container_npu_memory_util).",
            [("NPU memory", util("ma_container_npu_memory_util"))],
            by_pod,
        ),
        _pair(
            "Used NPU memory",
            "decmbytes",
            "NPU memory usage in MB (ma_container_npu_memory_used_megabytes).",
            [("NPU memory", amount("ma_container_npu_memory_used_megabytes"))],
            by_pod,
        ),
        _pair(
            "Network throughput",
            "Bps",
            "Inbound (ma_container_network_receive_bytes) and outbound "
            "(ma_container_network_transmit_bytes) traffic rate in Byte/s.",
            [
                ("inbound", amount("ma_container_network_receive_bytes")),
                ("outbound", amount("ma_container_network_transmit_bytes")),
            ],
            by_pod,
        ),
    ]
