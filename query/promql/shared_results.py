"""Aggregations that several queries of one dashboard refresh ask alike, evaluated once.

Why: a generated service dashboard asks the 50th, 90th and 99th percentile of each latency
histogram as three panel queries, ``histogram_quantile(q, sum by (le) (rate(x_bucket{…}[…])))``,
sent together. The inner aggregation is nearly all of each query's work (reading and rating every
bucket series), and it is the same in all three. Each query's evaluation now asks here first: the
first one computes, the others (arriving meanwhile, or within ``TTL_S``) take its block.

Exact, not approximate: a block is keyed by the caller's scope and the store's write version
(``version()``: it changes with every insert and every statement, in chDB where this process is
the only writer), with the subexpression's text, the steps it is evaluated at and the query's
start and end (for ``@ start()``/``end()``). Any write in between makes the next query compute
afresh, so a taken block is exactly what computing it again would give. Where the store cannot
say (a ClickHouse server others write to: ``version()`` None) nothing is shared. Entries live
``TTL_S`` only: this is for queries sent together, not for the next refresh, which the range
answer cache (``result_cache``) serves; ``nocache=1`` skips both.

Blocks are copied in and out: a caller may change the arrays of the block it was given.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from query.promql.blocks import Block, Col, ScalarBlock, VectorBlock
from query.promql.parse import vector_selectors

TTL_S = 5.0
MAX_ENTRIES = 256
MAX_POINTS = 2_000_000  # all entries together (16 bytes each with the mask: ~32 MB)
_WAIT_S = 30.0  # at most this long for another thread computing the same block


@dataclass(frozen=True, slots=True)
class Computed:
    """A block with what computing it cost the query's budget, so a taken one costs the same."""

    block: Block
    peak_points: int  # the most points held above the caller's mark while computing
    samples: int  # points read from the store


def _copy(block: Block) -> Block:
    if isinstance(block, VectorBlock):
        return VectorBlock(
            [
                Col(
                    dict(c.labels),
                    c.values.copy(),
                    c.mask.copy(),
                    None if c.sample_ts is None else c.sample_ts.copy(),
                )
                for c in block.cols
            ]
        )
    if isinstance(block, ScalarBlock):
        return ScalarBlock(block.values.copy())
    return block


def _points(block: Block) -> int:
    if isinstance(block, VectorBlock):
        return sum(len(c.values) for c in block.cols)
    return 1


class SharedResults:
    """``get(key, compute)``: ``compute()``'s ``Computed``, or a copy of one computed moments ago."""

    def __init__(
        self,
        version: Callable[[], Hashable | None],
        ttl_s: float = TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.version = version
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[float, Computed]] = OrderedDict()
        self._computing: dict[Hashable, threading.Event] = {}
        self._points = 0
        self.hits = 0
        self.misses = 0

    def get(
        self,
        key: Hashable,
        compute: Callable[[], Computed],
        deadline: float,
        before_waiting: Callable[[], None] = lambda: None,
    ) -> tuple[Computed, bool]:
        """``compute()``'s answer and False, or one computed moments ago and True. ``key`` must hold
        the scope and the ``version()`` read before computing (see the module). While another
        thread computes the same, this one waits, after ``before_waiting`` (giving back what the
        other may need: the caller's evaluation turn)."""
        while True:
            with self._lock:
                self._expire()
                entry = self._entries.get(key)
                if entry is not None:
                    self.hits += 1
                    return _copied(entry[1]), True
                running = self._computing.get(key)
                if running is None:
                    self._computing[key] = threading.Event()
                    self.misses += 1
                    break
            # Another query computes it now: wait for it, then look again (its failure left nothing:
            # this one computes). Out of time first: compute alone.
            before_waiting()
            if not running.wait(max(min(deadline - time.monotonic(), _WAIT_S), 0.0)):
                return compute(), False
        try:
            computed = compute()
            self._keep(key, _copied(computed))
            return computed, False
        finally:
            with self._lock:
                self._computing.pop(key).set()

    def _keep(self, key: Hashable, computed: Computed) -> None:
        points = _points(computed.block)
        if points > MAX_POINTS // 10:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._points -= _points(old[1].block)
            self._entries[key] = (self._clock(), computed)
            self._points += points
            while len(self._entries) > MAX_ENTRIES or self._points > MAX_POINTS:
                self._points -= _points(self._entries.popitem(last=False)[1][1].block)

    def _expire(self) -> None:
        """Drop entries past their time (oldest first; called with the lock held)."""
        cut = self._clock() - self._ttl_s
        while self._entries:
            key, (stored, computed) = next(iter(self._entries.items()))
            if stored >= cut:
                return
            del self._entries[key]
            self._points -= _points(computed.block)


def _copied(computed: Computed) -> Computed:
    """The same, with a block of its own (see the module)."""
    return Computed(_copy(computed.block), computed.peak_points, computed.samples)


def has_selector(node: Any) -> bool:
    """Whether evaluating ``node`` reads the store (a constant expression is not worth keeping)."""
    return bool(vector_selectors(node))
