"""Resource saturation: CPU, memory, GPU, GPU memory, NPU, NPU memory above 90 %, memory near its limit."""

from __future__ import annotations

import math

from alerts.packs.spec import InputSeries, RuleSpec, Scenario, constant, matchers
from alerts.thresholds import Thresholds

RUNBOOK = (
    "%s on the Monitoring tab is real-time data per pod; sustained saturation slows every request: "
    "add instances or use a larger specification."
)


def _saturation(alert: str, series: str, what: str) -> RuleSpec:
    def scenario(t: Thresholds, bad: dict[str, str], good: dict[str, str]) -> Scenario:
        high = (t.utilization_percent + 100) / 2
        inputs = (
            InputSeries(series, bad, f"{high:g}x60"),
            InputSeries(series, good, f"{t.utilization_percent / 2:g}x60"),
        )
        return Scenario(inputs, 0, constant(high), dict(bad))

    return RuleSpec(
        alert,
        "warning",
        lambda sel, t: f"{series}{matchers(sel)} > {t.utilization_percent:g}",
        "resource_for",
        f"{what} of pod {{{{ $labels.source }}}} above %(utilization_percent)g%%",
        f"{what} of pod {{{{ $labels.source }}}} (service {{{{ $labels.service_id }}}}) is "
        "{{ $value | humanize }}%%, above %(utilization_percent)g%% for the rule's duration.",
        RUNBOOK % what,
        scenario,
    )


def _memory_limit_scenario(t: Thresholds, bad: dict[str, str], good: dict[str, str]) -> Scenario:
    # the bad pod's memory grows 2 %/min from (floor - 15): above the floor after 7.5 min
    start = t.memory_floor_percent - 15
    ahead = 2 * t.memory_horizon_s / 60
    active = max(8, math.ceil((100 - start - ahead) / 2))
    series = (
        InputSeries("ma_container_memory_util", bad, f"{start:g}+2x60"),
        InputSeries("ma_container_memory_util", good, "40x60"),
    )
    return Scenario(series, active, lambda minute: start + 2 * minute + ahead, dict(bad))


MEMORY_NEAR_LIMIT = RuleSpec(
    "InferContainerMemoryNearLimit",
    "critical",
    lambda sel, t: (
        f"predict_linear(ma_container_memory_util{matchers(sel)}[15m], {int(t.memory_horizon_s)}) >= 100"
        f" and ma_container_memory_util{matchers(sel)} > {t.memory_floor_percent:g}"
    ),
    "health_for",
    "Memory of pod {{ $labels.source }} will reach its limit",
    "Memory usage of pod {{ $labels.source }} is above %(memory_floor_percent)g%% and its trend reaches "
    "{{ $value | humanize }}%% within %(memory_horizon_s)g s: the container is about to be killed for "
    "running out of memory.",
    "Used Memory and Memory Usage on the Monitoring tab show the growth; restart the instance or use a "
    "specification with more memory.",
    _memory_limit_scenario,
)

RESOURCES = (
    _saturation("InferContainerCPUHigh", "ma_container_cpu_util", "CPU usage"),
    _saturation("InferContainerMemoryHigh", "ma_container_memory_util", "Memory usage"),
    _saturation("InferContainerGPUHigh", "ma_container_gpu_util", "GPU usage"),
    _saturation("InferContainerGPUMemoryHigh", "ma_container_gpu_mem_util", "GPU memory usage"),
    _saturation("InferContainerNPUHigh", "ma_container_npu_util", "NPU usage"),
    _saturation("InferContainerNPUMemoryHigh", "ma_container_npu_memory_util", "NPU memory usage"),
    MEMORY_NEAR_LIMIT,
)
