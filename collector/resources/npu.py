"""Ascend NPU utilisation and memory: an npu-exporter scrape, or ``npu-smi info`` text.

Memory: chips with HBM (Ascend 910) report the model's memory as HBM, so HBM is taken when the
chip has any; chips without (Ascend 310) report DDR as ``Memory-Usage``. Utilisation is the
AI Core's (``AICore(%)`` / ``npu_chip_info_utilization``).

npu-exporter series (Ascend/ascend-npu-exporter): ``npu_chip_info_utilization`` (%),
``npu_chip_info_hbm_used_memory`` / ``_hbm_total_memory`` and ``npu_chip_info_used_memory`` /
``_total_memory`` (MB), one row per chip ``id``.

``npu-smi info`` prints two table rows per chip: "NPU Name | Health | Power Temp Hugepages" then
"Chip [Device] | Bus-Id | AICore(%) Memory-Usage(MB) [HBM-Usage(MB)]".
"""

from __future__ import annotations

import re
from collections import defaultdict

from collector.parse import parse_text
from collector.resources.devices import DeviceReading

_FIRST_ROW = re.compile(r"^\|\s*(\d+)\s+\S+.*\|\s*(OK|Warning|Alarm|Critical|\S+)\s*\|")
_USAGE = re.compile(r"(\d+)\s*/\s*(\d+)")


def _device(used: float, total: float, hbm_used: float, hbm_total: float) -> tuple[float, float]:
    return (hbm_used, hbm_total) if hbm_total > 0 else (used, total)


def parse_npu_exporter(text: str) -> list[DeviceReading]:
    chips: dict[str, dict[str, float]] = defaultdict(dict)
    for s in parse_text(text, strict=False):
        if s.name.startswith("npu_chip_info_"):
            chips[s.labels.get("id", "")][s.name.removeprefix("npu_chip_info_")] = s.value
    out = []
    for chip_id, f in sorted(chips.items(), key=lambda kv: (len(kv[0]), kv[0])):
        used, total = _device(
            f.get("used_memory", 0.0),
            f.get("total_memory", 0.0),
            f.get("hbm_used_memory", 0.0),
            f.get("hbm_total_memory", 0.0),
        )
        out.append(DeviceReading(chip_id, f.get("utilization", 0.0), used, total))
    return out


def parse_npu_smi_info(text: str) -> list[DeviceReading]:
    """Chip rows of ``npu-smi info``; the process table below them is ignored."""
    out: list[DeviceReading] = []
    lines = [line for line in text.splitlines() if line.startswith("|")]
    npu = ""
    for line in lines:
        if "Process" in line or ("Chip" in line and "Bus-Id" in line):
            if "Process id" in line:
                break
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) < 3:
            continue
        if _FIRST_ROW.match(line) and not re.match(r"^[0-9A-Fa-f]{4}:", cells[1]):
            npu = cells[0].split()[0]
            continue
        if not re.match(r"^[0-9A-Fa-f]{4}:[0-9A-Fa-f]{2}:", cells[1]):
            continue
        chip = cells[0].split()[0]
        usage = cells[2].split(maxsplit=1)
        if len(usage) < 2 or not usage[0].replace(".", "", 1).isdigit():
            continue
        pairs = [(float(a), float(b)) for a, b in _USAGE.findall(usage[1])]
        mem = pairs[0] if pairs else (0.0, 0.0)
        hbm = pairs[1] if len(pairs) > 1 else (0.0, 0.0)
        used, total = _device(mem[0], mem[1], hbm[0], hbm[1])
        out.append(DeviceReading(f"{npu}/{chip}", float(usage[0]), used, total))
    return out
