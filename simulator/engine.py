"""The fake engine: admits requests, paces tokens, updates vLLM's series, records ground truth.

Timing is measured, not assumed: ``ttft_s`` is taken with ``time.perf_counter`` after the first
content chunk has been handed to the server (streamed) and that same value is observed into
``vllm:time_to_first_token_seconds``, so a test can compare a scraped histogram with
``Simulator.served`` exactly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.metrics_core import Metric

from simulator.config import SimulatorConfig
from simulator.metrics import VllmMetrics
from simulator.plan import Plan, draw_plan
from simulator.record import ServedRequest
from simulator.shapes import ChunkWriter


class _Run:
    """Book-keeping of one admitted request, from arrival to the last token."""

    def __init__(self, sim: Simulator, plan: Plan, *, path: str, stream: bool, model: str, t0: float) -> None:
        self.sim = sim
        self.plan = plan
        self.path = path
        self.stream = stream
        self.model = model
        self.t0 = t0
        self.arrival_unix_s = time.time() - (time.perf_counter() - t0)
        self.request_id = f"{'chatcmpl' if path.endswith('chat/completions') else 'cmpl'}-{uuid.uuid4().hex}"
        self.ttft_s: float | None = None
        self.gaps: list[float] = []
        self.last_t = t0
        self.admitted_t = t0  # when a slot was free (paced_tokens sets it)
        self.generated = 0
        self.done = False

    def token(self, now: float) -> None:
        """A token has been written (or produced, when not streamed) at ``now``."""
        m = self.sim.metrics
        if self.ttft_s is None:
            self.ttft_s = now - self.t0
            m.ttft.observe(self.ttft_s)
            m.prompt_tokens.inc(self.plan.prompt_tokens)
        else:
            gap = now - self.last_t
            self.gaps.append(gap)
            m.observe_gap(gap)
        self.last_t = now
        self.generated += 1
        m.generation_tokens.inc()
        self.sim.add_kv_tokens(1)

    def finish(self, now: float, finish_reason: str, status: int = 200) -> None:
        if self.done:
            return
        self.done = True
        m = self.sim.metrics
        e2e = now - self.t0
        if finish_reason != "abort":
            m.e2e_request_latency.observe(e2e)
            queue = self.admitted_t - self.t0
            ttft = self.ttft_s if self.ttft_s is not None else e2e
            m.phase_time["queue"].observe(queue)
            m.phase_time["prefill"].observe(max(0.0, ttft - queue))
            m.phase_time["decode"].observe(max(0.0, e2e - ttft))
            m.request_prompt_tokens.observe(self.plan.prompt_tokens)
            m.request_generation_tokens.observe(self.generated)
        m.request_success[finish_reason].inc()
        self.sim.record(
            ServedRequest(
                request_id=self.request_id,
                arrival_unix_s=self.arrival_unix_s,
                path=self.path,
                status=status,
                stream=self.stream,
                model=self.model,
                ttft_s=self.ttft_s,
                itl_s=tuple(self.gaps),
                e2e_s=e2e,
                prompt_tokens=self.plan.prompt_tokens,
                completion_tokens=self.generated,
                finish_reason=finish_reason,
                slowed=self.plan.slowed,
            )
        )


class _SimulatedProcess:
    """The process_* series, except that the start time is this engine's: each simulated engine
    stands for a pod's own process, so a restarted engine shows a new start time, as a real one does."""

    def __init__(self, started_s: float) -> None:
        self._process = ProcessCollector(registry=None)
        self._started_s = started_s

    def collect(self) -> Iterator[Metric]:
        for family in self._process.collect():
            if family.name == "process_start_time_seconds":
                family.samples = [s._replace(value=self._started_s) for s in family.samples]
            yield family


class Simulator:
    """One fake vLLM engine; the HTTP layer is ``simulator.app.create_app(sim)``.

    >>> sim = Simulator(SimulatorConfig(seed=1))
    >>> sim.served
    []
    """

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.config.validate()
        self.registry = CollectorRegistry()
        # vLLM exposes the default registry, so python_gc_*, python_info and process_* come along
        GCCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.registry.register(_SimulatedProcess(time.time()))
        self.metrics = VllmMetrics(
            self.registry,
            model_name=self.config.model_name,
            engine=self.config.engine,
            max_model_len=self.config.max_model_len,
        )
        self.served: list[ServedRequest] = []
        self._rng = random.Random(self.config.seed)
        self._slots = asyncio.Semaphore(self.config.max_num_seqs)
        self._running = 0
        self._waiting = 0
        self._kv_tokens = 0
        self._started_s = time.monotonic()
        self._served_plans = 0

    # ground truth -------------------------------------------------------------------------
    def record(self, served: ServedRequest) -> None:
        self.served.append(served)
        if len(self.served) > self.config.served_limit:
            del self.served[: len(self.served) // 2]

    def record_error(self, *, path: str, stream: bool, model: str, status: int, t0: float) -> None:
        now = time.perf_counter()
        self.record(
            ServedRequest(
                request_id=f"err-{uuid.uuid4().hex}",
                arrival_unix_s=time.time() - (now - t0),
                path=path,
                status=status,
                stream=stream,
                model=model,
                ttft_s=None,
                itl_s=(),
                e2e_s=now - t0,
                prompt_tokens=0,
                completion_tokens=0,
                finish_reason=None,
            )
        )

    # planning and pacing ------------------------------------------------------------------
    def plan(self, body: dict[str, Any], *, chat: bool) -> Plan:
        """Draw the request's plan; every ``slow_every``-th served one is slowed (a known share)."""
        plan = draw_plan(self._rng, self.config, body, chat=chat)
        c = self.config
        if plan.error_status is not None or not c.slow_every:
            return plan
        if c.slow_for_s is not None and time.monotonic() - self._started_s > c.slow_for_s:
            return plan
        self._served_plans += 1
        if self._served_plans % c.slow_every:
            return plan
        return dataclasses.replace(plan, ttft_s=c.slow_ttft_ms / 1000.0, slowed=True)

    def start_run(self, plan: Plan, *, path: str, stream: bool, model: str, t0: float) -> _Run:
        return _Run(self, plan, path=path, stream=stream, model=model, t0=t0)

    @property
    def running(self) -> int:
        return self._running

    @property
    def kv_usage(self) -> float:
        return min(1.0, self._kv_tokens / self.config.kv_cache_tokens)

    def add_kv_tokens(self, n: int) -> None:
        self._kv_tokens += n
        self.metrics.set_kv_usage(min(1.0, self._kv_tokens / self.config.kv_cache_tokens))

    async def _admit(self, run: _Run) -> None:
        self._waiting += 1
        self.metrics.num_requests_waiting.set(self._waiting)
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
            self.metrics.num_requests_waiting.set(self._waiting)
        self._running += 1
        self.metrics.num_requests_running.set(self._running)
        self.add_kv_tokens(run.plan.prompt_tokens)

    def _release(self, run: _Run) -> None:
        self._running -= 1
        self.metrics.num_requests_running.set(self._running)
        self.add_kv_tokens(-(run.plan.prompt_tokens + run.generated))
        self._slots.release()

    async def paced_tokens(self, run: _Run) -> AsyncGenerator[tuple[int, str], None]:
        """Yield (index, text) when each token is due; admission and release are handled here.

        The caller calls ``run.token(time.perf_counter())`` once it has written the token, and
        ``run.finish`` at the end; a cancelled consumer leaves the run finished as "abort".
        """
        await self._admit(run)
        try:
            start = run.admitted_t = time.perf_counter()
            due = start + run.plan.ttft_s
            for i, text in enumerate(run.plan.tokens):
                if i > 0:
                    due += run.plan.gaps_s[i - 1]
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                yield i, text
        finally:
            self._release(run)
            if not run.done and run.generated < len(run.plan.tokens):
                run.finish(time.perf_counter(), "abort")

    async def stream(self, run: _Run, writer: ChunkWriter) -> AsyncIterator[bytes]:
        """The SSE body of a streamed response."""
        tokens = self.paced_tokens(run)
        try:
            async for i, text in tokens:
                yield writer.first(text) if i == 0 else writer.token(text)
                run.token(time.perf_counter())
            yield writer.last(run.plan.finish_reason, run.plan.prompt_tokens, run.generated)
            run.finish(time.perf_counter(), run.plan.finish_reason)
        finally:
            await tokens.aclose()

    async def complete(self, run: _Run, writer: ChunkWriter) -> dict[str, Any]:
        """The body of a non-streamed response, returned when the last token is due."""
        texts: list[str] = []
        async for _, text in self.paced_tokens(run):
            texts.append(text)
            run.token(time.perf_counter())
        run.finish(time.perf_counter(), run.plan.finish_reason)
        return writer.whole("".join(texts), run.plan.finish_reason, run.plan.prompt_tokens, run.generated)
