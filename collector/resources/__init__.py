"""Container resources as the guide's ``ma_container_*`` series: cgroup v1/v2 or /proc, network, GPU, NPU.

Every reader takes its root path (or text) from the caller, so tests feed captured trees and
outputs; ``ResourceReader`` is the component that runs them every interval.
"""

from collector.resources.cgroup import CgroupReading, CgroupV1, CgroupV2, detect
from collector.resources.devices import DeviceReading, DeviceTotals, combine
from collector.resources.reader import ResourceReader

__all__ = [
    "CgroupReading",
    "CgroupV1",
    "CgroupV2",
    "DeviceReading",
    "DeviceTotals",
    "ResourceReader",
    "combine",
    "detect",
]
