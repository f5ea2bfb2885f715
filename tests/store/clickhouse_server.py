"""A real ClickHouse server for tests: Debian's 18.16, its own config and data folder, loopback ports.

``ClickHouseServer(tmp_path).start()`` returns once it answers ``SELECT 1``; ``kill()`` sends SIGKILL
(the outage tests), ``start()`` again reuses the same ports and data; ``stop()`` ends it by PID.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

BINARY = "/usr/sbin/clickhouse-server"
# SIGKILL the server if the test process dies first (no orphan servers); setpriv execs, so the PID
# is the server's own.
_DIE_WITH_PARENT = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []

_CONFIG = """<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{root}/log/server.log</log><errorlog>{root}/log/err.log</errorlog></logger>
  <tcp_port>{tcp_port}</tcp_port>
  <http_port>{http_port}</http_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{root}/data/</path>
  <tmp_path>{root}/data/tmp/</tmp_path>
  <user_files_path>{root}/data/user_files/</user_files_path>
  <format_schema_path>{root}/data/format_schemas/</format_schema_path>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>50</max_concurrent_queries>
  <users_config>{root}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
</yandex>
"""

_USERS = """<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks>
    <profile>default</profile><quota>default</quota></default></users>
  <quotas><default></default></quotas>
</yandex>
"""


def kill_process(process: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL by PID and reap: no shutdown, whatever was in flight is cut."""
    if process is not None and process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)


def stop_process(process: subprocess.Popen[bytes] | None, grace_s: float) -> None:
    """SIGTERM by PID, then SIGKILL if it has not exited within ``grace_s``."""
    if process is None or process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        kill_process(process)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_binary() -> None:
    """Skip where the server is not installed; in CI (env ``CI`` set) fail instead."""
    if not os.path.exists(BINARY) and shutil.which("clickhouse-server") is None:
        message = "clickhouse-server not installed (tools/system-deps.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


class ClickHouseServer:
    """One server process on ``127.0.0.1:tcp_port``; ``dsn(db)`` names a database on it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tcp_port = free_port()
        self.http_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        (root / "log").mkdir(parents=True, exist_ok=True)
        (root / "config.xml").write_text(
            _CONFIG.format(root=root, tcp_port=self.tcp_port, http_port=self.http_port)
        )
        (root / "users.xml").write_text(_USERS)

    def dsn(self, database: str) -> str:
        return f"clickhouse://127.0.0.1:{self.tcp_port}/{database}"

    def start(self, timeout_s: float = 60.0) -> ClickHouseServer:
        binary = BINARY if os.path.exists(BINARY) else shutil.which("clickhouse-server") or BINARY
        with open(self.root / "log" / "stdout.log", "ab") as out:
            self.process = subprocess.Popen(
                [*_DIE_WITH_PARENT, binary, f"--config-file={self.root / 'config.xml'}"],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.root,
            )
        self._wait_ready(timeout_s)
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        from clickhouse_driver import Client

        logging.getLogger("clickhouse_driver").setLevel(
            logging.CRITICAL
        )  # "connection refused" while it starts
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                log = (self.root / "log" / "err.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"clickhouse-server exited with {self.process.returncode}: {log}")
            try:
                Client("127.0.0.1", port=self.tcp_port, connect_timeout=1).execute("SELECT 1")
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL: no shutdown, whatever was in flight is cut."""
        kill_process(self.process)
        self.process = None

    def stop(self) -> None:
        stop_process(self.process, 20)
        self.process = None
