"""PromQL evaluation with Prometheus 2.42 semantics over any ``Querier``.

>>> from store.memory import MemoryStore
>>> Engine(MemoryStore()).instant("vector(1)", ts_ms=0)
Vector(ts_ms=0, samples=[Sample(labels={}, value=1.0)])

Every node is evaluated once for all steps of a range query (see ``blocks``); each selector asks
the querier once for the whole span it needs, ``[first step - lookback/range - offset, last step -
offset]`` (or around its ``@`` time).
"""

from __future__ import annotations

import contextvars
import inspect
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import promql_parser as pp

from model.rollups import widest_tiling
from model.series import STALE_NAN_BITS, Series, StepWindows
from query.promql import aggregations, binary_ops, budget, functions, kernels, rollup_eval
from query.promql.blocks import (
    Block,
    Col,
    IntArray,
    RangeBlock,
    RangeSeries,
    ScalarBlock,
    StringBlock,
    VectorBlock,
    label_key,
    stack_rows,
)
from query.promql.budget import Budget
from query.promql.errors import PromQLError
from query.promql.limits import DEFAULT_LIMITS, QueryLimits
from query.promql.parse import (
    AT_END,
    AT_START,
    at_of,
    offset_ms,
    parse_expr,
    range_ms_of,
    step_ms_of,
    to_matchers,
)
from query.promql.shared_results import Computed, SharedResults, has_selector
from query.promql.storage import Querier
from query.promql.value import Matrix, MatrixSeries, Sample, Scalar, String, Value, Vector


def is_stale(values: np.ndarray) -> np.ndarray:
    """Mask of Prometheus staleness markers (one NaN bit pattern, not every NaN)."""
    return values.view(np.uint64) == np.uint64(STALE_NAN_BITS)


class Engine:
    """Evaluates PromQL text against a querier; results are ``value`` types, failures ``PromQLError``."""

    def __init__(
        self,
        querier: Querier,
        lookback_delta_ms: int = 300_000,
        max_samples: int = 50_000_000,
        timeout_s: float = 120,
        default_subquery_step_ms: int = 60_000,
        use_rollups: bool = True,
        min_bucket_width_ms: int = 300_000,
        max_steps_per_pass: int = 720,
        points_per_pass: int = 8_000_000,
        max_concurrent: int = 20,
        limits: QueryLimits = DEFAULT_LIMITS,
    ) -> None:
        self.querier = querier
        self.limits = limits
        self.max_concurrent = max_concurrent
        self.lookback_delta_ms = lookback_delta_ms
        self.max_samples = max_samples
        self.timeout_s = timeout_s
        self.default_subquery_step_ms = default_subquery_step_ms
        self.max_steps_per_pass = max_steps_per_pass
        self.points_per_pass = points_per_pass
        # Prometheus' --query.max-concurrency (default 20): more queries wait for a slot, and the
        # wait counts against their timeout, so a burst of heavy queries cannot exhaust the server.
        self._slots = threading.BoundedSemaphore(max_concurrent)
        # A store that keeps rollup buckets (``select_buckets``) answers aligned range functions
        # from them; None: raw samples only.
        # Only buckets of at least ``min_bucket_width_ms``: composing windows from a bucket row costs
        # more than from a raw point, so 1-minute buckets (6 points at a 10 s scrape, 1 at 60 s) were
        # measured slower than raw samples (bench.promql); 5-minute and wider ones pay.
        widths = getattr(querier, "bucket_widths", None) if use_rollups else None
        widths = tuple(w for w in widths or () if w >= min_bucket_width_ms)
        self.bucket_widths: tuple[int, ...] | None = widths or None
        kernels.warm()
        # Aggregations several queries ask alike, evaluated once (``shared_results``): only over a
        # querier that can say its scope and the store's write version.
        version = getattr(querier, "result_version", None)
        self.shared: SharedResults | None = SharedResults(version) if callable(version) else None
        # A store that can stop reading at the sample budget gets it (no OOM before the check).
        self._select_takes_limit = "max_samples" in inspect.signature(querier.select).parameters
        # A store that can leave out the points between a range query's windows is told them.
        self._select_takes_windows = getattr(querier, "reads_step_windows", False) is True
        self._series_in_label_order = getattr(querier, "series_in_label_order", False) is True

    def instant(self, query: str, ts_ms: int, timeout_s: float | None = None) -> Value:
        """Evaluate at one time; a range selector or subquery at the top gives a ``Matrix``.

        ``timeout_s`` (the API's ``timeout`` parameter) can only shorten the engine's own limit.
        """
        return self._run(self._instant, self._timeout(timeout_s), query, ts_ms)

    def range(
        self,
        query: str,
        start_ms: int,
        end_ms: int,
        step_ms: int,
        timeout_s: float | None = None,
        share: bool = True,
    ) -> Matrix:
        """Evaluate at ``start, start+step, … <= end``; series sorted by labels, as Prometheus.

        ``share``: take aggregations other queries computed a moment ago (``shared_results``);
        False (the API's ``nocache=1``) computes everything.
        """
        return self._run(self._range, self._timeout(timeout_s), query, start_ms, end_ms, step_ms, share)

    def _timeout(self, timeout_s: float | None) -> float:
        return self.timeout_s if timeout_s is None else min(timeout_s, self.timeout_s)

    def _run(self, fn: Callable[..., Any], timeout_s: float, *args: Any) -> Any:
        """Wait for a slot (within the query's time), then evaluate."""
        waited = time.monotonic()
        if not self._slots.acquire(timeout=max(timeout_s, 0.0)):
            raise PromQLError("timeout", "query timed out in query queue")
        try:
            return _guarded(fn, *args, max(timeout_s - (time.monotonic() - waited), 0.0))
        finally:
            self._slots.release()

    def _instant(self, query: str, ts_ms: int, timeout_s: float) -> Value:
        expr = parse_expr(query, self.limits)
        ts = np.array([int(ts_ms)], dtype=np.int64)
        block = _Evaluator(self, int(ts_ms), int(ts_ms), timeout_s).run(expr, ts)
        if isinstance(block, ScalarBlock):
            return Scalar(int(ts_ms), float(block.values[0]))
        if isinstance(block, StringBlock):
            return String(int(ts_ms), block.value)
        if isinstance(block, RangeBlock):
            return _range_block_to_matrix(block)
        return Vector(int(ts_ms), [Sample(c.labels, float(c.values[0])) for c in block.cols if c.mask[0]])

    def _range(
        self, query: str, start_ms: int, end_ms: int, step_ms: int, share: bool, timeout_s: float
    ) -> Matrix:
        if step_ms <= 0:
            raise PromQLError("bad_data", "zero or negative query resolution step widths are not accepted")
        if end_ms < start_ms:
            raise PromQLError("bad_data", "end timestamp must not be before start time")
        expr = parse_expr(query, self.limits)
        kind = _static_type(expr)
        if kind in ("matrix", "string"):
            name = "range vector" if kind == "matrix" else "string"
            raise PromQLError(
                "bad_data",
                f'invalid expression type "{name}" for range query, must be Scalar or instant Vector',
            )
        if (int(end_ms) - int(start_ms)) // int(step_ms) >= self.max_samples:
            raise PromQLError("execution", budget.TOO_MANY_SAMPLES)
        ts = np.arange(int(start_ms), int(end_ms) + 1, int(step_ms), dtype=np.int64)
        deadline = time.monotonic() + timeout_s
        # The answer accumulates over the passes: its points count against ``max_samples`` too
        # (Prometheus counts a range query's output matrix), and each pass may use what is left.
        returned = [0]
        lock = threading.Lock()

        # Steps are independent, so a long range is evaluated in passes: memory stays bounded by
        # series x pass, not series x range. The first pass has ``max_steps_per_pass`` steps; later
        # ones are sized from the points it loaded, to about ``points_per_pass`` (never fewer steps
        # than the first): few series make long passes, so fixed costs per pass (label work, one
        # store read per selector) are paid a few times, not once per 720 steps. Later passes run
        # two at a time: the store's read for one (which releases the GIL, as the compiled range
        # functions do) overlaps the other's arithmetic.
        def run_pass(chunk: IntArray) -> tuple[list[MatrixSeries], float]:
            with lock:
                left = self.max_samples - returned[0]
            evaluator = _Evaluator(
                self, int(start_ms), int(end_ms), max(deadline - time.monotonic(), 0.0), left, share
            )
            series = _block_to_series(evaluator.run(expr, chunk), chunk)
            with lock:
                returned[0] += sum(len(s.values) for s in series)
                if returned[0] > self.max_samples:
                    raise PromQLError("execution", budget.TOO_MANY_SAMPLES)
            return series, evaluator.samples / len(chunk)

        # A remainder of up to a quarter pass joins the first: Grafana's ranges are one step over a
        # round number (721 steps for 24 h at 2 min), and a pass of one step costs a read per selector.
        first_steps = self.max_steps_per_pass
        if len(ts) - first_steps <= first_steps // 4:
            first_steps = len(ts)
        first = ts[:first_steps]
        done, per_step = run_pass(first)
        pass_steps = self.max_steps_per_pass
        if per_step:
            pass_steps = max(pass_steps, int(self.points_per_pass / per_step))
        rest = [ts[i : i + pass_steps] for i in range(len(first), len(ts), pass_steps)]
        passes = [done]
        if len(rest) == 1:
            passes.append(run_pass(rest[0])[0])
        elif rest:
            pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="promql-pass")
            # Each pass runs in a copy of the caller's context: the caller's project scope
            # (``query.api.tenancy``) lives there, and a pool thread has none of its own.
            contexts = [contextvars.copy_context() for _ in rest]
            try:
                ran = pool.map(lambda job: job[0].run(run_pass, job[1]), zip(contexts, rest, strict=True))
                passes.extend(result for result, _ in ran)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        if len(passes) == 1:  # each series once: only the order to set
            return Matrix(sorted(passes[0], key=lambda s: label_key(s.labels)))
        parts: dict[Any, list[MatrixSeries]] = {}
        for series in (s for one in passes for s in one):
            parts.setdefault(label_key(series.labels), []).append(series)
        out = [
            MatrixSeries(
                pieces[0].labels,
                np.concatenate([p.ts_ms for p in pieces]),
                np.concatenate([p.values for p in pieces]),
            )
            if len(pieces) > 1
            else pieces[0]
            for pieces in parts.values()
        ]
        out.sort(key=lambda s: label_key(s.labels))
        return Matrix(out)


def _block_to_series(block: Block, ts: IntArray) -> list[MatrixSeries]:
    """A pass's series: each column's present steps. A column present at every step (the usual
    one) is taken whole, and which are is found for all columns at once."""
    if isinstance(block, ScalarBlock):
        return [MatrixSeries({}, ts, block.values.astype(np.float64))]
    assert isinstance(block, VectorBlock)
    cols = block.cols
    if not cols:
        return []
    masks = stack_rows([c.mask for c in cols])
    counts = masks.sum(axis=1).tolist()
    steps = len(ts)
    return [
        MatrixSeries(c.labels, ts, c.values)
        if n == steps
        else MatrixSeries(c.labels, ts[c.mask], c.values[c.mask])
        for c, n in zip(cols, counts, strict=True)
        if n
    ]


def _guarded(fn: Callable[..., Any], *args: Any) -> Any:
    """Every failure leaves as ``PromQLError``; a store failure or a bug as "internal", as Prometheus
    reports storage errors, with the original exception chained for the log."""
    try:
        return fn(*args)
    except PromQLError:
        raise
    except RecursionError:
        raise PromQLError("bad_data", "query is too deeply nested") from None
    except TimeoutError:  # the store's own time limit (ClickHouse max_execution_time)
        raise PromQLError("timeout", "query timed out in query execution") from None
    except Exception as exc:
        raise PromQLError("internal", f"{type(exc).__name__}: {exc}") from exc


def _points(series: Series) -> tuple[IntArray, np.ndarray]:
    """A series' points sorted by time with one point per timestamp (the last one stored wins).

    The contract says sorted and unique; a store that merges lazily (ClickHouse) may not be.
    """
    st = np.asarray(series.ts_ms, dtype=np.int64)
    sv = np.asarray(series.values, dtype=np.float64)
    if len(st) > 1:
        steps = np.diff(st)
        if (steps < 0).any():
            order = np.argsort(st, kind="stable")
            st, sv = st[order], sv[order]
            steps = np.diff(st)
        if (steps == 0).any():
            last = np.concatenate((steps != 0, [True]))
            st, sv = st[last], sv[last]
    return st, sv


def _all_points(
    series: list[Series], sorted_unique: bool = False
) -> tuple[list[tuple[IntArray, np.ndarray]], bool]:
    """``_points`` of every series, checked in one pass; and whether any staleness marker is there.

    Stores return sorted unique points nearly always, so one check over all series laid end to end
    replaces a check per series; only when it fails does each series get the per-series repair.
    """
    pairs = [(np.asarray(s.ts_ms, dtype=np.int64), np.asarray(s.values, dtype=np.float64)) for s in series]
    if not pairs:
        return pairs, False
    if sorted_unique:  # the store vouches for it: look only for markers, in one pass
        return pairs, bool(is_stale(np.concatenate([vs for _, vs in pairs])).any())
    all_ts = np.concatenate([ts for ts, _ in pairs])
    all_vs = np.concatenate([vs for _, vs in pairs])
    increasing = np.diff(all_ts) > 0
    ends = np.cumsum([len(ts) for ts, _ in pairs])[:-1]
    increasing[ends[(ends > 0) & (ends < len(all_ts))] - 1] = True  # series boundaries do not count
    if not increasing.all():
        pairs = [_points(s) for s in series]
    return pairs, bool(is_stale(all_vs).any())


def _static_type(expr: Any) -> str:
    while isinstance(expr, pp.ParenExpr):
        expr = expr.expr
    if isinstance(expr, pp.MatrixSelector | pp.SubqueryExpr):
        return "matrix"
    if isinstance(expr, pp.StringLiteral):
        return "string"
    return "other"


def _range_block_to_matrix(block: RangeBlock) -> Matrix:
    out = []
    ref = int(block.refs[0])
    for s in block.series:
        lo, hi = np.searchsorted(s.ts, ref - block.range_ms, "left"), np.searchsorted(s.ts, ref, "right")
        if hi > lo:
            out.append(MatrixSeries(s.labels, s.ts[lo:hi], s.values[lo:hi]))
    return Matrix(out)


class _Evaluator:
    """One query's evaluation: query start/end (for ``@ start()/end()``), deadline, sample budget."""

    def __init__(
        self,
        engine: Engine,
        start_ms: int,
        end_ms: int,
        timeout_s: float,
        max_samples: int | None = None,
        share: bool = False,
    ) -> None:
        self.engine = engine
        # What a shared aggregation's key starts with: the scope and the store's write version,
        # read before anything is read (None: nothing shared).
        version = engine.shared.version() if share and engine.shared is not None else None
        self._shared_key = None if version is None else (version, start_ms, end_ms, engine.lookback_delta_ms)
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.budget = Budget(
            time.monotonic() + timeout_s, engine.max_samples if max_samples is None else max_samples
        )
        self.samples = 0  # points read from the store (sizes the passes of a range query)
        # A store may promise sorted points with one per timestamp (ClickHouseQuerier does).
        self._sorted_unique = bool(getattr(engine.querier, "points_sorted_unique", False))

    def check_deadline(self) -> None:
        """Raise Prometheus' timeout error once the query's time is up (checked between steps)."""
        self.budget.check_time()

    # -- dispatch ---------------------------------------------------------------------------------

    def run(self, expr: Any, ts: IntArray) -> Block:
        """Evaluate the whole expression with this evaluation's budget active in this thread."""
        with budget.active(self.budget):
            return self.eval(expr, ts)

    def eval(self, node: Any, ts: IntArray) -> Block:
        """A node's value; its operands' points are released once it has its own, which count."""
        self.budget.check_time()
        handler = _HANDLERS.get(type(node))
        if handler is None:
            raise PromQLError("internal", f"unsupported expression {type(node).__name__}")
        mark = self.budget.held
        block = handler(self, node, ts)
        self.budget.held = mark
        self.budget.hold(_points_held(block, len(ts)))
        return block

    def _number(self, node: Any, ts: IntArray) -> Block:
        return ScalarBlock(np.full(len(ts), float(node.val)))

    def _string(self, node: Any, ts: IntArray) -> Block:
        return StringBlock(node.val)

    def _paren(self, node: Any, ts: IntArray) -> Block:
        return self.eval(node.expr, ts)

    def _unary(self, node: Any, ts: IntArray) -> Block:
        inner = self.eval(node.expr, ts)
        if isinstance(inner, ScalarBlock):
            return ScalarBlock(-inner.values)
        assert isinstance(inner, VectorBlock)
        return functions.finish([Col(functions.drop_name(c.labels), -c.values, c.mask) for c in inner.cols])

    def _binary(self, node: Any, ts: IntArray) -> Block:
        return binary_ops.evaluate(node, self.eval(node.lhs, ts), self.eval(node.rhs, ts))

    def _aggregate(self, node: Any, ts: IntArray) -> Block:
        shared = self.engine.shared
        if self._shared_key is None or shared is None or not has_selector(node):
            return self._aggregate_now(node, ts)
        key = (*self._shared_key, str(node), int(ts[0]), int(ts[-1]), len(ts))
        computed, taken = shared.get(
            key, lambda: self._computed(node, ts), self.budget.deadline, self.budget.finish
        )
        if taken:  # costs the budget what computing it would have
            self.budget.hold(computed.peak_points)
            self.budget.held -= computed.peak_points
            self.samples += computed.samples
        return computed.block

    def _computed(self, node: Any, ts: IntArray) -> Computed:
        mark, peak, samples = self.budget.held, self.budget.peak, self.samples
        self.budget.peak = mark
        block = self._aggregate_now(node, ts)
        computed = Computed(block, self.budget.peak - mark, self.samples - samples)
        self.budget.peak = max(peak, self.budget.peak)
        return computed

    def _aggregate_now(self, node: Any, ts: IntArray) -> Block:
        param = self.eval(node.param, ts) if node.param is not None else None
        inner = self.eval(node.expr, ts)
        assert isinstance(inner, VectorBlock)
        return aggregations.evaluate(node, inner, param)

    def _call(self, node: Any, ts: IntArray) -> Block:
        if node.func.name in rollup_eval.FUNCTIONS and self.engine.bucket_widths:
            block = self._from_buckets(node, ts)
            if block is not None:
                return block
        args = [self.eval(arg, ts) for arg in node.args]
        for arg in args:
            if isinstance(arg, RangeBlock):  # a range function makes a column per series: reserve it
                self.budget.hold(len(arg.series) * len(ts))
        return functions.call(node, args, ts)

    def _from_buckets(self, node: Any, ts: IntArray) -> Block | None:
        """A range function over a plain selector from the store's rollups, when they tile it."""
        arg = node.args[0] if len(node.args) == 1 else None
        if not isinstance(arg, pp.MatrixSelector):
            return None
        selector = arg.vector_selector
        refs = self.refs(selector, ts)
        range_ms = range_ms_of(arg)
        assert self.engine.bucket_widths is not None
        width = widest_tiling(self.engine.bucket_widths, range_ms, refs)
        if width is None:
            return None
        start, end = int(refs.min()) - range_ms, int(refs.max())
        name = node.func.name
        buckets = self.engine.querier.select_buckets(  # type: ignore[attr-defined]
            to_matchers(selector), start, end, width, rollup_eval.COLUMNS[name]
        )
        self.check_deadline()
        if buckets is None:
            return None
        self.count_loaded(len(buckets))
        self.budget.hold(len(buckets.labels) * len(refs))  # the windows and the columns made from them
        return rollup_eval.evaluate(name, buckets, refs, range_ms)

    # -- selectors --------------------------------------------------------------------------------

    def refs(self, node: Any, ts: IntArray) -> IntArray:
        """Per step, the time a selector or subquery looks at: step (or ``@``) minus offset."""
        at = at_of(node)
        offset = offset_ms(node)
        if at is None:
            return ts - offset
        at_ms = self.start_ms if at == AT_START else self.end_ms if at == AT_END else int(at)
        return np.full(len(ts), at_ms - offset, dtype=np.int64)

    def _windows(self, node: Any, refs: IntArray, ts: IntArray, window_ms: int) -> StepWindows | None:
        """The windows a selector looks at over the steps, when they leave time between them."""
        if not self.engine._select_takes_windows or len(ts) < 2 or at_of(node) is not None:
            return None
        step = int(ts[1] - ts[0])
        return StepWindows(int(refs[-1]), step, window_ms) if window_ms < step else None

    def _select(
        self, selector: Any, start_ms: int, end_ms: int, windows: StepWindows | None = None
    ) -> list[Series]:
        select: Any = self.engine.querier.select
        matchers = to_matchers(selector)
        extra: dict[str, Any] = {} if windows is None else {"windows": windows}
        with self.budget.off_turn():  # the store works outside the interpreter: let others run
            if self.engine._select_takes_limit:
                limit = max(self.budget.left, 0) + 1  # one over the limit: enough to refuse
                series = select(matchers, int(start_ms), int(end_ms), max_samples=limit, **extra)
            else:
                series = select(matchers, int(start_ms), int(end_ms), **extra)
        self.check_deadline()
        # Prometheus' storage yields series sorted by labels; results keep that order. A store that
        # keeps its series in that order says so.
        if not self.engine._series_in_label_order:
            series = sorted(series, key=lambda s: label_key(s.labels))
        self.count_loaded(sum(len(s.ts_ms) for s in series))
        return series

    def count_loaded(self, n: int) -> None:
        """Add points (or bucket rows) read to the query's budget; refuse past ``max_samples``."""
        self.samples += n
        self.budget.hold(n)

    def _vector_selector(self, node: Any, ts: IntArray) -> Block:
        refs = self.refs(node, ts)
        lookback = self.engine.lookback_delta_ms
        cols = []
        windows = self._windows(node, refs, ts, lookback)
        series = self._select(node, refs.min() - lookback, refs.max(), windows)
        self.budget.hold(len(series) * len(ts))  # a column per series, before making them
        pairs = _all_points(series, self._sorted_unique)[0]
        # Series in blocks of about ``_LATEST_BLOCK_POINTS`` points over the steps: a block's
        # index arrays are temporary, so memory stays that of the columns made.
        rows = max(1, _LATEST_BLOCK_POINTS // max(len(refs), 1))
        for first in range(0, len(pairs), rows):
            self.budget.check_time()
            values, present, sample_ts = _latest_points(pairs[first : first + rows], refs, lookback)
            for i in np.flatnonzero(present.any(axis=1)).tolist():
                cols.append(Col(dict(series[first + i].labels), values[i], present[i], sample_ts[i]))
        return VectorBlock(cols)

    def _matrix_selector(self, node: Any, ts: IntArray) -> Block:
        selector = node.vector_selector
        refs = self.refs(selector, ts)
        range_ms = range_ms_of(node)
        out = []
        windows = self._windows(selector, refs, ts, range_ms)
        series = self._select(selector, refs.min() - range_ms, refs.max(), windows)
        pairs, any_stale = _all_points(series, self._sorted_unique)
        for s, (st, sv) in zip(series, pairs, strict=True):
            self.budget.check_time()
            if any_stale:
                keep = ~is_stale(sv)
                st, sv = st[keep], sv[keep]
            out.append(RangeSeries(dict(s.labels), st, sv))
        return RangeBlock(out, refs, range_ms, selector)

    def _subquery(self, node: Any, ts: IntArray) -> Block:
        refs = self.refs(node, ts)
        range_ms = range_ms_of(node)
        step = step_ms_of(node) or self.engine.default_subquery_step_ms
        first = int(refs.min()) - range_ms
        start = -(-first // step) * step  # first multiple of the step at or after the window start
        # Every inner step of a series is a point: refuse before making a 30d:1ms array of steps.
        self.budget.check_room(max((int(refs.max()) - start) // step + 1, 0))
        inner_ts = np.arange(start, int(refs.max()) + 1, step, dtype=np.int64)
        out = []
        if len(inner_ts):
            inner = self.eval(node.expr, inner_ts)
            assert isinstance(inner, VectorBlock)
            for c in inner.cols:
                self.budget.check_time()
                out.append(RangeSeries(c.labels, inner_ts[c.mask], c.values[c.mask]))
                self.samples += int(c.mask.sum())
        return RangeBlock(out, refs, range_ms, None)


# Points (series x steps) an instant selector finds at once: 16 MB of temporary indexes.
_LATEST_BLOCK_POINTS = 1 << 20


def _latest_points(
    pairs: list[tuple[IntArray, np.ndarray]], refs: IntArray, lookback_ms: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For every series (sorted, unique times) and every step time in ``refs``: the value and time
    of its latest point at or before the step, and whether that point counts (no older than the
    lookback, not a staleness marker); arrays of a row per series and a column per step (value and
    time 0 where it does not count).

    Why compiled (``kernels.latest_points``): one pass over all series costs a fraction of a search
    per series, and of the twenty array operations a search over all of them at once took; a panel
    over every metric of a service is hundreds of series, a dashboard's usual panel a few.
    """
    n = len(pairs)
    all_ts = np.concatenate([t for t, _ in pairs]) if n else np.zeros(0, np.int64)
    if not len(all_ts) or not len(refs):  # no point to find
        return np.zeros((n, len(refs))), np.zeros((n, len(refs)), bool), np.zeros((n, len(refs)), np.int64)
    all_vs = np.concatenate([v for _, v in pairs])
    starts = np.zeros(n + 1, np.int64)
    np.cumsum(np.fromiter((len(t) for t, _ in pairs), np.int64, n), out=starts[1:])
    at, present = kernels.latest_points(
        all_ts, all_vs.view(np.uint64), starts, refs, lookback_ms, np.uint64(STALE_NAN_BITS)
    )
    found = np.maximum(at, 0)
    return np.where(present, all_vs[found], 0.0), present, np.where(present, all_ts[found], 0)


def _points_held(block: Block, steps: int) -> int:
    """Points a node's value holds: a value per step and column, or the points of its ranges.

    Scalars do not count, as in Prometheus; their size is bounded by the steps already checked.
    """
    if isinstance(block, VectorBlock):
        return len(block.cols) * steps
    if isinstance(block, RangeBlock):
        return sum(len(s.ts) for s in block.series)
    return 0


_HANDLERS = {
    pp.NumberLiteral: _Evaluator._number,
    pp.StringLiteral: _Evaluator._string,
    pp.ParenExpr: _Evaluator._paren,
    pp.UnaryExpr: _Evaluator._unary,
    pp.BinaryExpr: _Evaluator._binary,
    pp.AggregateExpr: _Evaluator._aggregate,
    pp.Call: _Evaluator._call,
    pp.VectorSelector: _Evaluator._vector_selector,
    pp.MatrixSelector: _Evaluator._matrix_selector,
    pp.SubqueryExpr: _Evaluator._subquery,
}
