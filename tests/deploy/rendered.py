"""The manifests under deploy/kubernetes as Kubernetes would receive them: ``kubectl kustomize``.

Rendered once per kustomization (a render takes a fraction of a second, but every test reads them).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
KUBERNETES = REPO / "deploy" / "kubernetes"
# Everything a user applies: the two server overlays, the example ClickHouse cluster, an inference
# Deployment with the sidecar components.
APPLIED = ("overlays/embedded", "overlays/cluster", "clickhouse", "examples/vllm")
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet", "Pod")


def kubectl() -> str:
    """kubectl with its built-in kustomize. No Debian package carries it, so a machine without it
    skips the rendering tests (with this reason) rather than failing them."""
    found = shutil.which("kubectl") or "/usr/bin/kubectl"
    if not Path(found).exists():
        pytest.skip("kubectl is not installed: the manifests cannot be rendered here")
    return found


@functools.cache
def render(kustomization: str) -> tuple[dict[str, Any], ...]:
    """The objects ``kubectl kustomize deploy/kubernetes/<kustomization>`` prints."""
    done = subprocess.run(
        [kubectl(), "kustomize", str(KUBERNETES / kustomization)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"kubectl kustomize {kustomization} failed: {done.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(done.stdout) if doc)


def objects(kustomization: str, kind: str) -> list[dict[str, Any]]:
    return [obj for obj in render(kustomization) if obj["kind"] == kind]


def one(kustomization: str, kind: str, name: str) -> dict[str, Any]:
    found = [obj for obj in objects(kustomization, kind) if obj["metadata"]["name"].startswith(name)]
    assert len(found) == 1, f"{kustomization}: expected one {kind} {name}, found {len(found)}"
    return found[0]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    """The pod template's spec of any workload kind."""
    if workload["kind"] == "Pod":
        return workload["spec"]
    if workload["kind"] == "CronJob":
        return workload["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return workload["spec"]["template"]["spec"]


def container(workload: dict[str, Any], name: str) -> dict[str, Any]:
    found = [c for c in pod_spec(workload)["containers"] if c["name"] == name]
    assert found, f"{workload['metadata']['name']}: no container {name}"
    return found[0]


def config_map_file(kustomization: str, workload: dict[str, Any], volume: str, key: str) -> str:
    """The file ``key`` of the ConfigMap that ``workload`` mounts as ``volume``."""
    (source,) = [v for v in pod_spec(workload)["volumes"] if v["name"] == volume]
    name = source["configMap"]["name"]
    (config_map,) = [c for c in objects(kustomization, "ConfigMap") if c["metadata"]["name"] == name]
    return config_map["data"][key]
