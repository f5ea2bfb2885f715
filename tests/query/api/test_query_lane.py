"""The query workers' lane (``prometheus_v1._Workers``): jobs run one after another on one thread,
and a job the lane has not started in time runs in the pool instead, once, never twice, never lost.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
import threading
import time

import pytest

from query.api import prometheus_v1
from query.api.prometheus_v1 import LANE_WAIT_S, _Workers
from query.promql.errors import PromQLError

SCOPE: contextvars.ContextVar[str] = contextvars.ContextVar("scope", default="none")


def test_short_jobs_run_in_turn_on_one_thread() -> None:
    async def main() -> set[str]:
        workers = _Workers(8, "test", lane=True)
        threads: set[str] = set()

        def job(_: float) -> str:
            threads.add(threading.current_thread().name)
            return "ok"

        for _ in range(20):
            assert await asyncio.gather(*(workers.run(job, 10.0) for _ in range(6))) == ["ok"] * 6
        return threads

    assert asyncio.run(main()) == {"test-lane_0"}


def test_a_long_job_holds_the_others_up_no_longer_than_the_wait() -> None:
    release = threading.Event()

    async def main() -> float:
        workers = _Workers(8, "test", lane=True)
        long = asyncio.ensure_future(workers.run(lambda _: release.wait(30), 60.0))
        await asyncio.sleep(0.05)  # the long one has the lane
        started = time.monotonic()
        short = await asyncio.gather(
            *(workers.run(lambda _: threading.current_thread().name, 10.0) for _ in range(5))
        )
        waited = time.monotonic() - started
        assert all(name.startswith("test_") for name in short)  # the pool ran them
        assert not long.done()
        release.set()
        assert await long is True
        return waited

    # answered while the long job still runs: nothing waits on it (the bound is the wait, plus
    # whatever a loaded machine adds; the long job takes 30 s if nothing releases it)
    assert asyncio.run(main()) < 10.0


@pytest.mark.parametrize("seed", range(5))
def test_every_job_runs_once_with_its_own_context_wherever_it_runs(seed: int) -> None:
    rng = random.Random(seed)
    durations = [rng.choice([0.0, 0.0, 0.001, LANE_WAIT_S * 2]) for _ in range(60)]
    runs: list[int] = []
    lock = threading.Lock()

    async def main() -> list[tuple[int, str]]:
        workers = _Workers(4, "test", lane=True)

        def job(i: int) -> tuple[int, str]:
            with lock:
                runs.append(i)
            time.sleep(durations[i])
            return i, SCOPE.get()

        async def one(i: int) -> tuple[int, str]:
            SCOPE.set(f"project-{i}")
            return await workers.run(lambda _: job(i), 30.0)

        return list(await asyncio.gather(*(one(i) for i in range(len(durations)))))

    answers = asyncio.run(main())
    assert answers == [(i, f"project-{i}") for i in range(len(durations))]
    assert sorted(runs) == list(range(len(durations)))  # each once


def test_a_job_that_overstays_in_the_queue_never_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prometheus_v1, "_GRACE_S", 0.0)
    release = threading.Event()
    ran: list[str] = []

    async def main() -> None:
        workers = _Workers(1, "test", lane=True)  # the lane and one pool thread, both taken
        first = asyncio.ensure_future(workers.run(lambda _: release.wait(30), 60.0))
        second = asyncio.ensure_future(workers.run(lambda _: release.wait(30), 60.0))
        await asyncio.sleep(0.1)
        with pytest.raises(PromQLError, match="timed out"):
            await workers.run(lambda _: ran.append("third"), 0.2)
        release.set()
        await asyncio.gather(first, second)
        await asyncio.sleep(0.1)

    asyncio.run(main())
    assert ran == []


def test_while_the_lane_is_held_by_a_long_job_the_next_ones_do_not_wait_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(prometheus_v1, "LANE_WAIT_S", 0.5)
    release = threading.Event()

    async def main() -> float:
        workers = _Workers(8, "test", lane=True)
        long = asyncio.ensure_future(workers.run(lambda _: release.wait(30), 60.0))
        await asyncio.sleep(0.6)  # the lane's job has run longer than the wait
        started = time.monotonic()
        for _ in range(5):  # one after another: each to the pool at once, none waits out the 0.5 s
            assert (await workers.run(lambda _: threading.current_thread().name, 10.0)).startswith("test_")
        taken = time.monotonic() - started
        release.set()
        await long
        return taken

    assert asyncio.run(main()) < 2.5  # waiting each time would take 2.5 s at least
