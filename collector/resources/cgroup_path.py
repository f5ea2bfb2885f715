"""Which cgroup directory is this container's: ``/proc/self/cgroup`` read under the mount points of
``/proc/self/mountinfo`` (cgroups(7), proc(5)), as runc and cAdvisor find a process's group.

``/proc/self/cgroup`` names the process's group per hierarchy (``0::/path`` for v2, ``4:memory:/path``
for a v1 controller), relative to the hierarchy's root; mountinfo says where each hierarchy is
mounted and which of its paths the mount shows (its root field). The directory is the mount point
joined with the group path below that root:

- in a container with its own cgroup namespace (the default with cgroup v2) the group path is
  ``/`` and the mount root ``/``: the mount point itself;
- in a Docker container without one (cgroup v1), the group path is ``/docker/<id>`` and so is the
  mount root: again the mount point;
- on a host, or in a pod that sees the node's hierarchy, the group path is e.g.
  ``/kubepods.slice/…/cri-containerd-<id>.scope`` below a mount root ``/``: that directory, not
  the root group (reading the root group gave the whole machine's figures).

A group path outside the mount's root, or a directory that is not there, falls back to the mount
point. Without mountinfo (a test tree), the usual layout is assumed: v2 at ``/sys/fs/cgroup`` (or
``unified/`` beside v1), v1 controllers in folders named by their controllers, each mounted at ``/``.

``container_id`` (a Kubernetes ``containerID`` such as ``containerd://1d3d…``, or the bare id) picks
another container's group instead of this process's: the sidecar reading the engine container of
its pod. It is looked for first among the siblings of this process's group (the pod's other
containers), then in a bounded walk of the hierarchy; a directory whose name contains the id is it
(``cri-containerd-<id>.scope``, ``docker-<id>.scope``, ``<id>``).
"""

from __future__ import annotations

import os
import re
from collections import deque
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

V1_CONTROLLERS = ("cpuacct", "cpu", "memory")
UNIFIED = ""  # the key of the v2 hierarchy's path in parse_proc_cgroup's answer
CONTAINER_ID = re.compile(r"^(?:[a-z0-9-]+://)?([0-9a-zA-Z_.-]{12,128})$")
MAX_WALK_DIRS = 20_000
MAX_WALK_DEPTH = 8
_OCTAL = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True, slots=True)
class Mount:
    """A cgroup filesystem mount: where, which of its paths it shows, v1 or v2, the v1 controllers."""

    point: str
    root: str
    fstype: str
    options: frozenset[str]


@dataclass(frozen=True, slots=True)
class V2Group:
    path: Path


@dataclass(frozen=True, slots=True)
class V1Groups:
    cpuacct: Path
    cpu: Path
    memory: Path


def container_key(container_id: str) -> str:
    """The id part of ``containerd://1d3d…`` (or a bare id), lowercase; ValueError if it is none."""
    match = CONTAINER_ID.match(container_id.strip())
    if match is None:
        raise ValueError(
            f"container id {container_id[:80]!r} is not an id of 12-128 letters, digits, '_', '.', '-' "
            "with an optional scheme (containerd://, docker://, cri-o://)"
        )
    return match.group(1).lower()


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """``hierarchy-ID:controller-list:path`` lines → {controller: path}; the v2 path under ``""``."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3 or not parts[2].startswith("/"):
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            out[UNIFIED] = path
            continue
        for controller in controllers.split(","):
            if controller:
                out[controller] = path
    return out


def _unescape(field: str) -> str:
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """The cgroup and cgroup2 mounts of proc(5) mountinfo lines (fields before and after `` - ``)."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        options = frozenset(tail[2].split(","))
        mounts.append(Mount(_unescape(fields[4]), _unescape(fields[3]), tail[0], options))
    return mounts


def default_mounts(root: Path) -> list[Mount]:
    """The usual layout under ``root/sys/fs/cgroup``, for a tree without mountinfo."""
    base = root / "sys" / "fs" / "cgroup"
    if (base / "cgroup.controllers").exists():
        return [Mount("/sys/fs/cgroup", "/", "cgroup2", frozenset())]
    mounts = []
    if base.is_dir():
        for entry in sorted(base.iterdir()):
            if not entry.is_dir() or entry.is_symlink():
                continue
            point = f"/sys/fs/cgroup/{entry.name}"
            if (entry / "cgroup.controllers").exists():
                mounts.append(Mount(point, "/", "cgroup2", frozenset()))
            else:
                mounts.append(Mount(point, "/", "cgroup", frozenset(entry.name.split(","))))
    return mounts


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def group_dir(root: Path, mount: Mount, path: str) -> Path:
    """The directory of group ``path`` under ``mount``; the mount point when it is not below it."""
    base = root / mount.point.lstrip("/")
    group, mount_root = PurePosixPath(path), PurePosixPath(mount.root)
    if ".." in group.parts:
        return base
    try:
        below = group.relative_to(mount_root)
    except ValueError:
        return base
    candidate = base / below
    return candidate if str(below) != "." and candidate.is_dir() else base


def find_container(base: Path, own: Path, key: str) -> Path | None:
    """The directory named for container ``key``: a sibling of ``own`` first, then a breadth-first
    walk below ``base`` of at most ``MAX_WALK_DIRS`` folders and ``MAX_WALK_DEPTH`` levels."""

    def named(folder: Path) -> Path | None:
        try:
            with os.scandir(folder) as entries:
                for e in entries:
                    if key in e.name.lower() and e.is_dir(follow_symlinks=False):
                        return Path(e.path)
        except OSError:
            return None
        return None

    if own != base and (hit := named(own.parent)) is not None:
        return hit
    queue: deque[tuple[Path, int]] = deque([(base, 0)])
    seen = 0
    while queue and seen < MAX_WALK_DIRS:
        folder, depth = queue.popleft()
        seen += 1
        if (hit := named(folder)) is not None:
            return hit
        if depth >= MAX_WALK_DEPTH:
            continue
        try:
            with os.scandir(folder) as entries:
                queue.extend((Path(e.path), depth + 1) for e in entries if e.is_dir(follow_symlinks=False))
        except OSError:
            continue
    return None


def _pick(root: Path, mount: Mount, path: str, key: str) -> Path | None:
    own = group_dir(root, mount, path)
    if not key:
        return own
    return find_container(root / mount.point.lstrip("/"), own, key)


def locate(root: Path, mode: str = "auto", container_id: str = "") -> V2Group | V1Groups | None:
    """The group directories to read (see the module's docstring), or None when there is no usable
    group: no cgroup filesystem, the container not found, or a v2 root group (it has no
    ``memory.current``; the caller then reads the host's /proc, which is what that group is)."""
    key = container_key(container_id) if container_id else ""
    own_text = _read(root / "proc" / "self" / "cgroup")
    own = parse_proc_cgroup(own_text) if own_text is not None else {}
    mountinfo = _read(root / "proc" / "self" / "mountinfo")
    mounts = parse_mountinfo(mountinfo) if mountinfo is not None else default_mounts(root)
    if mode in ("auto", "v2"):
        unified = next((m for m in mounts if m.fstype == "cgroup2"), None)
        enabled = _read(root / unified.point.lstrip("/") / "cgroup.controllers") if unified else None
        if unified is not None and enabled is not None and {"cpu", "memory"} <= set(enabled.split()):
            found = _pick(root, unified, own.get(UNIFIED, "/"), key)
            if found is not None and (found / "cpu.stat").exists() and (found / "memory.current").exists():
                return V2Group(found)
    if mode in ("auto", "v1"):
        dirs: dict[str, Path] = {}
        for controller in V1_CONTROLLERS:
            mount = next((m for m in mounts if m.fstype == "cgroup" and controller in m.options), None)
            found = _pick(root, mount, own.get(controller, "/"), key) if mount is not None else None
            if found is None:
                return None
            dirs[controller] = found
        if (dirs["cpuacct"] / "cpuacct.usage").exists() and (
            dirs["memory"] / "memory.usage_in_bytes"
        ).exists():
            return V1Groups(dirs["cpuacct"], dirs["cpu"], dirs["memory"])
    return None
