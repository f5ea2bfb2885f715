"""The sidecar's identity comes out right from a pod's labels: the rendered ConfigMap, the env the
downward API gives a pod with those labels, and infersight's own config loader."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from infersight.config import Config, load_config
from infersight.k8s import pod_identity
from tests.deploy.rendered import config_map_file, container, one

KUSTOMIZATION = "examples/vllm"
FIELD = re.compile(r"metadata\.labels\['([^']+)'\]$")


def downward_env(c: dict[str, Any], pod: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the kubelet would set it for ``pod`` (name, namespace, uid,
    labels); an absent label is an empty value, as the downward API gives it."""
    env: dict[str, str] = {}
    for item in c["env"]:
        if "value" in item:
            env[item["name"]] = re.sub(
                r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), item["value"]
            )
            continue
        if "secretKeyRef" in item["valueFrom"]:
            continue  # the optional key Secret: absent in these pods
        path = item["valueFrom"]["fieldRef"]["fieldPath"]
        label = FIELD.match(path)
        if label:
            env[item["name"]] = pod["labels"].get(label.group(1), "")
        else:
            env[item["name"]] = {"metadata.name": pod["name"], "metadata.namespace": pod["namespace"],
                                 "metadata.uid": pod["uid"]}[path]  # fmt: skip
    return env


def sidecar_config(tmp_path: Path, pod: dict[str, Any], extra_env: dict[str, str] | None = None) -> Config:
    deployment = one(KUSTOMIZATION, "Deployment", "my-llm")
    sidecar = container(deployment, "infersight-sidecar")
    config_file = tmp_path / "sidecar.yaml"
    config_file.write_text(
        config_map_file(KUSTOMIZATION, deployment, "infersight-sidecar-config", "sidecar.yaml")
    )
    env = {**downward_env(sidecar, pod), **(extra_env or {})}
    args = sidecar["args"]
    overrides = [args[i + 1] for i, a in enumerate(args) if a == "--set"]
    return load_config(config_file, overrides, environ=env)


def example_pod() -> dict[str, Any]:
    deployment = one(KUSTOMIZATION, "Deployment", "my-llm")
    return {
        "name": "my-llm-5d8f7c9b4-x2x7q",
        "namespace": deployment["metadata"]["namespace"],
        "uid": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
        "labels": deployment["spec"]["template"]["metadata"]["labels"],
    }


def test_identity_from_the_example_pod(tmp_path: Path) -> None:
    config = sidecar_config(tmp_path, example_pod())
    (target,) = config.targets
    assert target.identity() == {
        "service_id": "6d26f238-52b0-4184-8b50-d621a0c80eb4",
        "service_name": "my-llm",
        "group_id": "my-llm-deployment-0",
        "project_id": "0123456789abcdef",
        "instance_name": "my-llm-instance-0",
        "source": "my-llm-5d8f7c9b4-x2x7q",
    }
    assert target.engine == "vllm"
    assert target.scrape_url(config.scrape) == "http://127.0.0.1:8000/metrics"
    # The events watch: this pod in its namespace, with the same identity.
    assert (config.kubernetes.enabled, config.kubernetes.namespace, config.kubernetes.pod) == (
        True, "llm", "my-llm-5d8f7c9b4-x2x7q",
    )  # fmt: skip
    assert pod_identity(config).service_id == target.service_id
    assert config.sidecar.ship_to == "http://infersight.infersight.svc:9091"
    # The proxy component's flags turned the proxy on, in front of the engine.
    assert config.proxy is not None
    assert (config.proxy.listen, config.proxy.upstream) == ("0.0.0.0:8080", "http://127.0.0.1:8000")
    assert config.sidecar.metrics_listen == "0.0.0.0:9100"
    assert config.buffer.dir == "/var/lib/infersight/buffer"
    assert config.resources is not None
    assert config.resources.cgroup_dir == ""


def test_absent_labels_leave_identity_labels_off_and_engine_default(tmp_path: Path) -> None:
    pod = {**example_pod(), "labels": {"app.kubernetes.io/name": "bare"}}
    config = sidecar_config(tmp_path, pod)
    (target,) = config.targets
    assert target.identity() == {"service_name": "bare", "source": "my-llm-5d8f7c9b4-x2x7q"}
    assert target.engine == "vllm"


LABEL_VALUE = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9_.-]{0,40}[A-Za-z0-9])?", fullmatch=True)


@settings(max_examples=60, deadline=None)
@given(
    service_id=LABEL_VALUE,
    name=LABEL_VALUE,
    group=LABEL_VALUE,
    project=LABEL_VALUE,
    instance=LABEL_VALUE,
    role=st.sampled_from(["", "prefill", "decode"]),
    engine=st.sampled_from(["vllm", "sglang", "tgi", "llamacpp", "mindie", "generic"]),
)
def test_any_valid_labels_become_the_identity(
    tmp_path_factory: Any, service_id: str, name: str, group: str, project: str, instance: str, role: str,
    engine: str,
) -> None:  # fmt: skip
    """Any label values Kubernetes accepts (its value syntax: numbers, dots, dashes) come out as
    the same strings, never as YAML numbers, booleans or nulls."""
    labels = {
        "infersight.io/service-id": service_id,
        "app.kubernetes.io/name": name,
        "infersight.io/group-id": group,
        "infersight.io/project-id": project,
        "app.kubernetes.io/instance": instance,
        "infersight.io/engine": engine,
    }
    if role:
        labels["infersight.io/role"] = role
    config = sidecar_config(tmp_path_factory.mktemp("pod"), {**example_pod(), "labels": labels})
    (target,) = config.targets
    expected = {"service_id": service_id, "service_name": name, "group_id": group, "project_id": project,
                "instance_name": instance, "source": "my-llm-5d8f7c9b4-x2x7q"}  # fmt: skip
    if role:
        expected["role"] = role
    assert target.identity() == expected
    assert target.engine == engine


def start_script(tmp_path: Path) -> Path:
    deployment = one(KUSTOMIZATION, "Deployment", "my-llm")
    script = tmp_path / "start-sidecar.sh"
    script.write_text(
        config_map_file(KUSTOMIZATION, deployment, "infersight-sidecar-config", "start-sidecar.sh")
    )
    return script


def run_start(tmp_path: Path, pod_uid: str, host_cgroup: Path) -> list[str]:
    """Run the sidecar's start script with a stand-in ``infersight`` that prints what it got."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "infersight"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "cgroup=$INFERSIGHT_POD_CGROUP" "$@"\n')
    fake.chmod(0o755)
    deployment = one(KUSTOMIZATION, "Deployment", "my-llm")
    sidecar = container(deployment, "infersight-sidecar")
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "POD_UID": pod_uid, "HOST_CGROUP": str(host_cgroup)}
    done = subprocess.run(
        [*sidecar["command"][:1], str(start_script(tmp_path)), *sidecar["args"]],
        env=env, capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return done.stdout.splitlines()


def make_cgroup(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "cgroup.controllers").write_text("cpu memory\n")
    return path


def test_start_script_finds_the_pods_cgroup(tmp_path: Path) -> None:
    uid = str(uuid.UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"))
    host = tmp_path / "cgroup"
    under = uid.replace("-", "_")
    # Another pod's group, and this pod's under the systemd driver's Burstable slice.
    make_cgroup(host / "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1111_2222.slice")
    mine = make_cgroup(host / f"kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{under}.slice")
    out = run_start(tmp_path, uid, host)
    assert out[0] == f"cgroup={mine}"
    assert out[1:4] == ["sidecar", "--config", "/etc/infersight-sidecar/sidecar.yaml"]
    assert out[4:] == ["--set", "proxy.listen=0.0.0.0:8080", "--set", "proxy.upstream=http://127.0.0.1:8000"]


def test_start_script_guaranteed_and_cgroupfs_layouts(tmp_path: Path) -> None:
    uid = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    guaranteed = make_cgroup(tmp_path / "a" / f"kubepods.slice/kubepods-pod{uid.replace('-', '_')}.slice")
    assert run_start(tmp_path, uid, tmp_path / "a")[0] == f"cgroup={guaranteed}"
    cgroupfs = make_cgroup(tmp_path / "b" / f"kubepods/besteffort/pod{uid}")
    assert run_start(tmp_path, uid, tmp_path / "b")[0] == f"cgroup={cgroupfs}"


def test_start_script_without_a_match_reads_its_own_cgroup(tmp_path: Path) -> None:
    """No mount, cgroup v1 (no cgroup.controllers) or no UID: empty, so resources fall back."""
    uid = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    (tmp_path / "v1" / f"kubepods/pod{uid}").mkdir(parents=True)
    assert run_start(tmp_path, uid, tmp_path / "v1")[0] == "cgroup="
    assert run_start(tmp_path, uid, tmp_path / "absent")[0] == "cgroup="
    make_cgroup(tmp_path / "c" / "kubepods.slice/kubepods-pod.slice")
    assert run_start(tmp_path, "", tmp_path / "c")[0] == "cgroup="
