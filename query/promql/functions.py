"""PromQL functions over instant vectors and scalars, and the catalogue of all functions.

``FUNCTIONS`` maps a name to ``fn(node, args, ts) -> Block``; range-vector functions live in
``range_functions`` and are looked up there. Functions drop the metric name except where
Prometheus keeps it (sort, label_*, last_over_time).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np
import promql_parser as pp
import re2

from model.labels import METRIC_NAME, MatchOp
from query.promql import budget, histogram, range_functions
from query.promql.blocks import (
    Block,
    Col,
    IntArray,
    RangeBlock,
    ScalarBlock,
    StringBlock,
    VectorBlock,
    dedupe,
    drop_name,
)
from query.promql.dates import DATE_PARTS, date_part
from query.promql.errors import PromQLError
from query.promql.parse import to_matchers
from query.promql.regex import compile_anchored

__all__ = ["FUNCTIONS", "call", "drop_name", "finish"]

Function = Callable[[Any, list[Block], IntArray], Block]
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_TEMPLATE = re.compile(r"\$(?:(\$)|\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")


def finish(cols: list[Col]) -> VectorBlock:
    """A function's result: equal label sets at one step are an error, as in Prometheus."""
    return VectorBlock(dedupe(cols))


def call(node: Any, args: list[Block], ts: IntArray) -> Block:
    name = node.func.name
    fn = FUNCTIONS.get(name)
    if fn is not None:
        return fn(node, args, ts)
    if name in range_functions.RANGE_FUNCTIONS:
        return range_functions.evaluate(name, args, ts)
    # The parser knows functions added after 2.42 (info, sort_by_label, native histogram ones, …).
    raise PromQLError("bad_data", f"parse error: unknown function with name {name!r}")


def _math(op: Callable[[np.ndarray], np.ndarray]) -> Function:
    def apply(node: Any, args: list[Block], ts: IntArray) -> Block:
        vec = args[0]
        assert isinstance(vec, VectorBlock)
        with np.errstate(all="ignore"):
            return finish([Col(drop_name(c.labels), op(c.values), c.mask) for c in vec.cols])

    return apply


def _round_half_up(values: np.ndarray, to_nearest: np.ndarray) -> np.ndarray:
    # Go's math.Floor(v*inv + 0.5) / inv, with inv = 1 / to_nearest (ties round up, as Prometheus).
    inv = 1.0 / to_nearest
    return np.floor(values * inv + 0.5) / inv


def _round(node: Any, args: list[Block], ts: IntArray) -> Block:
    vec = args[0]
    assert isinstance(vec, VectorBlock)
    nearest = args[1].values if len(args) > 1 and isinstance(args[1], ScalarBlock) else np.ones(len(ts))
    with np.errstate(all="ignore"):
        return finish([Col(drop_name(c.labels), _round_half_up(c.values, nearest), c.mask) for c in vec.cols])


def _clamp_with(lo_arg: int | None, hi_arg: int | None) -> Function:
    """clamp/clamp_min/clamp_max; NaN bounds give NaN (Go's math.Max/Min), min > max gives nothing."""

    def apply(node: Any, args: list[Block], ts: IntArray) -> Block:
        vec = args[0]
        assert isinstance(vec, VectorBlock)
        lo = args[lo_arg].values if lo_arg is not None else None  # type: ignore[union-attr]
        hi = args[hi_arg].values if hi_arg is not None else None  # type: ignore[union-attr]
        ok = ~(lo > hi) if lo is not None and hi is not None else np.ones(len(ts), dtype=bool)
        cols = []
        for c in vec.cols:
            v = c.values
            if hi is not None:
                v = np.minimum(hi, v)
            if lo is not None:
                v = np.maximum(lo, v)
            cols.append(Col(drop_name(c.labels), v, c.mask & ok))
        return finish(cols)

    return apply


def _time(node: Any, args: list[Block], ts: IntArray) -> Block:
    return ScalarBlock(ts / 1000.0)


def _pi(node: Any, args: list[Block], ts: IntArray) -> Block:
    return ScalarBlock(np.full(len(ts), math.pi))


def _vector(node: Any, args: list[Block], ts: IntArray) -> Block:
    scalar = args[0]
    assert isinstance(scalar, ScalarBlock)
    return VectorBlock([Col({}, scalar.values.astype(np.float64), np.ones(len(ts), dtype=bool))])


def _scalar(node: Any, args: list[Block], ts: IntArray) -> Block:
    vec = args[0]
    assert isinstance(vec, VectorBlock)
    count = np.zeros(len(ts), dtype=np.int64)
    value = np.full(len(ts), np.nan)
    for c in vec.cols:
        count += c.mask
        value = np.where(c.mask, c.values, value)
    return ScalarBlock(np.where(count == 1, value, np.nan))


def _timestamp(node: Any, args: list[Block], ts: IntArray) -> Block:
    vec = args[0]
    assert isinstance(vec, VectorBlock)
    cols = []
    for c in vec.cols:
        when = c.sample_ts if c.sample_ts is not None else ts
        cols.append(Col(drop_name(c.labels), when / 1000.0, c.mask))
    return finish(cols)


def _sort_with(descending: bool) -> Function:
    # Only instant queries have an order; NaNs go last either way, as in Prometheus 2.42.
    def apply(node: Any, args: list[Block], ts: IntArray) -> Block:
        vec = args[0]
        assert isinstance(vec, VectorBlock)
        cols = [Col(c.labels, c.values, c.mask) for c in vec.cols]
        if len(ts) == 1:

            def key(c: Col) -> tuple[int, float]:
                v = float(c.values[0])
                return (1, 0.0) if math.isnan(v) else (0, -v if descending else v)

            cols.sort(key=key)
        return VectorBlock(cols)

    return apply


def _absent_labels(arg_node: Any) -> dict[str, str]:
    while isinstance(arg_node, pp.ParenExpr):
        arg_node = arg_node.expr
    if isinstance(arg_node, pp.MatrixSelector):
        arg_node = arg_node.vector_selector
    if not isinstance(arg_node, pp.VectorSelector):
        return {}
    labels: dict[str, str] = {}
    ambiguous = set()
    for m in to_matchers(arg_node):
        if m.name == METRIC_NAME:
            continue
        if m.op is MatchOp.EQ and m.name not in labels:
            labels[m.name] = m.value
        else:
            ambiguous.add(m.name)
    return {k: v for k, v in labels.items() if k not in ambiguous}


def _absent(node: Any, args: list[Block], ts: IntArray) -> Block:
    vec = args[0]
    assert isinstance(vec, VectorBlock)
    present = np.zeros(len(ts), dtype=bool)
    for c in vec.cols:
        present |= c.mask
    if present.all():
        return VectorBlock([])
    return VectorBlock([Col(_absent_labels(node.args[0]), np.ones(len(ts)), ~present)])


def _absent_over_time(node: Any, args: list[Block], ts: IntArray) -> Block:
    rng = args[0]
    assert isinstance(rng, RangeBlock)
    present = np.zeros(len(ts), dtype=bool)
    for s in rng.series:
        lo = np.searchsorted(s.ts, rng.refs - rng.range_ms, "left")
        hi = np.searchsorted(s.ts, rng.refs, "right")
        present |= hi > lo
    if present.all():
        return VectorBlock([])
    return VectorBlock([Col(_absent_labels(node.args[0]), np.ones(len(ts)), ~present)])


def _expand(template: str, match: Any) -> str:
    """Go's ``regexp.Expand``: ``$1``, ``${1}``, ``$name``, ``${name}``, ``$$``; unknown names are empty.

    A ``$`` not followed by one of those forms stays as it is. One regex pass: linear in the
    template, however many ``$`` or ``${`` it holds.
    """

    def substitute(found: re.Match[str]) -> str:
        if found.group(1):
            return "$"
        return _group(match, found.group(2) or found.group(3))

    return _TEMPLATE.sub(substitute, template)


def _group(match: Any, name: str) -> str:
    try:
        value = match.group(int(name)) if name.isdigit() else match.group(name)
    except (IndexError, ValueError):  # no such group; or a number too long to be one
        return ""
    return value or ""


def _string_arg(block: Block) -> str:
    assert isinstance(block, StringBlock)
    return block.value


def _label_replace(node: Any, args: list[Block], ts: IntArray) -> Block:
    vec = args[0]
    assert isinstance(vec, VectorBlock)
    dst, repl, src, regex = (_string_arg(a) for a in args[1:5])
    try:
        pattern = compile_anchored(regex)  # RE2: linear time whatever the pattern and the value
    except (re2.error, ValueError, UnicodeError):
        raise PromQLError("execution", f"invalid regular expression in label_replace(): {regex}") from None
    if not _LABEL_NAME.match(dst):
        raise PromQLError("execution", f"invalid destination label name in label_replace(): {dst}")
    cols = []
    for c in vec.cols:
        budget.tick()
        labels = c.labels
        found = _match(pattern, labels.get(src, ""))
        if found:
            value = _expand(repl, found)
            labels = {k: v for k, v in labels.items() if k != dst}
            if value:
                labels[dst] = value
        cols.append(Col(labels, c.values, c.mask))
    return finish(cols)


def _match(pattern: Any, value: str) -> Any:
    """RE2 reads UTF-8: a value that is not (a lone surrogate) is matched with it replaced."""
    try:
        return pattern.match(value)
    except UnicodeEncodeError:
        return pattern.match(value.encode("utf-8", "replace").decode("utf-8"))


def _label_join(node: Any, args: list[Block], ts: IntArray) -> Block:
    vec = args[0]
    assert isinstance(vec, VectorBlock)
    dst, sep = _string_arg(args[1]), _string_arg(args[2])
    srcs = [_string_arg(a) for a in args[3:]]
    if not _LABEL_NAME.match(dst):
        raise PromQLError("execution", f"invalid destination label name in label_join(): {dst}")
    for src in srcs:
        if not _LABEL_NAME.match(src):
            raise PromQLError("execution", f"invalid source label name in label_join(): {src}")
    cols = []
    for c in vec.cols:
        budget.tick()
        value = sep.join(c.labels.get(s, "") for s in srcs)
        labels = {k: v for k, v in c.labels.items() if k != dst}
        if value:
            labels[dst] = value
        cols.append(Col(labels, c.values, c.mask))
    return finish(cols)


def _date_part(name: str) -> Function:
    def apply(node: Any, args: list[Block], ts: IntArray) -> Block:
        # Without an argument the functions read vector(time()).
        vec = args[0] if args else VectorBlock([Col({}, np.trunc(ts / 1000), np.ones(len(ts), dtype=bool))])
        assert isinstance(vec, VectorBlock)
        return finish([Col(drop_name(c.labels), date_part(name, c.values), c.mask) for c in vec.cols])

    return apply


def _sgn(v: np.ndarray) -> np.ndarray:
    return np.sign(v)


_MATH: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "abs": np.abs,
    "ceil": np.ceil,
    "floor": np.floor,
    "exp": np.exp,
    "ln": np.log,
    "log2": np.log2,
    "log10": np.log10,
    "sqrt": np.sqrt,
    "sgn": _sgn,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "asin": np.arcsin,
    "acos": np.arccos,
    "atan": np.arctan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "asinh": np.arcsinh,
    "acosh": np.arccosh,
    "atanh": np.arctanh,
    "deg": lambda v: v * 180 / math.pi,  # Go's formulas; np.degrees rounds differently
    "rad": lambda v: v * math.pi / 180,
}

FUNCTIONS: dict[str, Function] = {
    **{name: _math(op) for name, op in _MATH.items()},
    **{name: _date_part(name) for name in DATE_PARTS},
    "round": _round,
    "clamp": _clamp_with(1, 2),
    "clamp_min": _clamp_with(1, None),
    "clamp_max": _clamp_with(None, 1),
    "time": _time,
    "pi": _pi,
    "vector": _vector,
    "scalar": _scalar,
    "timestamp": _timestamp,
    "sort": _sort_with(descending=False),
    "sort_desc": _sort_with(descending=True),
    "absent": _absent,
    "absent_over_time": _absent_over_time,
    "label_replace": _label_replace,
    "label_join": _label_join,
    "histogram_quantile": histogram.histogram_quantile,
}
