"""What one evaluation may spend: time until its deadline, and points held in memory at once.

A query past its timeout must stop where it is, not run on in its worker after the API has
answered ``timeout``: the engine and the loops of the functions it calls check the deadline
(``tick``) per node, per series and per step. Points count against ``max_samples`` as Prometheus'
``query.max-samples`` counts them: every point a query holds at once, loaded or computed, and a
subquery's or range query's steps times its series before the arrays are made (``reserve``).

The budget of the evaluation running in this thread is found through a thread-local, so the
function modules need no extra parameter; outside an evaluation both calls do nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from query.promql.errors import PromQLError

TOO_MANY_SAMPLES = "query processing would load too many samples into memory in query execution"
TIMED_OUT = "query timed out in expression evaluation"

_local = threading.local()


class Budget:
    """One evaluation's deadline (``time.monotonic()`` seconds) and its count of points held."""

    __slots__ = ("deadline", "held", "max_samples")

    def __init__(self, deadline: float, max_samples: int) -> None:
        self.deadline = deadline
        self.max_samples = max_samples
        self.held = 0

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise PromQLError("timeout", TIMED_OUT)

    def hold(self, points: int) -> None:
        """Count ``points`` more as held; refuse the query once past ``max_samples``."""
        self.held += points
        if self.held > self.max_samples:
            raise PromQLError("execution", TOO_MANY_SAMPLES)

    @property
    def left(self) -> int:
        return self.max_samples - self.held


@contextmanager
def active(budget: Budget) -> Iterator[Budget]:
    """Make ``budget`` the one ``tick``/``reserve`` see in this thread while the block runs."""
    previous = getattr(_local, "budget", None)
    _local.budget = budget
    try:
        yield budget
    finally:
        _local.budget = previous


def current() -> Budget | None:
    return getattr(_local, "budget", None)


def tick() -> None:
    """Raise Prometheus' timeout error if this thread's evaluation is past its deadline."""
    budget = getattr(_local, "budget", None)
    if budget is not None and time.monotonic() > budget.deadline:
        raise PromQLError("timeout", TIMED_OUT)


def reserve(points: int) -> None:
    """Count ``points`` about to be allocated against this thread's evaluation (checked first)."""
    budget = getattr(_local, "budget", None)
    if budget is not None:
        budget.check_time()
        budget.hold(points)
