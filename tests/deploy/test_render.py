"""Each kustomization renders with ``kubectl kustomize``, and renders what it says it does."""

from __future__ import annotations

import pytest

from tests.deploy.rendered import APPLIED, container, objects, one, pod_spec, render


@pytest.mark.parametrize("kustomization", [*APPLIED, "base"])
def test_renders(kustomization: str) -> None:
    kinds = {obj["kind"] for obj in render(kustomization)}
    assert kinds & {"Deployment", "StatefulSet"}


@pytest.mark.parametrize("overlay", ["overlays/embedded", "overlays/cluster"])
def test_server_has_its_parts(overlay: str) -> None:
    deployment = one(overlay, "Deployment", "infersight-server")
    assert deployment["metadata"]["namespace"] == "infersight"
    for kind in ("Service", "PodDisruptionBudget", "ConfigMap", "Secret", "ServiceAccount"):
        assert objects(overlay, kind), f"{overlay}: no {kind}"
    server = container(deployment, "server")
    assert server["readinessProbe"]["httpGet"]["path"] == "/-/ready"
    assert server["livenessProbe"]["httpGet"]["path"] == "/-/healthy"
    assert server["image"] == "registry.example.com/infersight:0.1.0"  # the images: replacement
    assert "pip" not in " ".join(server.get("command", []) + server["args"])
    secret = one(overlay, "Secret", "infersight-admin")["metadata"]["name"]
    keys = [e["valueFrom"]["secretKeyRef"]["name"] for e in server["env"] if "valueFrom" in e]
    assert secret in keys  # the hashed name of the generated Secret, rewritten into the reference
    service = one(overlay, "Service", "infersight")
    assert service["spec"]["selector"].items() <= pod_spec_labels(deployment).items()


def pod_spec_labels(deployment: dict) -> dict:
    return deployment["spec"]["template"]["metadata"]["labels"]


def test_embedded_is_one_server_on_a_claim() -> None:
    deployment = one("overlays/embedded", "Deployment", "infersight-server")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}  # never two on one chDB folder
    (data,) = [v for v in pod_spec(deployment)["volumes"] if v["name"] == "data"]
    assert data == {"name": "data", "persistentVolumeClaim": {"claimName": "infersight-data"}}
    assert one("overlays/embedded", "PersistentVolumeClaim", "infersight-data")


def test_cluster_is_several_servers_on_clickhouse() -> None:
    deployment = one("overlays/cluster", "Deployment", "infersight-server")
    assert deployment["spec"]["replicas"] >= 2
    env = {e["name"]: e for e in container(deployment, "server")["env"]}
    dsn = env["INFERSIGHT_STORE_DSN"]["value"]
    assert dsn.startswith("clickhouse://infersight:$(CLICKHOUSE_PASSWORD)@")
    assert "cluster=infersight" in dsn
    # The password variable is defined before the DSN that refers to it (Kubernetes expands only
    # variables defined earlier in the list).
    names = [e["name"] for e in container(deployment, "server")["env"]]
    assert names.index("CLICKHOUSE_PASSWORD") < names.index("INFERSIGHT_STORE_DSN")
    # Every host the DSN names is a pod of the example ClickHouse cluster.
    hosts = {h.split(":")[0] for h in dsn.split("@", 1)[1].split("/")[0].split(",")}
    hosts |= {h.split(":")[0] for h in dsn.split("alt_hosts=")[1].split(",")}
    pods = {
        f"{s['metadata']['name']}-{i}.{s['spec']['serviceName']}"
        for s in objects("clickhouse", "StatefulSet")
        for i in range(s["spec"]["replicas"])
    }
    assert hosts <= pods


def test_clickhouse_is_two_shards_of_two_replicas_and_three_keepers() -> None:
    shards = [
        s for s in objects("clickhouse", "StatefulSet") if s["metadata"]["name"].startswith("clickhouse-s")
    ]
    assert sorted(s["spec"]["replicas"] for s in shards) == [2, 2]
    shard_values = sorted(
        e["value"]
        for s in shards
        for e in container(s, "clickhouse")["env"]
        if e["name"] == "CLICKHOUSE_SHARD"
    )
    assert shard_values == ["1", "2"]
    keeper = one("clickhouse", "StatefulSet", "clickhouse-keeper")
    assert keeper["spec"]["replicas"] == 3
    cluster_xml = next(c for c in objects("clickhouse", "ConfigMap") if "cluster.xml" in c.get("data", {}))
    text = cluster_xml["data"]["cluster.xml"]
    assert text.count("<shard>") == 2
    assert text.count("<replica>") == 4
    for i in range(3):
        assert f"clickhouse-keeper-{i}.clickhouse-keeper" in text
    # The servers' password Secret keeps its name (no hash suffix): overlays/cluster refers to it.
    assert one("clickhouse", "Secret", "clickhouse-infersight")["metadata"]["name"] == "clickhouse-infersight"


def test_sidecar_component_adds_container_rbac_and_mounts() -> None:
    deployment = one("examples/vllm", "Deployment", "my-llm")
    spec = pod_spec(deployment)
    assert [c["name"] for c in spec["containers"]] == ["infersight-sidecar", "engine"]
    assert spec["serviceAccountName"] == "infersight-sidecar"
    sidecar = container(deployment, "infersight-sidecar")
    assert sidecar["image"] == "registry.example.com/infersight:0.1.0"
    mounts = {m["mountPath"]: m for m in sidecar["volumeMounts"]}
    assert mounts["/host/cgroup"]["readOnly"] is True
    (cgroup,) = [v for v in spec["volumes"] if v["name"] == mounts["/host/cgroup"]["name"]]
    assert cgroup["hostPath"]["path"] == "/sys/fs/cgroup"
    role = one("examples/vllm", "Role", "infersight-sidecar-events")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list", "watch"]}]
    binding = one("examples/vllm", "RoleBinding", "infersight-sidecar-events")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "infersight-sidecar", "namespace": "llm"}
    ]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    # The proxy component: the Service sends clients through the proxy port.
    assert {"name": "infersight-proxy", "containerPort": 8080, "protocol": "TCP"} in sidecar["ports"]
    service = one("examples/vllm", "Service", "my-llm")
    assert service["spec"]["ports"][0]["targetPort"] == "infersight-proxy"
