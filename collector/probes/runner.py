"""Run the configured probes on their schedules; results become series and Healthy/Unhealthy events.

Scheduling follows the guide (SEED-SPEC §7.1) and Kubernetes: the startup probe runs first and
stops once it succeeds; readiness and liveness start only then, each after its own initial
delay; "if the health check interval is longer than the delay, the delay is skipped". A failed
startup probe keeps probing (a sidecar cannot restart the engine; the Unhealthy event says so).

Series per attempt, labelled ``probe`` (startup/readiness/liveness) and ``method``:
``infersight_probe_success`` (this attempt 1/0), ``infersight_probe_healthy`` (the thresholded
state: 1 Healthy, 0 Unhealthy or not yet known), ``infersight_probe_duration_seconds`` and the
counter ``infersight_probe_failures_total``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

import httpx
from loguru import logger

from collector.config import ProbeConfig
from collector.pipeline import Consumer
from collector.probes.checks import CheckResult, check_command, check_http, check_tcp
from collector.probes.state import HEALTHY, ProbeState, Transition
from model.labels import METRIC_NAME, to_labels
from model.series import Sample

PROBE_SUCCESS = "infersight_probe_success"
PROBE_HEALTHY = "infersight_probe_healthy"
PROBE_DURATION_SECONDS = "infersight_probe_duration_seconds"
PROBE_FAILURES_TOTAL = "infersight_probe_failures_total"


def first_delay_s(probe: ProbeConfig) -> float:
    """The guide: a period longer than the delay skips the delay."""
    return 0.0 if probe.period_s > probe.initial_delay_s else probe.initial_delay_s


class ProbeRunner:
    """Runs startup/readiness/liveness probes; ``on_transition`` gets each state change.

    >>> runner = ProbeRunner([ProbeConfig(kind="readiness", url="http://127.0.0.1:8000/health")],
    ...                      {"service_id": "svc"}, ListConsumer(), on_transition=print)
    >>> runner.start(); ...; await runner.stop()
    """

    def __init__(
        self,
        probes: list[ProbeConfig] | tuple[ProbeConfig, ...],
        identity: dict[str, str],
        consumer: Consumer | None = None,
        on_transition: Callable[[Transition], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        for probe in probes:
            probe.validate(f"probes.{probe.kind}")
        self.probes = {p.kind: p for p in probes}
        self.identity = dict(identity)
        self.consumer = consumer
        self.on_transition = on_transition
        self.clock = clock
        self.states = {
            p.kind: ProbeState(
                p.kind, success_threshold=p.success_threshold, failure_threshold=p.failure_threshold
            )
            for p in probes
        }
        self.failures_total = dict.fromkeys(self.probes, 0)
        self.transitions: list[Transition] = []
        self._started = asyncio.Event()
        self._client: httpx.AsyncClient | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def _check(self, probe: ProbeConfig) -> CheckResult:
        if probe.method == "http":
            if self._client is None:
                self._client = httpx.AsyncClient(trust_env=False, verify=False, follow_redirects=False)
            return await check_http(self._client, probe.url, probe.timeout_s)
        if probe.method == "tcp":
            return await check_tcp(probe.host, probe.port, probe.timeout_s)
        return await check_command(probe.command, probe.timeout_s)

    async def probe_once(self, kind: str) -> Transition | None:
        """Run one attempt of probe ``kind`` now; hand on its series; return a transition if any."""
        probe = self.probes[kind]
        t0 = time.perf_counter()
        result = await self._check(probe)
        duration = time.perf_counter() - t0
        now = self.clock()
        if not result.ok:
            self.failures_total[kind] += 1
        transition = self.states[kind].record(result.ok, now, result.message)
        if transition is not None:
            self._announce(transition)
        if self.consumer is not None:
            await self.consumer.consume(self._samples(probe, result.ok, duration, math.floor(now * 1000)))
        return transition

    def _announce(self, transition: Transition) -> None:
        self.transitions.append(transition)
        log = logger.bind(probe=transition.probe, service_id=self.identity.get("service_id", ""))
        level = "INFO" if transition.state == HEALTHY else "WARNING"
        log.log(level, "probe {} is {} ({})", transition.probe, transition.state, transition.message)
        if self.on_transition is not None:
            try:
                self.on_transition(transition)
            except Exception:
                logger.exception("probe transition callback failed; continuing")

    def _samples(self, probe: ProbeConfig, ok: bool, duration_s: float, ts_ms: int) -> list[Sample]:
        labels = {**self.identity, "probe": probe.kind, "method": probe.method}

        def sample(name: str, value: float) -> Sample:
            return Sample(to_labels({**labels, METRIC_NAME: name}), ts_ms, float(value))

        return [
            sample(PROBE_SUCCESS, 1.0 if ok else 0.0),
            sample(PROBE_HEALTHY, 1.0 if self.states[probe.kind].state == HEALTHY else 0.0),
            sample(PROBE_DURATION_SECONDS, duration_s),
            sample(PROBE_FAILURES_TOTAL, self.failures_total[probe.kind]),
        ]

    async def _loop(self, kind: str) -> None:
        probe = self.probes[kind]
        if kind != "startup" and "startup" in self.probes:
            await self._started.wait()
        await asyncio.sleep(first_delay_s(probe))
        while True:
            started = time.monotonic()
            try:
                await self.probe_once(kind)
            except Exception:
                logger.exception("probe {} hit an error; continuing", kind)
            if kind == "startup" and self.states[kind].state == HEALTHY:
                self._started.set()
                return  # the startup probe is done once it succeeds
            await asyncio.sleep(max(0.0, probe.period_s - (time.monotonic() - started)))

    def start(self) -> None:
        """Start every probe's loop in the running event loop."""
        self._tasks = [asyncio.create_task(self._loop(kind)) for kind in self.probes]

    async def stop(self) -> None:
        """Stop probing; safe twice and without a start."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
