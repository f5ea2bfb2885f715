"""Finding this process's (or a named container's) cgroup: /proc/self/cgroup under the mountinfo
mount points. Trees shaped like /sys/fs/cgroup v1 and v2 with the captured real files, the captured
/proc/<pid>/cgroup of a Kubernetes pod, and this machine's own /proc/self/cgroup."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.config import ResourcesConfig
from collector.resources.cgroup import CgroupV1, CgroupV2, detect
from collector.resources.cgroup_path import (
    Mount,
    container_key,
    group_dir,
    locate,
    parse_mountinfo,
    parse_proc_cgroup,
)
from model.errors import ConfigError

K8S_V1 = "cgroup/v1/k8s-burstable-pod-amzn2"
DOCKER_V1 = "cgroup/v1/docker-container-unlimited"
V2_SCOPE = "cgroup/v2/systemd-session-scope"
# mountinfo lines in the kernel's format (proc(5)), as a cgroup v1 node and a v2 node have them
V1_MOUNTINFO = """\
31 23 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec - tmpfs tmpfs ro,mode=755
32 31 0:29 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime - cgroup cgroup rw,name=systemd
35 31 0:32 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime - cgroup cgroup rw,cpu,cpuacct
36 31 0:33 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,memory
"""
V2_MOUNTINFO = (
    "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"
)
SIDECAR_ID = "5f0c4d2e9b1a" + "0" * 52
ENGINE_ID = "1d3d308a7d48a27814a68bf33a44acf4441c9c02463ca0bc1cdfdc8c0b4a8496"
POD = (
    "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod7a96c459_d529_44ae_9f99_90d3798d6426.slice"
)


def _k8s_v1_tree(tmp_path: Path, testdata: Path, mountinfo: bool = True) -> Path:
    """A node's v1 hierarchy: the machine's root group (the Docker capture's files stand in for it)
    and the pod container's group at the path the captured /proc/<pid>/cgroup names."""
    proc_cgroup = (testdata / K8S_V1 / "proc_pid_cgroup").read_text()
    group = parse_proc_cgroup(proc_cgroup)["memory"].lstrip("/")
    for controller in ("cpu,cpuacct", "memory"):
        base = tmp_path / "sys/fs/cgroup" / controller
        shutil.copytree(testdata / DOCKER_V1, base)
        shutil.copytree(testdata / K8S_V1, base / group)
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/cgroup").write_text(proc_cgroup)
    if mountinfo:
        (tmp_path / "proc/self/mountinfo").write_text(V1_MOUNTINFO)
    return tmp_path


def test_parse_the_captured_proc_cgroup(testdata: Path) -> None:
    groups = parse_proc_cgroup((testdata / K8S_V1 / "proc_pid_cgroup").read_text())
    assert groups["cpu"] == groups["cpuacct"] == groups["memory"]
    assert groups["memory"].endswith("cri-containerd-" + ENGINE_ID + ".scope")
    assert groups[""] == "/"
    assert groups["name=systemd"] == groups["memory"]


def test_parse_mountinfo_keeps_cgroup_mounts_with_their_controllers() -> None:
    mounts = parse_mountinfo(
        V1_MOUNTINFO + V2_MOUNTINFO + r"40 31 0:40 / /a\040b rw - cgroup c rw,pids" + "\n"
    )
    assert [(m.point, m.fstype) for m in mounts] == [
        ("/sys/fs/cgroup/systemd", "cgroup"),
        ("/sys/fs/cgroup/cpu,cpuacct", "cgroup"),
        ("/sys/fs/cgroup/memory", "cgroup"),
        ("/sys/fs/cgroup", "cgroup2"),
        ("/a b", "cgroup"),
    ]
    assert {"cpu", "cpuacct"} <= mounts[1].options


@pytest.mark.parametrize("with_mountinfo", [True, False])
def test_v1_pod_container_group_not_the_machine_root(
    tmp_path: Path, testdata: Path, with_mountinfo: bool
) -> None:
    reader = detect(_k8s_v1_tree(tmp_path, testdata, with_mountinfo))
    assert isinstance(reader, CgroupV1)
    assert reader.memory.name == f"cri-containerd-{ENGINE_ID}.scope"
    reading = reader.read()
    # the pod container's figures (2 GiB limit), not the root group's (unlimited, 95 s of CPU)
    assert reading.memory_limit_bytes == 2147483648
    assert reading.cpu_usage_s == pytest.approx(124659.500367)


def test_docker_v1_without_a_namespace_reads_the_mount_point(tmp_path: Path, testdata: Path) -> None:
    # /proc/self/cgroup names /docker/<id>; the mounts show that same group as their root
    cid = "b29faf21b7eff959f64b4192c34d5d67a707fe8561e9eaa608cb27693fba4242"
    for controller in ("cpu,cpuacct", "memory"):
        shutil.copytree(testdata / DOCKER_V1, tmp_path / "sys/fs/cgroup" / controller)
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/cgroup").write_text(f"5:cpu,cpuacct:/docker/{cid}\n4:memory:/docker/{cid}\n0::/\n")
    (tmp_path / "proc/self/mountinfo").write_text(
        V1_MOUNTINFO.replace(" / /sys/fs/cgroup/", f" /docker/{cid} /sys/fs/cgroup/")
    )
    reader = detect(tmp_path)
    assert isinstance(reader, CgroupV1)
    assert reader.memory == tmp_path / "sys/fs/cgroup/memory"
    assert reader.read().cpu_usage_s == pytest.approx(95.996653175)


def _v2_pod_tree(tmp_path: Path, testdata: Path) -> Path:
    """A v2 node: the sidecar's and the engine's containers side by side in one pod group."""
    base = tmp_path / "sys/fs/cgroup"
    base.mkdir(parents=True)
    (base / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    (base / "cpu.stat").write_text("usage_usec 999999999999\n")  # the root group: no memory.current
    for cid, limit in ((SIDECAR_ID, 256 << 20), (ENGINE_ID, 16 << 30)):
        group = base / POD / f"cri-containerd-{cid}.scope"
        shutil.copytree(testdata / V2_SCOPE, group)
        (group / "memory.max").write_text(f"{limit}\n")
    (tmp_path / "proc/self").mkdir(parents=True)
    (tmp_path / "proc/self/cgroup").write_text(f"0::/{POD}/cri-containerd-{SIDECAR_ID}.scope\n")
    (tmp_path / "proc/self/mountinfo").write_text(V2_MOUNTINFO)
    return tmp_path


def test_v2_own_group_and_the_engine_container_by_id(tmp_path: Path, testdata: Path) -> None:
    root = _v2_pod_tree(tmp_path, testdata)
    own = detect(root)
    assert isinstance(own, CgroupV2)
    assert own.read().memory_limit_bytes == 256 << 20
    engine = detect(root, container_id=f"containerd://{ENGINE_ID}")
    assert isinstance(engine, CgroupV2)
    assert engine.path.name == f"cri-containerd-{ENGINE_ID}.scope"
    assert engine.read().memory_limit_bytes == 16 << 30
    assert detect(root, container_id="containerd://" + "f" * 64) is None  # no such container


def test_v2_engine_found_by_walking_when_not_a_sibling(tmp_path: Path, testdata: Path) -> None:
    root = _v2_pod_tree(tmp_path, testdata)
    (root / "proc/self/cgroup").write_text("0::/\n")  # the collector runs elsewhere on the node
    engine = detect(root, container_id=ENGINE_ID[:12])
    assert isinstance(engine, CgroupV2)
    assert engine.read().memory_limit_bytes == 16 << 30


def test_v2_root_group_is_no_container(tmp_path: Path, testdata: Path) -> None:
    root = _v2_pod_tree(tmp_path, testdata)
    (root / "proc/self/cgroup").write_text("0::/\n")
    # the root group has no memory.current: not a container; the reader falls back to /proc
    assert locate(root) is None


def test_group_path_outside_the_mount_falls_back_to_the_mount_point(tmp_path: Path) -> None:
    mount = Mount("/sys/fs/cgroup", "/kubepods", "cgroup2", frozenset())
    (tmp_path / "sys/fs/cgroup/x").mkdir(parents=True)
    assert group_dir(tmp_path, mount, "/other/x") == tmp_path / "sys/fs/cgroup"
    assert group_dir(tmp_path, mount, "/kubepods/x") == tmp_path / "sys/fs/cgroup/x"
    assert group_dir(tmp_path, mount, "/kubepods/../../etc") == tmp_path / "sys/fs/cgroup"


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=300))
def test_hostile_proc_files_parse_without_raising(text: str) -> None:
    for path in parse_proc_cgroup(text).values():
        assert path.startswith("/")
    for mount in parse_mountinfo(text):
        assert mount.fstype in ("cgroup", "cgroup2")


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from(["..", ".", "a", "b", "", "//"]), max_size=6))
def test_group_dir_never_leaves_the_mount(parts: list[str]) -> None:
    root = Path("/nonexistent-root")
    mount = Mount("/sys/fs/cgroup", "/", "cgroup2", frozenset())
    found = group_dir(root, mount, "/" + "/".join(parts))
    assert found.is_relative_to(root / "sys/fs/cgroup")


def test_container_id_forms_and_config_check() -> None:
    assert container_key("containerd://" + ENGINE_ID.upper()) == ENGINE_ID
    assert container_key("docker://abcdef123456") == "abcdef123456"
    for bad in ("", "short", "../../../etc/passwd", "x" * 200, "containerd://a/b/c/d/e/f/g"):
        with pytest.raises(ValueError, match="is not an id"):
            container_key(bad)
    with pytest.raises(ConfigError, match="container_id"):
        ResourcesConfig.from_dict({"container_id": "../etc"})
    assert ResourcesConfig.from_dict({"container_id": "cri-o://" + ENGINE_ID}).container_id.endswith(
        ENGINE_ID
    )


def test_this_machine_reads_the_group_this_process_is_in() -> None:
    """On the live machine: every group directory found lists this process in its cgroup.procs."""
    if not Path("/proc/self/cgroup").exists():
        pytest.skip("no /proc/self/cgroup here")
    found = locate(Path("/"))
    if found is None:
        pytest.skip("no cgroup v1 cpu/memory or v2 group with its files here")
    dirs = [found.path] if hasattr(found, "path") else [found.cpuacct, found.cpu, found.memory]
    for folder in dirs:
        procs = (folder / "cgroup.procs").read_text().split()
        assert str(os.getpid()) in procs, folder
    own = parse_proc_cgroup(Path("/proc/self/cgroup").read_text())
    # where this process's memory group is not the root one, the root group is not what is read
    if own.get("memory", "/") != "/" and not hasattr(found, "path"):
        assert found.memory != Path("/sys/fs/cgroup/memory")
