"""A real Prometheus 2.42 as the reference for differential tests (prometheus/compliance's idea).

Data goes in through ``promtool tsdb create-blocks-from openmetrics`` (history) and, for what text
cannot carry (staleness markers), through the remote-write receiver into the head. Results of both
engines are compared with ``assert_same``: same status and errorType, same label sets in the same
order for vectors, same timestamps, values within a relative tolerance.
"""

from __future__ import annotations

import json
import math
import shutil
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cramjam
import pytest

# One series: labels (with __name__) and points as (seconds, value).
SeriesData = tuple[dict[str, str], list[tuple[float, float]]]


def binaries_missing() -> bool:
    """True where ``prometheus`` or ``promtool`` is not on PATH (CI must then fail, not skip)."""
    return shutil.which("prometheus") is None or shutil.which("promtool") is None


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


def to_openmetrics(series: list[SeriesData]) -> str:
    """OpenMetrics text for ``promtool``: every family ``unknown`` so no suffix rules apply."""
    lines: list[str] = []
    seen: set[str] = set()
    for labels, points in sorted(series, key=lambda s: s[0]["__name__"]):
        name = labels["__name__"]
        if name not in seen:
            seen.add(name)
            lines.append(f"# TYPE {name} unknown")
        inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
        lines.extend(f"{name}{{{inner}}} {format_value(v)} {t:.3f}" for t, v in points)
    return "\n".join([*lines, "# EOF", ""])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, path: str, **params: str) -> dict[str, Any]:
    """GET ``url/path?params`` and the JSON body, also for 4xx/5xx answers."""
    return http_call(url, "GET", path, list(params.items()))[1]


def http_call(url: str, method: str, path: str, params: list[tuple[str, str]]) -> tuple[int, Any]:
    """GET with a query string or POST with a form; the HTTP status and the JSON body (or text)."""
    encoded = urllib.parse.urlencode(params)
    if method == "GET":
        request = urllib.request.Request(f"{url}/{path}?{encoded}")
    else:
        request = urllib.request.Request(
            f"{url}/{path}",
            data=encoded.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as err:
        body = err.read()
        try:
            return err.code, json.loads(body)
        except ValueError:
            return err.code, body.decode(errors="replace")


@contextmanager
def running_prometheus(root: Path, history: list[SeriesData]) -> Iterator[str]:
    """Backfill ``history`` into a TSDB under ``root``, start Prometheus on it; yields the API URL.

    The remote-write receiver is on, so ``remote_write`` can add head samples after the blocks.
    """
    (root / "data.om").write_text(to_openmetrics(history))
    (root / "prometheus.yml").write_text("global:\n  scrape_interval: 15s\n")
    subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(root / "data.om"), str(root / "tsdb")],
        check=True,
        capture_output=True,
    )
    port = free_port()
    with (root / "prometheus.log").open("w") as log:
        proc = subprocess.Popen(
            [
                "prometheus",
                f"--config.file={root / 'prometheus.yml'}",
                f"--storage.tsdb.path={root / 'tsdb'}",
                "--storage.tsdb.retention.time=100y",
                "--web.enable-remote-write-receiver",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}/api/v1"
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if http_get(url, "query", query="vector(1)", time="0")["status"] == "success":
                        break
                except OSError:
                    time.sleep(0.2)
            else:
                pytest.fail(f"prometheus did not start; see {root / 'prometheus.log'}")
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=10)


# -- remote write: the protobuf is four small messages, encoded by hand to need no generated code ---


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _timeseries(labels: dict[str, str], points: list[tuple[int, float]]) -> bytes:
    body = b"".join(
        _field(1, _field(1, k.encode()) + _field(2, v.encode())) for k, v in sorted(labels.items())
    )
    for ts_ms, value in points:
        sample = b"\x09" + struct.pack("<d", value) + b"\x10" + _varint(ts_ms)
        body += _field(2, sample)
    return _field(1, body)


def remote_write(url: str, series: list[tuple[dict[str, str], list[tuple[int, float]]]]) -> None:
    """Send points (ms, value; any NaN bit pattern, staleness markers included) to ``url``'s receiver."""
    # snappy's raw block format, as remote write wants (cramjam: the project's snappy dependency)
    payload = bytes(
        cramjam.snappy.compress_raw(b"".join(_timeseries(labels, points) for labels, points in series))
    )
    request = urllib.request.Request(
        url.removesuffix("/api/v1") + "/api/v1/write",
        data=payload,
        headers={
            "Content-Encoding": "snappy",
            "Content-Type": "application/x-protobuf",
            "X-Prometheus-Remote-Write-Version": "0.1.0",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        assert resp.status in (200, 204), resp.status


# -- comparison ---------------------------------------------------------------------------------


def close(a: str, b: str, rel: float) -> bool:
    fa, fb = float(a), float(b)
    return (math.isnan(fa) and math.isnan(fb)) or fa == fb or abs(fa - fb) <= rel * max(abs(fa), abs(fb))


def _key(metric: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(metric.items()))


def assert_same(
    theirs: dict[str, Any], ours: dict[str, Any], rel: float = 1e-9, ordered: bool = True
) -> None:
    """Same status/errorType; same series, timestamps and values (NaN equals NaN) within ``rel``.

    Matrices are sorted by labels on both sides, as Prometheus sorts them. An instant vector's order
    is defined only under ``sort``/``sort_desc`` (elsewhere Prometheus may follow Go map order, as
    after a subquery), so ``ordered=False`` compares vectors sorted by labels.
    """
    assert theirs["status"] == ours["status"], (theirs, ours)
    if theirs["status"] == "error":
        assert theirs["errorType"] == ours["errorType"], (theirs, ours)
        return
    kind = theirs["data"]["resultType"]
    assert ours["data"]["resultType"] == kind
    expected, got = theirs["data"]["result"], ours["data"]["result"]
    if kind == "vector" and not ordered:
        expected = sorted(expected, key=lambda s: _key(s["metric"]))
        got = sorted(got, key=lambda s: _key(s["metric"]))
    if kind in ("scalar", "string"):
        assert expected[0] == got[0]
        assert close(expected[1], got[1], rel) if kind == "scalar" else expected[1] == got[1]
        return
    assert [_key(s["metric"]) for s in got] == [_key(s["metric"]) for s in expected]
    for exp, our in zip(expected, got, strict=True):
        points_exp = [exp["value"]] if kind == "vector" else exp["values"]
        points_our = [our["value"]] if kind == "vector" else our["values"]
        assert [p[0] for p in points_our] == [p[0] for p in points_exp], exp["metric"]
        for p_exp, p_our in zip(points_exp, points_our, strict=True):
            assert close(p_exp[1], p_our[1], rel), (exp["metric"], p_exp, p_our)
