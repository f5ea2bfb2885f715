"""Prometheus 2.42's own PromQL test scripts (``promql/testdata/*.test``) run against our engine.

The ``promqltest`` format: ``load <step>`` then series lines in expanding notation (``0+10x100``,
``1x5``, ``_``, ``stale``), ``clear``, and ``eval[_fail|_ordered] instant at <time> <expr>`` followed
by expected samples. As Prometheus' runner: values equal within a relative 1e-6 (NaN equals NaN),
order only checked for ``eval_ordered``, and each passing instant query is re-run as a range query
over ``[t-1m, t+1m]`` step 1m whose middle step must give the same result.

One pytest case per ``eval`` (id ``file:line``). Cases the engine cannot do yet are listed in
``XFAIL`` with a reason each and run as strict xfails — nothing is skipped silently.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from model.durations import parse_duration_ms
from model.series import STALE_NAN
from query.promql.engine import Engine
from query.promql.errors import PromQLError
from query.promql.value import Matrix, Scalar, Vector
from store.memory import MemoryStore

SUITE = Path(__file__).resolve().parents[1] / "testdata" / "promql-2.42"

# "file:line" of an eval -> why the engine does not pass it yet.
XFAIL: dict[str, str] = {}

_EVAL = re.compile(r"^eval(?:_(fail|ordered))?\s+instant\s+(?:at\s+(.+?))?\s+(.+)$")
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')\s*(,)?")
# Hex is not a series value here: in "0x10" the x means repetition, as in Prometheus' lexer.
_NUM = r"(?:[+-]?(?:Inf|NaN|inf|nan|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?))"
_ITEM = re.compile(rf"^({_NUM})(?:([+-](?:Inf|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?))?x(\d+))?$")
_EPSILON = 1e-6
_MIN_NORMAL = 2.2250738585072014e-308
_OMITTED = None


@dataclass
class EvalCase:
    file: str
    line: int
    expr: str
    ts_ms: int
    state: int
    fail: bool = False
    ordered: bool = False
    scalar: float | None = None
    expected: list[tuple[dict[str, str], float]] = field(default_factory=list)


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(
        r"\\(.)", lambda m: {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}.get(m[1], m[1]), body
    )


def _number(text: str) -> float:
    bare = text.lstrip("+-")
    if bare.lower().startswith("0x"):
        value = float(int(bare, 16))
        return -value if text.startswith("-") else value
    return float(text)


def parse_series(line: str) -> tuple[dict[str, str], list[float | None]]:
    """A series description: ``name{a="b"} 1+2x3 _ stale`` -> labels and values (None = omitted)."""
    labels: dict[str, str] = {}
    pos = 0
    found = _NAME.match(line)
    if found:
        labels["__name__"] = found.group(0)
        pos = found.end()
    if pos < len(line) and line[pos] == "{":
        pos += 1
        while True:
            while pos < len(line) and line[pos] == " ":
                pos += 1
            if line[pos] == "}":
                pos += 1
                break
            pair = _LABEL.match(line, pos)
            if not pair:
                raise ValueError(f"bad series description: {line!r}")
            labels[pair.group(1)] = _unquote(pair.group(2))
            pos = pair.end()
    values: list[float | None] = []
    for item in line[pos:].split():
        values.extend(_expand(item))
    return labels, values


def _expand(item: str) -> list[float | None]:
    if item == "_":
        return [_OMITTED]
    if item.startswith("_x"):
        return [_OMITTED] * int(item[2:])
    if item == "stale":
        return [STALE_NAN]
    found = _ITEM.match(item)
    if not found:
        raise ValueError(f"bad series value {item!r}")
    start = _number(found.group(1))
    if found.group(3) is None:
        return [start]
    step = _number(found.group(2)) if found.group(2) else 0.0
    out: list[float | None] = []
    value = start
    for _ in range(int(found.group(3)) + 1):
        out.append(value)
        value += step
    return out


def parse_script(path: Path) -> tuple[list[list[tuple[dict[str, str], int, float]]], list[EvalCase]]:
    """The script's store states (cumulative points after each load/clear) and its eval cases."""
    lines = [("" if raw.strip().startswith("#") else raw.strip()) for raw in path.read_text().split("\n")]
    states: list[list[tuple[dict[str, str], int, float]]] = [[]]
    cases: list[EvalCase] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line:
            i += 1
            continue
        word = line.split()[0].lower()
        if word == "clear":
            states.append([])
        elif word == "load":
            gap = parse_duration_ms(line.split(None, 1)[1].strip())
            points = list(states[-1])
            while i + 1 < len(lines) and lines[i + 1]:
                i += 1
                labels, values = parse_series(lines[i])
                for n, v in enumerate(values):
                    if v is not None:
                        points.append((labels, n * gap, v))
            states.append(points)
        elif word.startswith("eval"):
            found = _EVAL.match(line)
            if not found:
                raise ValueError(f"{path.name}:{i + 1}: bad eval line")
            case = EvalCase(
                path.name,
                i + 1,
                found.group(3),
                parse_duration_ms(found.group(2)),
                len(states) - 1,
                fail=found.group(1) == "fail",
                ordered=found.group(1) == "ordered",
            )
            while i + 1 < len(lines) and lines[i + 1]:
                i += 1
                try:
                    case.scalar = _number(lines[i])
                    break
                except ValueError:
                    pass
                labels, values = parse_series(lines[i])
                labels = {k: v for k, v in labels.items() if v != ""}
                case.expected.append((labels, values[0]))  # type: ignore[arg-type]
            cases.append(case)
        else:
            raise ValueError(f"{path.name}:{i + 1}: unknown command {line!r}")
        i += 1
    return states, cases


def almost_equal(a: float, b: float) -> bool:
    """Prometheus' test comparison: NaN equals NaN, otherwise relative error below 1e-6."""
    if math.isnan(a) and math.isnan(b):
        return True
    if a == b:
        return True
    diff = abs(a - b)
    if a == 0 or b == 0 or diff < _MIN_NORMAL:
        return diff < _EPSILON * _MIN_NORMAL
    return diff / (abs(a) + abs(b)) < _EPSILON


def _key(labels: dict[str, str]) -> tuple:
    return tuple(sorted((k, v) for k, v in labels.items() if v != ""))


def compare(case: EvalCase, result: object) -> None:
    """Raise AssertionError describing the first difference, as Prometheus' compareResult."""
    if isinstance(result, Matrix):
        raise AssertionError("received range result on instant evaluation")
    if isinstance(result, Scalar):
        assert case.scalar is not None, f"got scalar {result.value}, expected a vector"
        assert almost_equal(case.scalar, result.value), (
            f"expected scalar {case.scalar} but got {result.value}"
        )
        return
    assert isinstance(result, Vector), f"unexpected result type {type(result).__name__}"
    expected = {_key(labels): (pos, value) for pos, (labels, value) in enumerate(case.expected)}
    seen = set()
    for pos, sample in enumerate(result.samples):
        key = _key(sample.labels)
        assert key in expected, f"unexpected metric {sample.labels} in result"
        exp_pos, exp_value = expected[key]
        if case.ordered:
            assert exp_pos == pos, f"expected {sample.labels} at position {exp_pos} but was at {pos}"
        assert almost_equal(exp_value, sample.value), (
            f"expected {exp_value} for {sample.labels} but got {sample.value}"
        )
        seen.add(key)
    missing = [dict(k) for k in expected if k not in seen]
    assert not missing, f"expected metrics not found: {missing}; got {[s.labels for s in result.samples]}"


def _middle_step(case: EvalCase, matrix: Matrix, instant: object) -> object:
    if isinstance(instant, Scalar):
        values = [
            float(s.values[list(s.ts_ms).index(case.ts_ms)]) for s in matrix.series if case.ts_ms in s.ts_ms
        ]
        return Scalar(case.ts_ms, values[0] if values else math.nan)
    samples = []
    for s in matrix.series:
        hits = [i for i, t in enumerate(s.ts_ms.tolist()) if t == case.ts_ms]
        if hits:
            samples.append((s.labels, float(s.values[hits[0]])))
    from query.promql.value import Sample

    return Vector(case.ts_ms, [Sample(labels, value) for labels, value in samples])


_STORES: dict[tuple[str, int], MemoryStore] = {}
_SCRIPTS = {path.name: parse_script(path) for path in sorted(SUITE.glob("*.test"))} if SUITE.is_dir() else {}
CASES = [case for _, (_, cases) in _SCRIPTS.items() for case in cases]


def _store_for(case: EvalCase) -> MemoryStore:
    key = (case.file, case.state)
    store = _STORES.get(key)
    if store is None:
        store = MemoryStore()
        for labels, ts_ms, value in _SCRIPTS[case.file][0][case.state]:
            store.append(labels, ts_ms, value)
        _STORES[key] = store
    return store


def _params() -> list:
    out = []
    for case in CASES:
        case_id = f"{case.file}:{case.line}"
        marks = [pytest.mark.xfail(strict=True, reason=XFAIL[case_id])] if case_id in XFAIL else []
        out.append(pytest.param(case, id=case_id, marks=marks))
    return out


def test_suite_is_present() -> None:
    assert SUITE.is_dir(), f"conformance suite not found at {SUITE}; is tests/testdata missing?"
    assert len(CASES) > 500


@pytest.mark.parametrize("case", _params())
def test_promql_case(case: EvalCase) -> None:
    engine = Engine(_store_for(case), max_samples=50_000_000, timeout_s=100)
    if case.fail:
        with pytest.raises(PromQLError):
            engine.instant(case.expr, case.ts_ms)
        return
    result = engine.instant(case.expr, case.ts_ms)
    compare(case, result)
    if case.ordered:
        return
    matrix = engine.range(case.expr, case.ts_ms - 60_000, case.ts_ms + 60_000, 60_000)
    compare(case, _middle_step(case, matrix, result))
