"""The security properties a scanner (checkov's CKV_K8S_10-13, 20, 22, 23, 28, 37, 14) looks for, as
a test over every rendered workload: non-root, no privilege escalation, read-only root filesystem,
all capabilities dropped, requests and limits for CPU and memory, a fixed image tag.

checkov itself needs too many pinned dependencies to share the project's environment; run it by
hand with ``checkov -d <rendered> --framework kubernetes`` (docs/deploy.md lists what it still
flags and why).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.deploy.rendered import APPLIED, WORKLOAD_KINDS, pod_spec, render


def problems(workload: dict[str, Any]) -> list[str]:
    """What is wrong with one workload, one line per container and rule."""
    spec = pod_spec(workload)
    pod_ctx = spec.get("securityContext", {})
    out = []
    if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
        out.append("shares the node's network, PID or IPC namespace")
    for c in [*spec.get("initContainers", []), *spec["containers"]]:
        ctx = c.get("securityContext", {})
        name = f"{workload['metadata']['name']}/{c['name']}"

        def setting(key: str, ctx: dict = ctx) -> Any:
            return ctx.get(key, pod_ctx.get(key))

        if setting("runAsNonRoot") is not True:
            out.append(f"{name}: runAsNonRoot is not true")
        if setting("runAsUser") == 0:
            out.append(f"{name}: runs as uid 0")
        if ctx.get("allowPrivilegeEscalation") is not False:
            out.append(f"{name}: allowPrivilegeEscalation is not false")
        if ctx.get("privileged"):
            out.append(f"{name}: privileged")
        if ctx.get("readOnlyRootFilesystem") is not True:
            out.append(f"{name}: root filesystem is writable")
        if "ALL" not in ctx.get("capabilities", {}).get("drop", []) or ctx.get("capabilities", {}).get("add"):
            out.append(f"{name}: capabilities are not all dropped")
        if (setting("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
            out.append(f"{name}: no seccomp profile")
        resources = c.get("resources", {})
        for part in ("requests", "limits"):
            for what in ("cpu", "memory"):
                if what not in resources.get(part, {}):
                    out.append(f"{name}: no {what} {part[:-1]}")
        image = c["image"]
        tag = image.rsplit("@", 1)[0].rsplit("/", 1)[-1].partition(":")[2]
        if "@sha256:" not in image and tag in ("", "latest"):
            out.append(f"{name}: image {image} has no fixed tag")
    for volume in spec.get("volumes", []):
        path = volume.get("hostPath", {}).get("path")
        if path is not None:
            mounts = [
                m
                for c in spec["containers"]
                for m in c.get("volumeMounts", [])
                if m["name"] == volume["name"]
            ]
            if any(not m.get("readOnly") for m in mounts) or path in ("/", "/var/run/docker.sock", "/proc"):
                out.append(f"{workload['metadata']['name']}: hostPath {path} is writable or too wide")
    return out


def workloads(kustomization: str) -> list[dict[str, Any]]:
    return [obj for obj in render(kustomization) if obj["kind"] in WORKLOAD_KINDS]


@pytest.mark.parametrize("kustomization", APPLIED)
def test_workloads_pass(kustomization: str) -> None:
    found = workloads(kustomization)
    assert found
    assert [p for w in found for p in problems(w)] == []


@pytest.mark.parametrize("kustomization", APPLIED)
def test_service_account_tokens_only_where_used(kustomization: str) -> None:
    """Only a pod with the sidecar (the events watch) gets an API token."""
    for workload in workloads(kustomization):
        spec = pod_spec(workload)
        has_sidecar = any(c["name"] == "infersight-sidecar" for c in spec["containers"])
        assert spec.get("automountServiceAccountToken") is has_sidecar, workload["metadata"]["name"]


def test_each_rule_can_fail() -> None:
    """Breaking one setting at a time is reported, so the test above is not vacuous."""
    good = next(w for w in workloads("examples/vllm") if w["kind"] == "Deployment")
    assert problems(good) == []
    pod: dict[str, Any] = {}
    breakages = {
        # the pod's own setting would still apply: both go
        "runAsNonRoot": lambda c: [c["securityContext"].pop("runAsNonRoot"), pod.pop("runAsNonRoot")],
        "allowPrivilegeEscalation": lambda c: c["securityContext"].update(allowPrivilegeEscalation=True),
        "writable": lambda c: c["securityContext"].update(readOnlyRootFilesystem=False),
        "capabilities": lambda c: c["securityContext"].update(capabilities={"add": ["NET_ADMIN"]}),
        "limit": lambda c: c["resources"]["limits"].pop("memory"),
        "request": lambda c: c["resources"]["requests"].pop("cpu"),
        "tag": lambda c: c.update(image="registry.example.com/infersight:latest"),
        "seccomp": lambda c: [c["securityContext"].pop("seccompProfile"), pod.pop("seccompProfile")],
        "uid 0": lambda c: c["securityContext"].update(runAsUser=0),
    }
    for what, breaking in breakages.items():
        bad = copy.deepcopy(good)
        pod = pod_spec(bad)["securityContext"]
        breaking(pod_spec(bad)["containers"][0])  # the sidecar: it sets every rule on itself
        assert problems(bad), what
    writable_host = copy.deepcopy(good)
    for c in pod_spec(writable_host)["containers"]:
        for m in c.get("volumeMounts", []):
            m.pop("readOnly", None)
    assert problems(writable_host)
