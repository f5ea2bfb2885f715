"""Starting ``infersight`` commands as a user does, as real processes, for the tests of the
examples, the documented commands and the package."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
CLI = [sys.executable, "-m", "infersight.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def env(**extra: str) -> dict[str, str]:
    """The test's environment with the source tree importable, without variables that would
    change what the examples read."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("INFERSIGHT_", "POD_NAME", "SERVICE_"))}
    return {**base, "PYTHONPATH": str(REPO), **extra}


def run_cli(
    args: Sequence[str], cwd: Path, timeout_s: float = 300, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        env=env(**extra),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


class Process:
    """A command running in the background, its output in a log file read when something fails."""

    def __init__(self, args: Sequence[str], cwd: Path, name: str, **extra: str) -> None:
        self.log = cwd / f"{name}.log"
        self.proc = subprocess.Popen(
            [*CLI, *args], cwd=cwd, env=env(**extra), stdout=self.log.open("wb"), stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def wait_http(self, url: str, timeout_s: float = 120) -> None:
        """Until ``url`` answers 200 (the process failing first is an error with its output)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"exited {self.proc.returncode}:\n{self.output()}"
            try:
                if httpx.get(url, timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"{url} did not answer:\n{self.output()}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def wait_for_query(cwd: Path, server: str, promql: str, timeout_s: float = 90) -> str:
    """``infersight query`` until it prints a series; its output."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = run_cli(["query", promql, "--server", server], cwd, timeout_s=60)
        if last.returncode == 0 and "no data" not in last.stdout:
            return last.stdout
        time.sleep(1)
    raise AssertionError(f"no data for {promql}: {last.stdout if last else ''}{last.stderr if last else ''}")
