"""The audit digests as a user meets them: on by default in ``infersight server``, checked through
``GET /api/v1/audit/verify`` while it runs and ``infersight audit verify`` once it stopped."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from store.open import open_store
from tests.store.clickhouse_server import free_port

REPO = Path(__file__).resolve().parents[2]
T0 = 1_764_000_000_000


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infersight.cli", *args],
        cwd=cwd,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _traces(n: int) -> dict:
    return {
        "traces": [
            {
                "trace_name": "ScaleDeployment",
                "resource_type": "serviceV2",
                "time": T0 + i,
                "message": f"op {i}",
            }
            for i in range(n)
        ]
    }


def _serve(data: Path, port: int, cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "infersight.cli",
            "server",
            "--data",
            str(data),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        cwd=cwd,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        stdout=(cwd / "server.log").open("wb"),
        stderr=subprocess.STDOUT,
    )


def _wait_up(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"{base}/-/healthy", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("server did not come up: " + log.read_text()[-2000:])


@pytest.mark.integration
def test_digests_by_default_verified_by_api_and_cli(tmp_path: Path) -> None:
    data, port = tmp_path / "data", free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _serve(data, port, tmp_path)
    try:
        _wait_up(base, proc, tmp_path / "server.log")
        for _ in range(5):
            assert httpx.post(f"{base}/api/v1/audit/traces", json=_traces(50), timeout=30).status_code == 200
        verdict = httpx.get(f"{base}/api/v1/audit/verify", timeout=60).json()["data"]
        assert verdict["intact"], verdict
        assert verdict["problems"] == []
        assert (verdict["checked"], verdict["covered_to_seq"], verdict["not_covered"]) == (250, 200, 50)
        # While the server owns the chDB folder, the CLI says so in one line.
        busy = _cli(["audit", "verify", "--data", str(data)], tmp_path)
        assert busy.returncode == 2
        assert len(busy.stderr.splitlines()) == 1
        assert "in use by another process" in busy.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, (tmp_path / "server.log").read_text()[-2000:]
    # Outside the database: the digests beside the data folder, the key private.
    key = tmp_path / "data-audit" / "digest.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(list((tmp_path / "data-audit" / "digests").glob("*.json"))) == 3  # 100, 200, the stop
    intact = _cli(["audit", "verify", "--data", str(data)], tmp_path)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert (
        "intact: 250 records checked, covered by 3 digests up to seq 250, 0 not yet covered" in intact.stdout
    )

    store = open_store(f"chdb://{data}")
    try:
        store.backend.execute(
            "ALTER TABLE infersight.audit_traces DELETE WHERE seq > 245 SETTINGS mutations_sync = 1"
        )
    finally:
        store.close()
    tampered = _cli(["audit", "verify", "--data", str(data)], tmp_path)
    assert tampered.returncode == 1
    assert "TAMPERED" in tampered.stdout
    assert "newest records were deleted" in tampered.stdout


def test_cli_refuses_digests_without_their_key(tmp_path: Path) -> None:
    digests = tmp_path / "data-audit" / "digests"
    digests.mkdir(parents=True)
    (digests / "0000000001.json").write_text("{}")
    result = _cli(["audit", "verify", "--data", str(tmp_path / "data")], tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert "audit.key_file" in result.stderr
