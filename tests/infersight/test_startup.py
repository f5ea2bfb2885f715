"""Start-up problems, through the real CLI as a subprocess: one line on stderr naming the problem,
exit status 2, no traceback, no crash, no hang — for ``server``, ``run``, ``sidecar`` and ``demo``.

And the one problem that is not fatal: ``infersight server`` whose ClickHouse server is down at
start serves anyway, logs what it is sent, answers reads 503 and stores the batch once it is back.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.store.clickhouse_server import ClickHouseServer, free_port, require_binary

REPO = Path(__file__).resolve().parents[2]
EXIT_TIMEOUT_S = 180  # generous: a loaded machine; the point is only that it exits
COMMANDS = ("server", "run", "sidecar", "demo")


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-m", "infersight.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=EXIT_TIMEOUT_S,
        check=False,
    )


def _assert_one_line(result: subprocess.CompletedProcess[str], *named: str) -> str:
    lines = result.stderr.splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert len(lines) == 1, result.stderr[-3000:]
    (line,) = lines
    assert line.startswith("infersight: "), line
    assert "Traceback" not in result.stderr
    for word in named:
        assert word in line, line
    return line


def _target_config(tmp_path: Path, listen_port: int, extra: str = "", dsn: str | None = None) -> Path:
    store = dsn or f"chdb://{tmp_path / 'data'}"
    path = tmp_path / "infersight.yaml"
    path.write_text(
        f"""
store: {{dsn: "{store}"}}
server: {{listen: "127.0.0.1:{listen_port}"}}
sidecar: {{ship_to: "http://127.0.0.1:{listen_port}"}}
buffer: {{dir: "{tmp_path / "buffer"}"}}
targets:
  - {{url: "http://127.0.0.1:9/metrics", engine: vllm, allowed_ports: [9]}}
{extra}
"""
    )
    return path


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.mark.parametrize("command", ["server", "run", "demo"])
def test_busy_api_port(tmp_path: Path, busy_port: int, command: str) -> None:
    config = _target_config(tmp_path, busy_port)
    args = [command, "--config", str(config)] + (["--duration", "5"] if command == "demo" else [])
    _assert_one_line(_cli(args, tmp_path), "server.listen", str(busy_port), "in use")


@pytest.mark.parametrize("command", ["run", "sidecar"])
def test_busy_proxy_port(tmp_path: Path, busy_port: int, command: str) -> None:
    extra = f'proxy: {{listen: "127.0.0.1:{busy_port}", upstream: "http://127.0.0.1:9"}}'
    config = _target_config(tmp_path, free_port(), extra)
    _assert_one_line(_cli([command, "--config", str(config)], tmp_path), str(busy_port), "in use")


@pytest.mark.parametrize("command", ["server", "run", "demo"])
def test_data_folder_that_cannot_be_written(tmp_path: Path, command: str) -> None:
    (tmp_path / "a-file").write_text("")
    config = _target_config(tmp_path, free_port(), dsn=f"chdb://{tmp_path / 'a-file' / 'data'}")
    args = [command, "--config", str(config)] + (["--duration", "5"] if command == "demo" else [])
    _assert_one_line(_cli(args, tmp_path), "store.dsn", "a-file")


@pytest.mark.parametrize("command", COMMANDS)
def test_buffer_folder_that_cannot_be_written(tmp_path: Path, command: str) -> None:
    (tmp_path / "buffer").write_text("not a folder")
    config = _target_config(tmp_path, free_port())
    args = [command, "--config", str(config)] + (["--duration", "5"] if command == "demo" else [])
    line = _assert_one_line(_cli(args, tmp_path), "buffer")
    assert "Not a directory" in line or "File exists" in line or "exists" in line, line


@pytest.mark.parametrize("command", ["server", "run"])
def test_audit_key_file_that_is_not_a_key(tmp_path: Path, command: str) -> None:
    (tmp_path / "audit.key").write_text("not hex at all\n")
    extra = f'audit: {{key_file: "{tmp_path / "audit.key"}"}}'
    config = _target_config(tmp_path, free_port(), extra)
    _assert_one_line(_cli([command, "--config", str(config)], tmp_path), "audit.key_file")


BAD_CONFIGS = {
    "yaml-syntax": ('store: {dsn: "chdb://./x"\nserver: [\n', "not valid YAML"),
    "unknown-key": ("store: {dsnn: chdb://./x}\n", "store.dsnn: unknown key"),
    "unknown-section": ("stores: {}\n", "stores: unknown section"),
    "wrong-type": ("server: {listen: 9091}\n", "server.listen: expected str"),
    "wrong-nested-type": ("audit: {digest_every_records: many}\n", "audit.digest_every_records"),
    "not-a-mapping": ("- a\n- b\n", "mapping"),
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("bad", sorted(BAD_CONFIGS))
def test_bad_config_file(tmp_path: Path, command: str, bad: str) -> None:
    text, named = BAD_CONFIGS[bad]
    (tmp_path / "bad.yaml").write_text(text)
    _assert_one_line(_cli([command, "--config", str(tmp_path / "bad.yaml")], tmp_path), named)


def test_missing_config_file(tmp_path: Path) -> None:
    _assert_one_line(_cli(["server", "--config", str(tmp_path / "nope.yaml")], tmp_path), "nope.yaml")


@pytest.mark.parametrize("command", ["run", "sidecar"])
def test_unreachable_store_stops_run_and_sidecar(tmp_path: Path, command: str) -> None:
    dead = f"clickhouse://user:s3cret@127.0.0.1:{free_port()}/db"
    config = _target_config(tmp_path, free_port(), dsn=dead)
    line = _assert_one_line(_cli([command, "--config", str(config)], tmp_path), "store.dsn", "127.0.0.1")
    assert "s3cret" not in line  # the password never reaches the message


def _wait_for(check: object, timeout_s: float = 120.0) -> object:
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()  # type: ignore[operator]
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.5)


@pytest.mark.integration
def test_server_starts_without_its_clickhouse_and_catches_up(tmp_path: Path) -> None:
    require_binary()
    clickhouse = ClickHouseServer(tmp_path / "clickhouse")  # its ports chosen, not started yet
    port = free_port()
    log = tmp_path / "server.log"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "infersight.cli",
            "server",
            "--listen",
            f"127.0.0.1:{port}",
            "--set",
            f"store.dsn={clickhouse.dsn('late')}",
            "--set",
            f"buffer.dir={tmp_path / 'buffer'}",
        ],
        cwd=tmp_path,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    now_ms = int(time.time() * 1000)
    batch = {
        "series": [{"labels": {"__name__": "late_store_total", "job": "t"}, "samples": [[now_ms, "42"]]}]
    }
    try:

        def up() -> bool:
            try:
                return httpx.get(f"{base}/-/healthy", timeout=5).status_code == 200
            except httpx.HTTPError:
                assert proc.poll() is None, log.read_text()
                return False

        _wait_for(up)
        read = httpx.get(f"{base}/api/v1/query", params={"query": "late_store_total"}, timeout=30)
        assert read.status_code == 503
        assert read.json()["errorType"] == "unavailable"
        accepted = httpx.post(f"{base}/api/v1/ingest", json=batch, timeout=30)
        assert accepted.status_code == 200, accepted.text
        clickhouse.start()

        def stored() -> list:
            answer = httpx.get(f"{base}/api/v1/query", params={"query": "late_store_total"}, timeout=30)
            return answer.json().get("data", {}).get("result", []) if answer.status_code == 200 else []

        (series,) = _wait_for(stored)  # type: ignore[misc]
        assert float(series["value"][1]) == 42
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        clickhouse.stop()
    assert code == 0, log.read_text()[-3000:]
