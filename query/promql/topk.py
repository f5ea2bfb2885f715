"""``topk``/``bottomk`` selecting exactly what Prometheus 2.42 selects, ties included.

Prometheus keeps a Go ``container/heap`` per group and feeds it the group's samples in input order;
which of several equal values survives depends on that heap's layout, so at steps where the
choice is ambiguous (ties at the cut, NaNs) the heap is replayed here. Elsewhere the selection is
a plain sort. An instant query's output order is the heap sorted by ``sort.Sort(sort.Reverse(…))``.
"""

from __future__ import annotations

import math

import numpy as np

from query.promql import budget
from query.promql.blocks import Col, FloatArray, VectorBlock, stack_rows
from query.promql.errors import PromQLError
from query.promql.value import format_float


def _less(a: float, b: float, largest: bool) -> bool:
    """``vectorByValueHeap.Less`` (topk) or ``vectorByReverseValueHeap.Less`` (bottomk)."""
    if math.isnan(a):
        return True
    return a < b if largest else a > b


def _up(heap: list[int], vals: list[float], j: int, largest: bool) -> None:
    while j > 0:
        i = (j - 1) // 2
        if not _less(vals[heap[j]], vals[heap[i]], largest):
            break
        heap[i], heap[j] = heap[j], heap[i]
        j = i


def _down(heap: list[int], vals: list[float], i: int, n: int, largest: bool) -> None:
    while True:
        j = 2 * i + 1
        if j >= n:
            break
        if j + 1 < n and _less(vals[heap[j + 1]], vals[heap[j]], largest):
            j += 1
        if not _less(vals[heap[j]], vals[heap[i]], largest):
            break
        heap[i], heap[j] = heap[j], heap[i]
        i = j


def go_heap_select(vals: list[float], k: int, largest: bool) -> list[int]:
    """Indices into ``vals`` left in Prometheus' heap after feeding all values in order."""
    heap: list[int] = []
    for idx, v in enumerate(vals):
        if not heap:
            heap.append(idx)
            continue
        top = vals[heap[0]]
        replace = (top < v) if largest else (top > v)
        if len(heap) < k or replace or math.isnan(top):
            if len(heap) == k:
                if k == 1:
                    heap[0] = idx
                    continue
                last = len(heap) - 1
                heap[0], heap[last] = heap[last], heap[0]
                _down(heap, vals, 0, last, largest)
                heap.pop()
            heap.append(idx)
            _up(heap, vals, len(heap) - 1, largest)
    return heap


def go_output_order(heap: list[int], vals: list[float], largest: bool) -> list[int]:
    """``sort.Sort(sort.Reverse(heap))``: Go sorts up to 12 elements by insertion sort."""
    out = list(heap)
    if len(out) <= 12:
        for i in range(1, len(out)):
            j = i
            while j > 0 and _less(vals[out[j - 1]], vals[out[j]], largest):
                out[j], out[j - 1] = out[j - 1], out[j]
                j -= 1
        return out

    def key(idx: int) -> tuple[int, float]:
        v = vals[idx]
        return (1, 0.0) if math.isnan(v) else (0, -v if largest else v)

    return sorted(out, key=key)


def _unambiguous(col_vals: FloatArray, k: int, largest: bool) -> np.ndarray | None:
    """Rows chosen by a plain sort, or None when ties at the cut or NaNs make the heap matter."""
    if np.isnan(col_vals).any():
        return None
    order = np.argsort(-col_vals if largest else col_vals, kind="stable")
    if k < len(order) and col_vals[order[k - 1]] == col_vals[order[k]]:
        return None
    return order[:k]


def top(groups: dict, k_values: FloatArray, n: int, largest: bool) -> VectorBlock:
    """topk/bottomk over ``groups`` (label set -> member columns); members keep their labels."""
    bad = ~((k_values >= -(2.0**63)) & (k_values < 2.0**63))
    if bad.any():
        first_bad = format_float(float(k_values[bad][0]))
        raise PromQLError("execution", f"Scalar value {first_bad} overflows int64")
    out: list[Col] = []
    for _, members in groups.values():
        values = stack_rows([c.values for c in members])
        masks = stack_rows([c.mask for c in members])
        chosen = np.zeros_like(masks)
        order: list[int] = []
        for i in range(n):
            budget.tick()
            if not k_values[i] >= 1:
                continue
            rows = np.flatnonzero(masks[:, i])
            if not len(rows):
                continue
            k = int(min(k_values[i], len(rows)))
            col_vals = values[rows, i]
            picked = _unambiguous(col_vals, k, largest) if n > 1 else None
            if picked is None:
                vals = col_vals.tolist()
                heap = go_heap_select(vals, k, largest)
                picked = np.array(heap, dtype=np.int64)
                if n == 1:
                    order = [int(rows[j]) for j in go_output_order(heap, vals, largest)]
            chosen[rows[picked], i] = True
        rows_out = order if n == 1 else [j for j in range(len(members)) if chosen[j].any()]
        out.extend(Col(members[j].labels, members[j].values, chosen[j]) for j in rows_out)
    return VectorBlock(out)
