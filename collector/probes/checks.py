"""One probe attempt: HTTP GET, TCP connect or a command, each bounded by the probe's timeout.

Pass rules are the guide's (SEED-SPEC §7.1): HTTP passes on a status of 200-399, a command on
exit code 0 (a missing command fails with "Command not found"), TCP when the connection opens
(as Kubernetes' tcpSocket probe). A timeout is a failure. Bodies are never read into the log.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import httpx


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Pass or fail, and a short reason for the log and the events (no response bodies)."""

    ok: bool
    message: str


async def check_http(client: httpx.AsyncClient, url: str, timeout_s: float) -> CheckResult:
    try:
        response = await client.get(url, timeout=timeout_s)
    except httpx.TimeoutException:
        return CheckResult(False, f"HTTP probe timed out after {timeout_s:g}s")
    except httpx.HTTPError as exc:
        return CheckResult(False, f"HTTP probe failed: {type(exc).__name__}")
    ok = 200 <= response.status_code < 400
    return CheckResult(ok, f"HTTP probe returned {response.status_code}")


async def check_tcp(host: str, port: int, timeout_s: float) -> CheckResult:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    except TimeoutError:
        return CheckResult(False, f"TCP probe timed out after {timeout_s:g}s")
    except OSError as exc:
        return CheckResult(False, f"TCP probe failed: {exc.strerror or type(exc).__name__}")
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return CheckResult(True, f"TCP probe connected to port {port}")


async def check_command(argv: tuple[str, ...], timeout_s: float) -> CheckResult:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
        )
    except FileNotFoundError:
        return CheckResult(False, "Command not found")  # the guide's wording
    except OSError as exc:
        return CheckResult(False, f"command probe could not start: {exc.strerror or type(exc).__name__}")
    try:
        code = await asyncio.wait_for(proc.wait(), timeout_s)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return CheckResult(False, f"command probe timed out after {timeout_s:g}s")
    return CheckResult(code == 0, f"command exited with {code}")
