"""The examples in ``examples/`` start as written, as real processes: ``run.yaml`` on one machine,
``server.yaml`` + ``sidecar.yaml`` split, each with the bundled simulator as the engine. Only the
ports are moved (``--listen``, ``--set``) so a busy machine's 9091/8000/8080 do not matter; no
environment variable is needed (auth and Kubernetes are off, their settings have defaults)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from infersight.cli import server_only
from infersight.config import load_config
from tests.infersight.cli_processes import (
    EXAMPLES,
    REPO,
    Process,
    free_port,
    port_is_free,
    run_cli,
    wait_for_query,
)

SOURCE = 'infer_service_request_total{source="my-llm-pod-0"}'


def _simulator(tmp_path: Path) -> tuple[Process, int]:
    port = free_port()
    sim = Process(["simulator", "--port", str(port)], tmp_path, "simulator")
    sim.wait_http(f"http://127.0.0.1:{port}/health")
    return sim, port


def _engine_at(port: int, proxy_port: int) -> list[str]:
    """The example's engine and proxy moved to free ports."""
    return [
        "--set",
        f"targets[0].url=http://127.0.0.1:{port}/metrics",
        "--set",
        f"targets[0].allowed_ports=[{port}]",
        "--set",
        f"proxy.listen=127.0.0.1:{proxy_port}",
        "--set",
        f"proxy.upstream=http://127.0.0.1:{port}",
        "--set",
        f"probes[0].url=http://127.0.0.1:{port}/health",
        "--set",
        "scrape.interval=1s",
        "--set",
        "scrape.timeout=1s",
    ]


def _ask(proxy_port: int) -> None:
    body = {"model": "sim-model", "prompt": "hello", "max_tokens": 4}
    response = httpx.post(f"http://127.0.0.1:{proxy_port}/v1/completions", json=body, timeout=30)
    assert response.status_code == 200, response.text  # the simulator injects no errors by default


@pytest.mark.parametrize("name", ["run", "server", "sidecar"])
def test_example_loads_without_any_environment(name: str) -> None:
    config = load_config(EXAMPLES / f"{name}.yaml", environ={})
    assert config.auth.enabled is False
    assert config.kubernetes.enabled is False


def test_readme_configuration_is_examples_run_yaml_verbatim() -> None:
    readme = (REPO / "README.md").read_text()
    block = readme.split("### Configuration", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    assert block == (EXAMPLES / "run.yaml").read_text()


def test_server_ignores_what_is_the_sidecars() -> None:
    config = load_config(EXAMPLES / "sidecar.yaml", environ={})
    assert config.targets
    assert config.proxy is not None
    assert config.probes
    assert config.sidecar.metrics_listen
    server = server_only(config)
    assert (server.targets, server.proxy, server.resources, server.probes) == ((), None, None, ())
    assert server.sidecar.metrics_listen == ""
    assert server.store == config.store


@pytest.mark.integration
def test_run_yaml_scrapes_the_simulator_and_answers_queries(tmp_path: Path) -> None:
    sim, engine = _simulator(tmp_path)
    api, proxy = free_port(), free_port()
    run = Process(
        [
            "run",
            "--config",
            str(EXAMPLES / "run.yaml"),
            "--listen",
            f"127.0.0.1:{api}",
            *_engine_at(engine, proxy),
        ],
        tmp_path,
        "run",
    )
    server = f"http://127.0.0.1:{api}"
    try:
        run.wait_http(f"{server}/-/ready")
        run.wait_http(f"http://127.0.0.1:{proxy}/health")
        _ask(proxy)
        table = wait_for_query(tmp_path, server, SOURCE)
        assert "6d26f238-52b0-4184-8b50-d621a0c80eb4" in table, table
        # The relative data folder of the example is under the folder it was started in.
        assert (tmp_path / "data" / "infersight" / "metadata").is_dir()
        verified = run_cli(["audit", "verify", "--server", server], tmp_path)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert verified.stdout.startswith("audit trail intact"), verified.stdout
    finally:
        assert run.stop() == 0, run.output()
        assert sim.stop() == 0, sim.output()  # SIGTERM ends the simulator cleanly


@pytest.mark.integration
def test_server_and_sidecar_yaml_split(tmp_path: Path) -> None:
    sim, engine = _simulator(tmp_path)
    api, proxy, own_metrics = free_port(), free_port(), free_port()
    server_url = f"http://127.0.0.1:{api}"
    server = Process(
        ["server", "--config", str(EXAMPLES / "server.yaml"), "--listen", f"127.0.0.1:{api}"],
        tmp_path,
        "server",
        INFERSIGHT_DATA=str(tmp_path / "server-data"),
    )
    sidecar = None
    try:
        server.wait_http(f"{server_url}/-/ready")
        assert httpx.get(f"{server_url}/-/healthy").text == "infersight is Healthy.\n"
        sidecar = Process(
            [
                "sidecar",
                "--config",
                str(EXAMPLES / "sidecar.yaml"),
                "--set",
                f"sidecar.metrics_listen=127.0.0.1:{own_metrics}",
                *_engine_at(engine, proxy),
            ],
            tmp_path,
            "sidecar",
            INFERSIGHT_SERVER=server_url,
        )
        sidecar.wait_http(f"http://127.0.0.1:{own_metrics}/metrics")
        sidecar.wait_http(f"http://127.0.0.1:{proxy}/health")
        _ask(proxy)
        table = wait_for_query(tmp_path, server_url, SOURCE)
        assert "my-llm" in table, table
        assert (tmp_path / "server-data" / "metadata").is_dir()  # ${INFERSIGHT_DATA:-...} was read
        assert (tmp_path / "data" / "sidecar").is_dir()  # the sidecar's buffer.dir
        assert not (tmp_path / "data" / "infersight").exists()  # nobody used the default folder
    finally:
        if sidecar is not None:
            assert sidecar.stop() == 0, sidecar.output()
        assert server.stop() == 0, server.output()
        assert sim.stop() == 0, sim.output()  # SIGTERM ends the simulator cleanly


@pytest.mark.integration
def test_server_with_the_sidecars_file_leaves_its_ports_alone(tmp_path: Path) -> None:
    """One file for both commands: the server scrapes nothing and binds only its API."""
    api, proxy, own_metrics = free_port(), free_port(), free_port()
    server = Process(
        [
            "server",
            "--config",
            str(EXAMPLES / "sidecar.yaml"),
            "--listen",
            f"127.0.0.1:{api}",
            "--data",
            str(tmp_path / "data"),
            "--set",
            f"proxy.listen=127.0.0.1:{proxy}",
            "--set",
            f"sidecar.metrics_listen=127.0.0.1:{own_metrics}",
        ],
        tmp_path,
        "server",
    )
    try:
        server.wait_http(f"http://127.0.0.1:{api}/-/ready")
        assert port_is_free(proxy)
        assert port_is_free(own_metrics)
        deadline = time.monotonic() + 60  # held start-up lines are written once the start succeeded
        while "`infersight server` ignores them" not in server.output() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "targets, proxy, resources, probes in the configuration are the sidecar's" in server.output()
    finally:
        assert server.stop() == 0, server.output()
