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
from query.promql.blocks import (
    Block,
    Col,
    FloatArray,
    ScalarBlock,
    StringBlock,
    VectorBlock,
    label_key,
    stack_rows,
)
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


# Members times steps up to which a fold runs on all members at once (an array of each size);
# past it, member by member, so memory stays that of the members.
_AT_ONCE = 1 << 20
# Members few enough that folding them one by one costs less than laying them out together.
_FEW = 4


def _sum(members: Members, n: int) -> tuple[FloatArray, np.ndarray]:
    """The members' values added in member order at each step where they are present.

    A sum's bits depend on its order, so the members are added one after another, never
    pairwise as ``np.sum`` would: a running sum (``add.accumulate``) from zero over the values,
    absent ones as zeros (adding +0.0 leaves a running sum unchanged: it never is -0.0).
    """
    if len(members) <= _FEW or len(members) * n > _AT_ONCE:
        total = np.zeros(n)
        present = np.zeros(n, dtype=bool)
        for c in members:
            total += np.where(c.mask, c.values, 0.0)
            present |= c.mask
        return total, present
    masks = stack_rows([c.mask for c in members])
    terms = np.empty((len(members) + 1, n))
    terms[0] = 0.0
    np.copyto(terms[1:], stack_rows([c.values for c in members]))
    terms[1:][~masks] = 0.0
    return np.add.accumulate(terms, axis=0)[-1], masks.any(axis=0)


def _count(members: Members, n: int) -> tuple[FloatArray, np.ndarray]:
    if len(members) * n > _AT_ONCE:
        count = np.zeros(n)
        for c in members:
            count += c.mask
    else:
        count = stack_rows([c.mask for c in members]).sum(axis=0, dtype=np.float64)
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
    groups = _groups(vec.cols, node.modifier)
    with np.errstate(all="ignore"):
        if op in ("topk", "bottomk"):
            assert isinstance(param, ScalarBlock)
            return top(groups, param.values, n, op == "topk")
        total = sum(len(m) for _, m in groups.values())
        if op in _FOLDED_TOGETHER and len(groups) > 1 and total > _FEW and total * n <= _AT_ONCE:
            folded = _fold_groups(op, [members for _, members in groups.values()], n)
            return VectorBlock(
                [Col(labels, *f) for (labels, _), f in zip(groups.values(), folded, strict=True)]
            )
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


_FOLDED_TOGETHER = ("sum", "count", "group")


def _fold_groups(op: str, groups: list[Members], n: int) -> list[tuple[FloatArray, np.ndarray]]:
    """``sum``, ``count`` or ``group`` of every group at once: a handful of array operations for a
    ``sum by (le)`` of hundreds of members, not several per member.

    Counts are whole numbers, exact in any order: one reduction per group. A sum's bits depend on
    its order, so the members are laid out by rank, ``terms[j]`` the ``j``-th member of every group
    (a group with fewer members has zeros there), after a rank of zeros: a running sum down the
    ranks (``add.accumulate``, one step after another) adds each group's members in member order,
    from zero, as ``_sum`` does. Groups of very different sizes would make that layout mostly
    zeros: then one indexed addition per rank instead, or group by group.
    """
    if not groups:
        return []
    sizes = [len(m) for m in groups]
    widest = max(sizes)
    balanced = widest * len(groups) <= 2 * sum(sizes)  # about as many ranks in every group
    if op == "sum" and not balanced and len(groups) <= widest:
        return [_sum(members, n) for members in groups]
    cols = [c for members in groups for c in members]  # group by group
    firsts = np.cumsum([0, *sizes[:-1]])
    masks = stack_rows([c.mask for c in cols])
    count = np.add.reduceat(masks, firsts, axis=0, dtype=np.float64)
    present = count > 0
    if op != "sum":
        return list(zip(count if op == "count" else np.ones((len(groups), n)), present, strict=True))
    terms = np.where(masks, stack_rows([c.values for c in cols]), 0.0)
    group = np.repeat(np.arange(len(groups)), sizes)
    rank = np.arange(len(cols)) - np.repeat(firsts, sizes)
    if balanced:
        laid = np.zeros((widest + 1, len(groups), n))
        laid[rank + 1, group] = terms
        return list(zip(np.add.accumulate(laid, axis=0)[-1], present, strict=True))
    by_rank = np.argsort(rank, kind="stable")
    ends = np.searchsorted(rank[by_rank], np.arange(1, widest + 1))
    total = np.zeros((len(groups), n))
    begin = 0
    for end in ends.tolist():
        rows = by_rank[begin:end]
        total[group[rows]] += terms[rows]
        begin = end
    return list(zip(total, present, strict=True))


def _groups(cols: list[Col], modifier: Any) -> dict[tuple, tuple[dict[str, str], Members]]:
    """The columns by group (its labels' key: its labels and members), in order of first member.

    Without ``by``/``without`` all columns are one group; with ``by``, a column's key is read
    from the few names given instead of made from all its labels.
    """
    budget.tick()
    if modifier is None:
        return {(): ({}, list(cols))} if cols else {}
    groups: dict[tuple, tuple[dict[str, str], Members]] = {}
    if modifier.type != pp.AggModifierType.By:
        for c in cols:
            budget.tick()
            labels = _group_labels(c.labels, modifier)
            key = label_key(labels)
            if key not in groups:
                groups[key] = (labels, [])
            groups[key][1].append(c)
        return groups
    names = sorted(set(modifier.labels))
    for i, c in enumerate(cols):
        if not i % _TICK_EVERY:
            budget.tick()
        have = c.labels
        if len(names) == 1:  # by (le), by (pod): the usual case, without a generator per column
            value = have.get(names[0], "")
            key: tuple = ((names[0], value),) if value else ()
        else:
            key = tuple([(k, have[k]) for k in names if have.get(k, "")])  # label_key of its labels
        group = groups.get(key)
        if group is None:
            groups[key] = group = (_group_labels(have, modifier), [])
        group[1].append(c)
    return groups


# Columns grouped between two looks at the clock: a microsecond each, so a millisecond apart.
_TICK_EVERY = 1024


def _quantile(members: Members, phi: FloatArray, n: int) -> tuple[FloatArray, np.ndarray]:
    values = stack_rows([c.values for c in members])
    masks = stack_rows([c.mask for c in members])
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
