"""What one evaluation may spend: time until its deadline, and points held in memory at once.

A query past its timeout must stop where it is, not run on in its worker after the API has
answered ``timeout``: the engine and the loops of the functions it calls check the deadline
(``tick``) per node, per series and per step. Points count against ``max_samples`` as Prometheus'
``query.max-samples`` counts them: every point a query holds at once, loaded or computed, and a
subquery's or range query's steps times its series before the arrays are made (``reserve``).

The budget of the evaluation running in this thread is found through a thread-local, so the
function modules need no extra parameter; outside an evaluation both calls do nothing.

Long evaluations take turns (``Turns``). Python runs one thread at a time (the GIL), handing it
round in 5 ms slices, so ten CPU-bound queries would make every other request (and the event
loop itself) wait ten slices each time it needs the interpreter. An evaluation runs freely for
its first ``FREE_RUN_S`` of CPU time — the whole life of an ordinary query, however long it waits
for the interpreter — and after that only while it holds one of ``TURNS``' few slots, giving it
up every ``SLICE_S`` to the next in line. So however
many heavy queries run, only a couple compete with the short requests for the interpreter.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

from query.promql.errors import PromQLError

TOO_MANY_SAMPLES = "query processing would load too many samples into memory in query execution"
TIMED_OUT = "query timed out in expression evaluation"

# An evaluation uses this much CPU time before it must take turns; then it holds a turn this long.
FREE_RUN_S = 0.02
SLICE_S = 0.01

_local = threading.local()


class Turns:
    """``slots`` turns handed out first come, first served (a released turn goes to the longest
    waiter, never back to the thread that released it while others wait)."""

    def __init__(self, slots: int) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._free = slots
        self._queue: deque[object] = deque()

    def take(self, deadline: float) -> bool:
        """Wait for a turn until ``deadline`` (monotonic seconds); False when it passed first."""
        with self._cond:
            if self._free and not self._queue:
                self._free -= 1
                return True
            ticket = object()
            self._queue.append(ticket)
            try:
                while not (self._free and self._queue[0] is ticket):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._cond.wait(left)
                self._free -= 1
                return True
            finally:
                self._queue.remove(ticket)
                self._cond.notify_all()

    def give_back(self) -> None:
        with self._cond:
            self._free += 1
            self._cond.notify_all()


# One: then a single long evaluation competes with the short requests for the interpreter. A
# range query's two passes still overlap: a store read gives its turn back (``Budget.off_turn``).
TURNS = Turns(1)


class Budget:
    """One evaluation's deadline (``time.monotonic()`` seconds), its count of points held, and
    its place in the ``TURNS`` of long evaluations."""

    __slots__ = (
        "cpu_free_until",
        "deadline",
        "held",
        "max_samples",
        "next_cpu_check",
        "peak",
        "slice_end",
        "turn",
    )

    def __init__(self, deadline: float, max_samples: int) -> None:
        self.deadline = deadline
        self.max_samples = max_samples
        self.held = 0
        self.peak = 0  # the most ever held (what a subexpression cost: ``shared_results``)
        # The evaluating thread's CPU time when its free run ends: set by ``active``, which runs
        # the evaluation in that thread.
        self.cpu_free_until = 0.0
        # A thread's CPU time grows no faster than the clock, so its free run cannot be over before
        # this (monotonic) time: until then ``check_time`` skips ``thread_time``, a system call
        # (about 0.4 µs against 0.04 µs) made per series and step otherwise; a short evaluation
        # makes one, in ``active``.
        self.next_cpu_check = 0.0
        self.slice_end = 0.0
        self.turn = False

    def check_time(self) -> None:
        """Raise ``timeout`` past the deadline; past its slice, wait for the next turn."""
        now = time.monotonic()
        if now > self.deadline:
            raise PromQLError("timeout", TIMED_OUT)
        if self.turn:
            if now >= self.slice_end:
                self._next_turn()
        elif now >= self.next_cpu_check:
            left = self.cpu_free_until - time.thread_time()
            if left <= 0:
                self._next_turn()
            else:
                self.next_cpu_check = now + left

    def _next_turn(self) -> None:
        if self.turn:
            self.turn = False
            TURNS.give_back()
        if not TURNS.take(self.deadline):
            raise PromQLError("timeout", TIMED_OUT)
        self.turn = True
        self.slice_end = time.monotonic() + SLICE_S

    @contextmanager
    def off_turn(self) -> Iterator[None]:
        """Give the turn back while the block runs outside the interpreter (a store read); the
        next check after it waits for a turn again."""
        self.finish()
        yield

    def finish(self) -> None:
        """Give back a turn still held (the evaluation ended, or failed)."""
        if self.turn:
            self.turn = False
            TURNS.give_back()

    def hold(self, points: int) -> None:
        """Count ``points`` more as held; refuse the query once past ``max_samples``."""
        self.held += points
        if self.held > self.peak:
            self.peak = self.held
        if self.held > self.max_samples:
            raise PromQLError("execution", TOO_MANY_SAMPLES)

    def check_room(self, points: int) -> None:
        """Refuse now if ``points`` more would not fit (before making what would hold them)."""
        if self.held + points > self.max_samples:
            raise PromQLError("execution", TOO_MANY_SAMPLES)

    @property
    def left(self) -> int:
        return self.max_samples - self.held


@contextmanager
def active(budget: Budget) -> Iterator[Budget]:
    """Make ``budget`` the one ``tick``/``reserve`` see in this thread while the block runs."""
    previous = getattr(_local, "budget", None)
    _local.budget = budget
    budget.cpu_free_until = time.thread_time() + FREE_RUN_S
    budget.next_cpu_check = time.monotonic() + FREE_RUN_S
    try:
        yield budget
    finally:
        _local.budget = previous
        budget.finish()


def current() -> Budget | None:
    return getattr(_local, "budget", None)


def tick() -> None:
    """Raise Prometheus' timeout error if this thread's evaluation is past its deadline."""
    budget = getattr(_local, "budget", None)
    if budget is not None:
        budget.check_time()


def reserve(points: int) -> None:
    """Count ``points`` about to be allocated against this thread's evaluation (checked first)."""
    budget = getattr(_local, "budget", None)
    if budget is not None:
        budget.check_time()
        budget.hold(points)
