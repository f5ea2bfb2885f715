"""cgroup v2 / v1 and /proc readers against captured real trees."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from collector.resources.cgroup import CgroupV1, CgroupV2, detect, parse_cpu_max, parse_v1_quota
from collector.resources.proc import parse_meminfo, parse_stat_cpu


def test_v2_unlimited_scope(testdata: Path) -> None:
    reading = CgroupV2(testdata / "cgroup/v2/systemd-session-scope").read()
    assert reading.cpu_usage_s == pytest.approx(3611.347518)
    assert reading.cpu_limit_cores is None  # cpu.max "max 100000"
    assert reading.memory_limit_bytes is None  # memory.max "max"
    assert reading.memory_used_bytes == 10498404352 - 6685749248  # current - inactive_file


def test_v1_kubernetes_burstable_pod(testdata: Path) -> None:
    d = testdata / "cgroup/v1/k8s-burstable-pod-amzn2"
    reading = CgroupV1(d, d, d).read()
    assert reading.cpu_usage_s == pytest.approx(124659.500367)
    assert reading.cpu_limit_cores is None  # cfs_quota_us -1
    assert reading.memory_limit_bytes == 2147483648
    assert reading.memory_used_bytes == 1215860736 - 78557184  # usage - total_inactive_file


def test_v1_unlimited_docker_container(testdata: Path) -> None:
    d = testdata / "cgroup/v1/docker-container-unlimited"
    reading = CgroupV1(d, d, d).read()
    assert reading.memory_limit_bytes is None  # 9223372036854771712 = page-rounded "unlimited"
    assert reading.cpu_usage_s == pytest.approx(95.996653175)


@pytest.mark.parametrize(
    ("text", "cores"), [("max 100000", None), ("200000 100000", 2.0), ("50000 100000", 0.5), ("150000", 1.5)]
)
def test_cpu_max(text: str, cores: float | None) -> None:
    assert parse_cpu_max(text) == cores


@pytest.mark.parametrize(("quota", "period", "cores"), [("-1", "100000", None), ("250000", "100000", 2.5)])
def test_v1_quota(quota: str, period: str, cores: float | None) -> None:
    assert parse_v1_quota(quota, period) == cores


def _v2_root(tmp_path: Path, testdata: Path, cpu_max: str) -> Path:
    base = tmp_path / "sys/fs/cgroup"
    shutil.copytree(testdata / "cgroup/v2/systemd-session-scope", base)
    (base / "cgroup.controllers").write_text("cpu memory pids\n")  # ours: the v2 marker
    (base / "cpu.max").write_text(cpu_max)  # ours: no captured v2 tree has a quota
    return tmp_path


def test_detect_v2_with_a_quota(tmp_path: Path, testdata: Path) -> None:
    reader = detect(_v2_root(tmp_path, testdata, "400000 100000\n"))
    assert isinstance(reader, CgroupV2)
    assert reader.read().cpu_limit_cores == 4.0


def test_detect_v1_layout(tmp_path: Path, testdata: Path) -> None:
    base = tmp_path / "sys/fs/cgroup"
    for controller in ("cpu,cpuacct", "memory"):
        shutil.copytree(testdata / "cgroup/v1/k8s-burstable-pod-amzn2", base / controller)
    reader = detect(tmp_path)
    assert isinstance(reader, CgroupV1)
    assert reader.read().memory_limit_bytes == 2147483648
    assert detect(tmp_path, "v2") is None


def test_detect_nothing(tmp_path: Path) -> None:
    assert detect(tmp_path) is None


def test_proc_stat_and_meminfo() -> None:
    # the format of proc(5); the numbers are ours
    stat = (
        "cpu  100 20 30 1000 50 5 5 0 0 0\ncpu0 50 10 15 500 25 2 3 0 0 0\ncpu1 50 10 15 500 25 3 2 0 0 0\n"
    )
    busy_s, cpus = parse_stat_cpu(stat)
    assert cpus == 2
    assert busy_s == pytest.approx((100 + 20 + 30 + 5 + 5) / 100)
    mem = parse_meminfo(
        "MemTotal:       16318156 kB\nMemFree: 1 kB\nMemAvailable:   8159078 kB\nHugePages_Total: 0\n"
    )
    assert mem["MemTotal"] == 16318156 * 1024
    assert mem["HugePages_Total"] == 0


def test_oom_kills_from_v2_memory_events_and_v1_oom_control(testdata_dir: Path) -> None:
    from collector.resources.cgroup import read_oom_kills

    captured = testdata_dir / "captured/cgroup"
    assert read_oom_kills(captured / "v2/systemd-session-scope/memory.events") == 0
    assert read_oom_kills(captured / "v1/k8s-burstable-pod-amzn2/memory.oom_control") == 0
    # not captured for this container: absent, not zero
    assert read_oom_kills(captured / "v1/docker-container-unlimited/memory.oom_control") is None
