"""The resource component over an injected root: figures, rates, device scrapes, clean degradation."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from loguru import logger

from collector.config import ResourcesConfig
from collector.pipeline import ListConsumer
from collector.resources import ResourceReader
from model.series import Sample

MIB = 1 << 20


def _root(tmp_path: Path, testdata: Path) -> Path:
    base = tmp_path / "sys/fs/cgroup"
    shutil.copytree(testdata / "cgroup/v2/systemd-session-scope", base)
    (base / "cgroup.controllers").write_text("cpu memory\n")  # ours: the v2 marker
    (base / "cpu.max").write_text("200000 100000\n")  # ours: a 2-core limit
    (base / "memory.max").write_text(str(8 << 30))  # ours: an 8 GiB limit
    (tmp_path / "proc/net").mkdir(parents=True)
    shutil.copy(testdata / "proc/procfs_proc_net_dev", tmp_path / "proc/net/dev")
    (tmp_path / "proc/meminfo").write_text("MemTotal: 16777216 kB\nMemAvailable: 8388608 kB\n")
    return tmp_path


def _bump(root: Path, cpu_usec: int, rx: int, tx: int) -> None:
    stat = root / "sys/fs/cgroup/cpu.stat"
    text = stat.read_text().replace("usage_usec 3611347518", f"usage_usec {3611347518 + cpu_usec}")
    stat.write_text(text)
    dev = root / "proc/net/dev"
    dev.write_text(
        dev.read_text().replace("874354587", str(874354587 + rx)).replace("563352563", str(563352563 + tx))
    )


def _by_name(batch: list[Sample]) -> dict[str, float]:
    return {s.name: s.value for s in batch}


def _read_once_and_stop(reader: ResourceReader) -> dict[str, float]:
    """One round of readings by name, the reader stopped afterwards."""

    async def go() -> dict[str, float]:
        try:
            return _by_name(await reader.read_once())
        finally:
            await reader.stop()

    return asyncio.run(go())


def test_two_reads_give_every_cpu_memory_and_network_figure(tmp_path: Path, testdata: Path) -> None:
    root = _root(tmp_path, testdata)
    now = [100.0]
    sink = ListConsumer()
    config = ResourcesConfig(root=str(root), gpu="none", npu="none")
    reader = ResourceReader(config, {"service_id": "svc"}, sink, monotonic=lambda: now[0], cpu_count=8)

    async def go() -> tuple[dict[str, float], dict[str, float]]:
        first = _by_name(await reader.read_once())
        _bump(root, cpu_usec=15_000_000, rx=5_000_000, tx=1_000_000)
        now[0] += 10.0
        second = _by_name(await reader.read_once())
        await reader.stop()
        return first, second

    first, second = asyncio.run(go())
    used_mb = (10498404352 - 6685749248) / MIB
    assert first == pytest.approx({"ma_container_memory_used_megabytes": used_mb,
                                   "ma_container_memory_util": 100 * used_mb / 8192,
                                   "infersight_container_oom_kills_total": 0.0})  # fmt: skip
    assert second["ma_container_cpu_used_core"] == pytest.approx(1.5)  # 15 CPU-s in 10 s
    assert second["ma_container_cpu_util"] == pytest.approx(75.0)  # of the 2-core quota
    assert second["ma_container_network_receive_bytes"] == pytest.approx(500_000.0)  # lo excluded
    assert second["ma_container_network_transmit_bytes"] == pytest.approx(100_000.0)
    assert all(dict(s.labels)["service_id"] == "svc" for s in sink.samples)


def test_counter_going_back_gives_no_rate(tmp_path: Path, testdata: Path) -> None:
    root = _root(tmp_path, testdata)
    now = [0.0]
    reader = ResourceReader(
        ResourcesConfig(root=str(root), gpu="none", npu="none"), {}, monotonic=lambda: now[0]
    )

    async def go() -> dict[str, float]:
        await reader.read_once()
        stat = root / "sys/fs/cgroup/cpu.stat"
        stat.write_text(stat.read_text().replace("usage_usec 3611347518", "usage_usec 5"))  # a restart
        now[0] = 10.0
        return _by_name(await reader.read_once())

    assert "ma_container_cpu_used_core" not in asyncio.run(go())


def test_missing_devices_degrade_with_one_log_line_each(tmp_path: Path, testdata: Path) -> None:
    lines: list[str] = []
    sink_id = logger.add(lambda m: lines.append(str(m)), level="INFO")
    config = ResourcesConfig(root=str(_root(tmp_path, testdata)), npu_smi_command="no-such-npu-smi")
    reader = ResourceReader(config, {})

    async def go() -> list[Sample]:
        await reader.read_once()
        batch = await reader.read_once()
        await reader.stop()
        return batch

    try:
        batch = asyncio.run(go())
    finally:
        logger.remove(sink_id)
    names = {s.name for s in batch}
    assert "ma_container_cpu_used_core" in names  # the rest still reports
    assert not any(n.startswith("ma_container_npu") for n in names)
    assert sum("no NPU figures" in line for line in lines) == 1
    gpu_lines = sum("no GPU figures" in line for line in lines)
    has_gpu = any(n.startswith("ma_container_gpu") for n in names)
    assert (gpu_lines, has_gpu) in ((1, False), (0, True))  # no NVIDIA driver here; a GPU host reads it


async def _serve(body: bytes) -> tuple[asyncio.Server, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n%s" % (len(body), body))  # fmt: skip
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_dcgm_and_npu_exporter_scrapes(tmp_path: Path, testdata: Path) -> None:
    dcgm = (testdata / "gpu/dcgm/dcgm-exporter_mixed-ada-a30mig_triton-pod_pr736.prom").read_bytes()
    npu = (testdata / "npu/npu-exporter/npu-exporter_910_8chip_golden.prom").read_bytes()

    async def go() -> dict[str, float]:
        gpu_server, gpu_port = await _serve(dcgm)
        npu_server, npu_port = await _serve(npu)
        config = ResourcesConfig(
            root=str(tmp_path),
            gpu="dcgm",
            dcgm_url=f"http://127.0.0.1:{gpu_port}/metrics",
            npu="exporter",
            npu_exporter_url=f"http://127.0.0.1:{npu_port}/metrics",
        )
        reader = ResourceReader(config, {"source": "triton-server-f7cb5d77-95xcf"})
        try:
            return _by_name(await reader.read_once())
        finally:
            await reader.stop()
            gpu_server.close()
            npu_server.close()

    figures = asyncio.run(go())
    assert figures["ma_container_gpu_mem_used_megabytes"] == 0.0
    assert figures["ma_container_gpu_mem_util"] == 0.0
    assert figures["ma_container_gpu_util"] == 0.0
    assert figures["ma_container_npu_util"] == 0.0
    assert "ma_container_npu_memory_used_megabytes" in figures
    assert "ma_container_cpu_used_core" not in figures  # an empty root: no cgroup, no /proc


def test_unreachable_exporter_is_skipped_not_fatal(tmp_path: Path) -> None:
    config = ResourcesConfig(
        root=str(tmp_path), gpu="dcgm", dcgm_url="http://127.0.0.1:9/metrics", npu="none"
    )
    reader = ResourceReader(config, {})

    async def go() -> list[Sample]:
        try:
            return await reader.read_once()
        finally:
            await reader.stop()

    assert asyncio.run(go()) == []


def test_npu_smi_command_output_is_read(tmp_path: Path, testdata: Path) -> None:
    # a stand-in for npu-smi that prints the captured Atlas 800 (910) output
    captured = (
        testdata
        / "npu/npu-smi/npu-smi-info_ai-server_atlas-800-training-server_model-9010_version-6.0.RC1.txt"
    )
    script = tmp_path / "npu-smi"
    script.write_text(f'#!/bin/sh\n[ "$1" = info ] && exec cat "{captured}"\nexit 2\n')
    script.chmod(0o755)
    config = ResourcesConfig(root=str(tmp_path), gpu="none", npu="npu-smi", npu_smi_command=str(script))
    reader = ResourceReader(config, {})

    figures = _read_once_and_stop(reader)
    assert figures["ma_container_npu_util"] == 0.0
    assert figures["ma_container_npu_memory_used_megabytes"] == 0.0  # HBM 0 / 32768 on every chip
    assert figures["ma_container_npu_memory_util"] == 0.0


class _FakeNvml:
    """The slice of pynvml's API the reader uses, with made-up values (no GPU here)."""

    class _Util:
        gpu = 60

    class _Mem:
        used = 30 << 30
        total = 80 << 30

    def nvmlDeviceGetUtilizationRates(self, handle: object) -> object:
        return self._Util()

    def nvmlDeviceGetMemoryInfo(self, handle: object) -> object:
        return self._Mem()

    def nvmlShutdown(self) -> None:
        pass


def test_nvml_readings_become_gpu_figures() -> None:
    from collector.resources.devices import combine
    from collector.resources.gpu import NvmlReader
    from collector.resources.usage import device_figures

    reader = NvmlReader(_FakeNvml(), [object(), object()])
    figures = device_figures("gpu", combine(reader.read()))
    assert figures == {
        "ma_container_gpu_util": 60.0,
        "ma_container_gpu_mem_used_megabytes": 2 * 30 * 1024.0,
        "ma_container_gpu_mem_util": 37.5,
    }


def test_cgroup_dir_points_at_another_group(tmp_path: Path, testdata: Path) -> None:
    # e.g. the pod's cgroup mounted into the sidecar; here the captured v2 scope
    config = ResourcesConfig(
        root=str(tmp_path),
        cgroup_dir=str(testdata / "cgroup/v2/systemd-session-scope"),
        gpu="none",
        npu="none",
    )
    reader = ResourceReader(config, {})

    figures = _read_once_and_stop(reader)
    assert figures["ma_container_memory_used_megabytes"] == pytest.approx((10498404352 - 6685749248) / MIB)
