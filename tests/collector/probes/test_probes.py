"""Probes against real HTTP/TCP servers and real commands; thresholds and the startup gate."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import pytest

from collector.config import ProbeConfig, probes_from_list
from collector.pipeline import ListConsumer
from collector.probes import HEALTHY, UNHEALTHY, ProbeRunner, ProbeState, Transition, first_delay_s
from model.errors import ConfigError


class _Health:
    """An HTTP server whose /health status the test flips."""

    def __init__(self) -> None:
        self.status = 200
        self.port = 0
        self.hits = 0
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        self.hits += 1
        writer.write(b"HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n" % self.status)
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> _Health:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_thresholds_count_consecutive_results() -> None:
    state = ProbeState("liveness", success_threshold=1, failure_threshold=3)
    assert state.state == HEALTHY  # kubelet assumes alive before the first verdict
    assert state.record(False, 1, "x") is None
    assert state.record(False, 2, "x") is None
    assert state.record(True, 3, "ok") is None  # a pass resets the failure run
    assert state.record(False, 4, "x") is None
    assert state.record(False, 5, "x") is None
    t = state.record(False, 6, "HTTP probe returned 500")
    assert t == Transition("liveness", UNHEALTHY, HEALTHY, 6, "HTTP probe returned 500", 3)
    readiness = ProbeState("readiness", success_threshold=2, failure_threshold=1)
    assert readiness.record(True, 1, "ok") is None
    assert readiness.record(True, 2, "ok") is not None


@pytest.mark.parametrize(("period", "delay", "first"), [(10, 60, 60), (10, 5, 0), (10, 10, 10)])
def test_period_longer_than_delay_skips_it(period: float, delay: float, first: float) -> None:
    probe = ProbeConfig(kind="liveness", method="tcp", port=1, period_s=period, initial_delay_s=delay)
    assert first_delay_s(probe) == first


async def _until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def test_http_probe_flips_with_the_engine() -> None:
    async def go() -> tuple[list[Transition], ListConsumer]:
        async with _Health() as health:
            sink = ListConsumer()
            seen: list[Transition] = []
            probe = ProbeConfig(kind="readiness", url=f"http://127.0.0.1:{health.port}/health",
                                period_s=0.05, failure_threshold=2)  # fmt: skip
            runner = ProbeRunner([probe], {"service_id": "svc"}, sink, on_transition=seen.append)
            runner.start()
            await _until(lambda: len(seen) == 1)  # waits, not fixed sleeps: a busy machine is slow
            health.status = 503
            await _until(lambda: len(seen) == 2)
            health.status = 302  # 200-399 passes (the guide)
            await _until(lambda: len(seen) == 3)
            await runner.stop()
            await runner.stop()  # safe twice
            return seen, sink

    seen, sink = asyncio.run(go())
    assert [t.state for t in seen] == [HEALTHY, UNHEALTHY, HEALTHY]
    assert seen[1].consecutive == 2
    assert "503" in seen[1].message
    names = {s.name for s in sink.samples}
    assert names == {"infersight_probe_success", "infersight_probe_healthy",
                     "infersight_probe_duration_seconds", "infersight_probe_failures_total"}  # fmt: skip
    labels = dict(sink.samples[0].labels)
    assert (labels["probe"], labels["method"], labels["service_id"]) == ("readiness", "http", "svc")


def test_tcp_and_command_probes() -> None:
    async def go() -> dict[str, bool]:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        probes = {
            "tcp_open": ProbeConfig(kind="liveness", method="tcp", port=port),
            "tcp_closed": ProbeConfig(kind="liveness", method="tcp", port=_free_port()),
            "true": ProbeConfig(kind="liveness", method="command", command=("true",)),
            "false": ProbeConfig(kind="liveness", method="command", command=("false",)),
            "missing": ProbeConfig(kind="liveness", method="command", command=("no-such-health.sh",)),
            "slow": ProbeConfig(kind="liveness", method="command", command=("sleep", "5"), timeout_s=0.2),
        }
        out = {}
        for name, probe in probes.items():
            runner = ProbeRunner([ProbeConfig(**{**_fields(probe), "failure_threshold": 1})], {})
            await runner.probe_once("liveness")
            out[name] = runner.states["liveness"].state == HEALTHY
            await runner.stop()
        server.close()
        return out

    assert asyncio.run(go()) == {
        "tcp_open": True, "tcp_closed": False, "true": True, "false": False, "missing": False, "slow": False
    }  # fmt: skip


def _fields(probe: ProbeConfig) -> dict[str, object]:
    return {name: getattr(probe, name) for name in probe.__dataclass_fields__}


def test_startup_gates_the_other_probes() -> None:
    async def go() -> tuple[list[str], int]:
        async with _Health() as health:
            health.status = 500
            url = f"http://127.0.0.1:{health.port}/health"
            seen: list[Transition] = []
            runner = ProbeRunner(
                [
                    ProbeConfig(kind="startup", url=url, period_s=0.05, failure_threshold=1800),
                    ProbeConfig(kind="liveness", url=url, period_s=0.05, failure_threshold=1),
                ],
                {},
                on_transition=seen.append,
            )
            runner.start()
            await asyncio.sleep(0.2)
            before = len(seen)  # liveness has not run: no Unhealthy yet despite the 500s
            health.status = 200
            await asyncio.sleep(0.2)
            await runner.stop()
            return [f"{t.probe}:{t.state}" for t in seen], before

    seen, before = asyncio.run(go())
    assert before == 0
    assert seen == ["startup:Healthy"]  # liveness was healthy from the start and stayed so


def test_probe_config_from_yaml_shapes() -> None:
    probes = probes_from_list(
        [
            {"kind": "startup", "url": "http://127.0.0.1:8080/health", "period": "10s", "initial_delay": 60,
             "timeout": 30, "failure_threshold": 1800},
            {"kind": "liveness", "method": "command", "command": "sh /home/ma-user/health.sh"},
        ]
    )  # fmt: skip
    assert probes[0].failure_threshold == 1800
    assert probes[0].initial_delay_s == 60
    assert probes[1].command == ("sh", "-c", "sh /home/ma-user/health.sh")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "warmup"}, "kind"),
        ({"kind": "readiness", "url": "ftp://x"}, "url"),
        ({"kind": "liveness", "method": "tcp"}, "port"),
        ({"kind": "liveness", "method": "command"}, "command"),
        ({"kind": "readiness", "url": "http://x/health", "failure_threshold": 0}, "failure_threshold"),
        ({"kind": "liveness", "url": "http://x/health", "success_threshold": 2}, "success_threshold"),
        ({"kind": "readiness", "url": "http://x/health", "bogus": 1}, "bogus"),
    ],
)
def test_bad_probe_config_names_the_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        probes_from_list([data])


def test_two_probes_of_a_kind_are_refused() -> None:
    with pytest.raises(ConfigError, match="more than one"):
        probes_from_list(
            [{"kind": "liveness", "url": "http://x/h"}, {"kind": "liveness", "url": "http://x/h"}]
        )
