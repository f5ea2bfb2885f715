"""Binary operators: arithmetic, comparisons (with ``bool``), set operators, vector matching.

Matching signatures are computed once per column; per-step rules of Prometheus (a match group may
not repeat on the "one" side at one step, results may not collide) are checked on the masks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import promql_parser as pp

from model.labels import METRIC_NAME
from query.promql import budget
from query.promql.blocks import (
    Block,
    Col,
    FloatArray,
    ScalarBlock,
    VectorBlock,
    dedupe,
    format_labels,
    label_key,
)
from query.promql.errors import PromQLError

ARITHMETIC: dict[str, Callable[[FloatArray, FloatArray], FloatArray]] = {
    "+": np.add,
    "-": np.subtract,
    "*": np.multiply,
    "/": np.divide,
    "%": np.fmod,
    "^": np.power,
    "atan2": np.arctan2,
}
COMPARISON: dict[str, Callable[[FloatArray, FloatArray], np.ndarray]] = {
    "==": np.equal,
    "!=": np.not_equal,
    ">": np.greater,
    "<": np.less,
    ">=": np.greater_equal,
    "<=": np.less_equal,
}
SET_OPS = ("and", "or", "unless")
# Prometheus drops the metric name for these; not for atan2 and not for comparisons.
NAME_DROPPING = frozenset({"+", "-", "*", "/", "%", "^"})


def _drop_name(labels: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in labels.items() if k != METRIC_NAME}


def evaluate(node: Any, lhs: Block, rhs: Block) -> Block:
    op = str(node.op)
    modifier = node.modifier
    return_bool = bool(modifier and modifier.return_bool)
    with np.errstate(all="ignore"):
        if isinstance(lhs, ScalarBlock) and isinstance(rhs, ScalarBlock):
            if op in COMPARISON:
                return ScalarBlock(COMPARISON[op](lhs.values, rhs.values).astype(np.float64))
            return ScalarBlock(ARITHMETIC[op](lhs.values, rhs.values))
        if isinstance(lhs, VectorBlock) and isinstance(rhs, VectorBlock):
            if op in SET_OPS:
                return _set_op(op, lhs, rhs, modifier)
            return _vector_vector(op, lhs, rhs, modifier, return_bool)
        if isinstance(lhs, VectorBlock):
            assert isinstance(rhs, ScalarBlock)
            return _vector_scalar(op, lhs, rhs.values, return_bool, swap=False)
        assert isinstance(rhs, VectorBlock)
        assert isinstance(lhs, ScalarBlock)
        return _vector_scalar(op, rhs, lhs.values, return_bool, swap=True)


def _vector_scalar(
    op: str, vec: VectorBlock, scalar: FloatArray, return_bool: bool, swap: bool
) -> VectorBlock:
    cols = []
    for c in vec.cols:
        budget.tick()
        left, right = (scalar, c.values) if swap else (c.values, scalar)
        if op in COMPARISON:
            keep = COMPARISON[op](left, right)
            if return_bool:
                cols.append(Col(_drop_name(c.labels), keep.astype(np.float64), c.mask))
            else:
                cols.append(Col(c.labels, c.values, c.mask & keep))
        else:
            labels = _drop_name(c.labels) if op in NAME_DROPPING else c.labels
            cols.append(Col(labels, ARITHMETIC[op](left, right), c.mask))
    return VectorBlock(dedupe(cols))


def _signature(labels: dict[str, str], matching: Any) -> tuple:
    if matching is not None and matching.type == pp.LabelModifierType.Include:
        names = set(matching.labels)
        return label_key({k: v for k, v in labels.items() if k in names})
    ignored = set(matching.labels) if matching is not None else set()
    ignored.add(METRIC_NAME)
    return label_key({k: v for k, v in labels.items() if k not in ignored})


def _presence_by_signature(cols: list[Col], matching: Any) -> dict[tuple, np.ndarray]:
    out: dict[tuple, np.ndarray] = {}
    for c in cols:
        budget.tick()
        sig = _signature(c.labels, matching)
        out[sig] = out[sig] | c.mask if sig in out else c.mask.copy()
    return out


def _set_op(op: str, lhs: VectorBlock, rhs: VectorBlock, modifier: Any) -> VectorBlock:
    matching = modifier.matching if modifier is not None else None
    if op == "or":
        left = _presence_by_signature(lhs.cols, matching)
        cols = [Col(c.labels, c.values, c.mask) for c in lhs.cols]
        for c in rhs.cols:
            budget.tick()
            seen = left.get(_signature(c.labels, matching))
            cols.append(Col(c.labels, c.values, c.mask & ~seen if seen is not None else c.mask))
        # The same label set may come from either side at different steps: one series, as Prometheus.
        return VectorBlock(dedupe(cols))
    right = _presence_by_signature(rhs.cols, matching)
    cols = []
    for c in lhs.cols:
        budget.tick()
        seen = right.get(_signature(c.labels, matching))
        if op == "and":
            mask = c.mask & seen if seen is not None else np.zeros_like(c.mask)
        else:
            mask = c.mask & ~seen if seen is not None else c.mask
        if mask.any():
            cols.append(Col(c.labels, c.values, mask))
    return VectorBlock(cols)


def _result_labels(
    many: dict[str, str], one: dict[str, str], op: str, modifier: Any, one_to_one: bool, return_bool: bool
) -> dict[str, str]:
    labels = dict(many)
    if op in NAME_DROPPING or return_bool:
        labels.pop(METRIC_NAME, None)
    matching = modifier.matching if modifier is not None else None
    if one_to_one and matching is not None:
        names = set(matching.labels)
        if matching.type == pp.LabelModifierType.Include:
            labels = {k: v for k, v in labels.items() if k in names}
        else:
            labels = {k: v for k, v in labels.items() if k not in names}
    if modifier is not None and not one_to_one:
        for name in modifier.group_labels:
            value = one.get(name, "")
            if value:
                labels[name] = value
            else:
                labels.pop(name, None)
    return labels


def _vector_vector(
    op: str, lhs: VectorBlock, rhs: VectorBlock, modifier: Any, return_bool: bool
) -> VectorBlock:
    card = modifier.card if modifier is not None else pp.VectorMatchCardinality.OneToOne
    matching = modifier.matching if modifier is not None else None
    one_to_many = card == pp.VectorMatchCardinality.OneToMany
    one_to_one = card == pp.VectorMatchCardinality.OneToOne
    many, one = (rhs, lhs) if one_to_many else (lhs, rhs)
    one_side = "left" if one_to_many else "right"
    one_groups: dict[tuple, list[Col]] = {}
    for c in one.cols:
        group = one_groups.setdefault(_signature(c.labels, matching), [])
        for other in group:
            budget.tick()
            clash = other.mask & c.mask
            if clash.any():
                matched = _match_labels(c.labels, matching)
                raise PromQLError(
                    "execution",
                    f"found duplicate series for the match group {format_labels(matched)} on the {one_side} "
                    f"hand-side of the operation: [{format_labels(c.labels)}, {format_labels(other.labels)}]"
                    ";many-to-many matching not allowed: matching labels must be unique on one side",
                )
        group.append(c)
    cols: list[Col] = []
    per_sig: dict[tuple, list[tuple[tuple, np.ndarray]]] = {}
    for m in many.cols:
        sig = _signature(m.labels, matching)
        for o in one_groups.get(sig, ()):
            budget.tick()
            both = m.mask & o.mask
            if not both.any():
                continue
            left, right = (o.values, m.values) if one_to_many else (m.values, o.values)
            if op in COMPARISON:
                keep = COMPARISON[op](left, right)
                values = keep.astype(np.float64) if return_bool else left
                mask = both if return_bool else both & keep
            else:
                values, mask = ARITHMETIC[op](left, right), both
            labels = _result_labels(m.labels, o.labels, op, modifier, one_to_one, return_bool)
            _check_unique(per_sig.setdefault(sig, []), label_key(labels), mask, one_to_one)
            budget.reserve(len(mask))  # a match can make more columns than either side had
            cols.append(Col(labels, values, mask))
    return VectorBlock(dedupe(cols))


def _check_unique(
    seen: list[tuple[tuple, np.ndarray]], key: tuple, mask: np.ndarray, one_to_one: bool
) -> None:
    for other_key, other_mask in seen:
        if (other_mask & mask).any() and (one_to_one or other_key == key):
            if one_to_one:
                raise PromQLError(
                    "execution",
                    "multiple matches for labels: many-to-one matching must be explicit "
                    "(group_left/group_right)",
                )
            raise PromQLError(
                "execution", "multiple matches for labels: grouping labels must ensure unique matches"
            )
    seen.append((key, mask))


def _match_labels(labels: dict[str, str], matching: Any) -> dict[str, str]:
    if matching is not None and matching.type == pp.LabelModifierType.Include:
        names = set(matching.labels)
        return {k: v for k, v in labels.items() if k in names}
    ignored = set(matching.labels) if matching is not None else set()
    ignored.add(METRIC_NAME)
    return {k: v for k, v in labels.items() if k not in ignored}
