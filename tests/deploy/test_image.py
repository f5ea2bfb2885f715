"""The image recipe (Dockerfile) and the server's configuration in the manifests, checked without
building: hadolint, a pinned base, a non-root user, the wheel installed offline, and every path the
configuration writes on a volume (the root filesystem is read-only)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath

import pytest

from infersight.config import Config, audit_paths, load_config, state_dir
from store.open import chdb_path
from tests.deploy.rendered import REPO, config_map_file, container, one, pod_spec

DOCKERFILE = REPO / "Dockerfile"
WORKDIR = PurePosixPath("/var/lib/infersight")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments left out."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (k, _) in enumerate(steps) if k == "FROM")
    return steps[last_from:]


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    done = subprocess.run(
        [hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_base_image_is_pinned() -> None:
    stages = {rest.split()[-1] for k, rest in instructions() if k == "FROM" and " AS " in rest.upper()}
    for keyword, rest in instructions():
        if keyword != "FROM":
            continue
        image = rest.split()[0]
        if image in stages:
            continue
        tag = image.partition("@")[0].rpartition(":")[2]
        # An exact version (x.y.z) or a digest: never latest, never a moving x.y tag.
        assert "@sha256:" in image or re.match(r"\d+\.\d+\.\d+", tag), image


def test_runs_as_a_non_root_user() -> None:
    users = [rest for k, rest in final_stage() if k == "USER"]
    assert users, "the final stage sets no USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit()  # numeric: runAsNonRoot can check it
    assert int(uid) >= 10000
    deployment = one("overlays/embedded", "Deployment", "infersight-server")
    assert pod_spec(deployment)["securityContext"]["runAsUser"] == int(uid)


def test_the_wheel_is_built_and_installed_offline() -> None:
    steps = instructions()
    runs = [rest for k, rest in steps if k == "RUN"]
    assert any("python -m build --wheel" in r for r in runs)
    for keyword, rest in final_stage():
        if keyword == "RUN" and "pip install" in rest:
            # only from the wheels the build stage made, never the package from a registry
            assert "--no-index" in rest
            assert "--find-links=/wheels" in rest
    final_runs = " ".join(r for k, r in final_stage() if k == "RUN")
    assert "pip uninstall --yes pip setuptools wheel" in final_runs  # no build tools left
    assert not re.search(r"apt-get install|gcc|build-essential", final_runs)


def test_every_packaged_folder_is_copied_and_not_ignored() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]]
    copied = {
        source.rstrip("/")
        for k, rest in instructions()
        if k == "COPY" and "--from" not in rest
        for source in rest.split()[:-1]  # the last one is the destination
    }
    allowed = {
        line.strip().lstrip("!").rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()
    }
    for needed in [*packages, "pyproject.toml", "README.md", "LICENSE"]:
        assert needed in copied, f"the build stage does not copy {needed}"
        assert needed in allowed, f".dockerignore leaves out {needed}"


def declared_volumes() -> list[PurePosixPath]:
    found = []
    for keyword, rest in final_stage():
        if keyword == "VOLUME":
            found += [PurePosixPath(p) for p in re.findall(r'"([^"]+)"', rest) or rest.split()]
    return found


def image_env() -> dict[str, str]:
    env = {}
    for keyword, rest in final_stage():
        if keyword == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def under(path: PurePosixPath, roots: list[PurePosixPath]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def test_scratch_paths_are_volumes() -> None:
    volumes = declared_volumes()
    env = image_env()
    for key in ("TMPDIR", "NUMBA_CACHE_DIR", "HOME"):
        assert under(PurePosixPath(env[key]), volumes), key
    workdir = [rest for k, rest in final_stage() if k == "WORKDIR"][-1]
    assert PurePosixPath(workdir) == WORKDIR
    assert under(WORKDIR, volumes)


def server_config(tmp_path: Path, overlay: str) -> tuple[Config, list[PurePosixPath]]:
    """The server's config as its container would load it, and the container's writable mounts."""
    deployment = one(overlay, "Deployment", "infersight-server")
    server = container(deployment, "server")
    path = tmp_path / "server.yaml"
    path.write_text(config_map_file(overlay, deployment, "config", "server.yaml"))
    env = {"INFERSIGHT_ADMIN_KEY": "k" * 32, "CLICKHOUSE_PASSWORD": "secret"}
    for item in server["env"]:
        if "value" in item:
            env[item["name"]] = re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], item["value"])
    args = server["args"]
    assert args[:3] == ["server", "--config", "/etc/infersight/server.yaml"]
    writable = [PurePosixPath(m["mountPath"]) for m in server["volumeMounts"] if not m.get("readOnly")]
    return load_config(path, environ=env), writable


@pytest.mark.parametrize("overlay", ["overlays/embedded", "overlays/cluster"])
def test_every_path_the_server_writes_is_a_mounted_volume(tmp_path: Path, overlay: str) -> None:
    config, writable = server_config(tmp_path, overlay)
    assert config.server.listen == "0.0.0.0:9091"
    written = [PurePosixPath(config.buffer.dir)]
    # Relative paths (a server-backed store's .infersight) are relative to the image's WORKDIR.
    written += [WORKDIR / p for p in (state_dir(config), *audit_paths(config))]
    if config.store.dsn.startswith("chdb://"):
        written.append(PurePosixPath(chdb_path(config.store.dsn)))
    for path in written:
        assert under(path, writable), f"{overlay}: {path} is not on a writable volume"
        assert under(path, declared_volumes()), f"Dockerfile: {path} is not under a VOLUME"
    assert under(PurePosixPath(image_env()["TMPDIR"]), writable)


def test_embedded_and_cluster_stores(tmp_path: Path) -> None:
    embedded, _ = server_config(tmp_path, "overlays/embedded")
    assert embedded.store.dsn == "chdb:///var/lib/infersight/data"
    cluster, _ = server_config(tmp_path, "overlays/cluster")
    assert cluster.store.dsn.startswith("clickhouse://infersight:secret@clickhouse-s1-0.clickhouse:9000/")
    assert cluster.auth.enabled is False
    assert cluster.auth.admin_key == "k" * 32  # from the Secret, ready for when auth is turned on
