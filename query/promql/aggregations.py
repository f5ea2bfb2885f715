"""Aggregation operators (sum, avg, topk, quantile, count_values, …) with ``by``/``without``.

Groups are formed once from the columns' labels; each operator then folds the members of a group
step-wise with numpy, in input order, following Prometheus 2.42's arithmetic (running mean for
avg, Welford for stddev/stdvar, NaN-skipping min/max).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import promql_parser as pp

from model.labels import METRIC_NAME
from query.promql import budget
from query.promql.blocks import Block, Col, FloatArray, ScalarBlock, StringBlock, VectorBlock, label_key
from query.promql.errors import PromQLError
from query.promql.range_functions import quantile
from query.promql.topk import top
from query.promql.value import format_float

Members = list[Col]
Folder = Callable[[Members, int], tuple[FloatArray, np.ndarray]]
_LABEL_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789")


def _group_labels(labels: dict[str, str], modifier: Any) -> dict[str, str]:
    if modifier is None:
        return {}
    names = set(modifier.labels)
    if modifier.type == pp.AggModifierType.By:
        return {k: v for k, v in labels.items() if k in names}
    return {k: v for k, v in labels.items() if k not in names and k != METRIC_NAME}


def _sum(members: Members, n: int) -> tuple[FloatArray, np.ndarray]:
    total = np.zeros(n)
    present = np.zeros(n, dtype=bool)
    for c in members:
        total = np.where(c.mask, total + c.values, total)
        present |= c.mask
    return total, present


def _count(members: Members, n: int) -> tuple[FloatArray, np.ndarray]:
    count = np.zeros(n)
    for c in members:
        count += c.mask
    return count, count > 0


def _group(members: Members, n: int) -> tuple[FloatArray, np.ndarray]:
    _, present = _count(members, n)
    return np.ones(n), present


def _alone(member: Col) -> tuple[FloatArray, np.ndarray]:
    """What ``avg``, ``min`` and ``max`` fold a group of one member to (``by (pod)``), without the
    fold's array operations per member: its own values where present."""
    return np.where(member.mask, member.values, 0.0), member.mask.copy()


def _avg(members: Members, n: int) -> tuple[FloatArray, np.ndarray]:
    if len(members) == 1:
        return _alone(members[0])
    mean = np.zeros(n)
    count = np.zeros(n)
    for c in members:
        v = c.values
        first = c.mask & (count == 0)
        count = count + c.mask
        inf_mean = np.isinf(mean)
        keep = inf_mean & ((np.isinf(v) & ((mean > 0) == (v > 0))) | (~np.isinf(v) & ~np.isnan(v)))
        updated = mean + (v / np.maximum(count, 1) - mean / np.maximum(count, 1))
        mean = np.where(first, v, np.where(c.mask & ~keep, updated, mean))
    return mean, count > 0


def _extreme(better: Callable[[FloatArray, FloatArray], np.ndarray]) -> Folder:
    def fold(members: Members, n: int) -> tuple[FloatArray, np.ndarray]:
        if len(members) == 1:
            return _alone(members[0])
        out = np.zeros(n)
        present = np.zeros(n, dtype=bool)
        for c in members:
            take = c.mask & (~present | better(out, c.values) | np.isnan(out))
            out = np.where(take, c.values, out)
            present |= c.mask
        return out, present

    return fold


def _variance(members: Members, n: int) -> tuple[FloatArray, np.ndarray]:
    count = np.zeros(n)
    mean = np.zeros(n)
    aux = np.zeros(n)
    for c in members:
        first = c.mask & (count == 0)
        count = count + c.mask
        delta = c.values - mean
        new_mean = mean + delta / np.maximum(count, 1)
        new_aux = aux + delta * (c.values - new_mean)
        mean = np.where(first, c.values, np.where(c.mask, new_mean, mean))
        aux = np.where(first, 0.0, np.where(c.mask, new_aux, aux))
    return aux / np.maximum(count, 1), count > 0


def _stddev(members: Members, n: int) -> tuple[FloatArray, np.ndarray]:
    var, present = _variance(members, n)
    return np.sqrt(var), present


FOLDERS: dict[str, Folder] = {
    "sum": _sum,
    "count": _count,
    "group": _group,
    "avg": _avg,
    "min": _extreme(lambda cur, v: cur > v),
    "max": _extreme(lambda cur, v: cur < v),
    "stdvar": _variance,
    "stddev": _stddev,
}


def evaluate(node: Any, vec: VectorBlock, param: Block | None) -> VectorBlock:
    op = str(node.op)
    if op not in FOLDERS and op not in ("count_values", "topk", "bottomk", "quantile"):
        # The parser knows later additions (limitk, limit_ratio); Prometheus 2.42 rejects them.
        raise PromQLError("bad_data", f"parse error: unknown aggregation operator {op!r}")
    n = len(vec.cols[0].mask) if vec.cols else 0
    if op == "count_values":
        assert isinstance(param, StringBlock)
        return _count_values(node, vec, param.value, n)
    groups: dict[tuple, tuple[dict[str, str], Members]] = {}
    for c in vec.cols:
        budget.tick()
        labels = _group_labels(c.labels, node.modifier)
        key = label_key(labels)
        if key not in groups:
            groups[key] = (labels, [])
        groups[key][1].append(c)
    with np.errstate(all="ignore"):
        if op in ("topk", "bottomk"):
            assert isinstance(param, ScalarBlock)
            return top(groups, param.values, n, op == "topk")
        cols = []
        for labels, members in groups.values():
            budget.tick()
            if op == "quantile":
                assert isinstance(param, ScalarBlock)
                values, present = _quantile(members, param.values, n)
            else:
                values, present = FOLDERS[op](members, n)
            cols.append(Col(labels, values, present))
    return VectorBlock(cols)


def _quantile(members: Members, phi: FloatArray, n: int) -> tuple[FloatArray, np.ndarray]:
    values = np.stack([c.values for c in members])
    masks = np.stack([c.mask for c in members])
    present = np.asarray(masks.any(axis=0))
    out = np.zeros(n)
    for i in np.flatnonzero(present).tolist():
        budget.tick()
        out[i] = quantile(float(phi[i]), values[masks[:, i], i].tolist())
    return out, present


def _count_values(node: Any, vec: VectorBlock, label: str, n: int) -> VectorBlock:
    if not label or label[0].isdigit() or not set(label) <= _LABEL_NAME_CHARS:
        raise PromQLError("execution", f"invalid label name {label!r}")
    counts: dict[tuple, tuple[dict[str, str], np.ndarray]] = {}
    for c in vec.cols:
        base = _group_labels(c.labels, node.modifier)
        for i in np.flatnonzero(c.mask).tolist():
            budget.tick()
            labels = {**base, label: format_float(float(c.values[i]))}
            key = label_key(labels)
            if key not in counts:
                budget.reserve(n)  # each distinct value is a new column over every step
                counts[key] = (labels, np.zeros(n))
            counts[key][1][i] += 1
    return VectorBlock([Col(labels, cnt, cnt > 0) for labels, cnt in counts.values()])
