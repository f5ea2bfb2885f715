"""Query results (scalar, string, vector, matrix) and their Prometheus HTTP API JSON form."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import orjson


class Sample(NamedTuple):
    """One element of an instant vector: labels (``__name__`` included when kept) and value."""

    labels: dict[str, str]
    value: float


@dataclass(frozen=True, slots=True)
class Scalar:
    ts_ms: int
    value: float


@dataclass(frozen=True, slots=True)
class String:
    ts_ms: int
    value: str


@dataclass(frozen=True, slots=True)
class Vector:
    """An instant vector at ``ts_ms``; order is evaluation order (it matters for sort/topk)."""

    ts_ms: int
    samples: list[Sample] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class MatrixSeries:
    """One series of a range answer. ``points_json``, when set, is its points as the API writes them,
    ``[t,"v"],[t,"v"]`` without the brackets around (``render_points``): kept by the range cache
    so a refresh does not format the same settled points again."""

    labels: dict[str, str]
    ts_ms: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    points_json: bytes | None = None


@dataclass(frozen=True, slots=True)
class Matrix:
    series: list[MatrixSeries] = field(default_factory=list)


Value = Scalar | String | Vector | Matrix


def format_float(value: float) -> str:
    """Go's ``strconv.FormatFloat(v, 'f', -1, 64)``: shortest round-trip digits, never an exponent."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    text = repr(float(value))
    if "e" not in text:  # Python's shortest digits, without an exponent: Go's but for a trailing ".0"
        return text[:-2] if text.endswith(".0") else text
    text = format(Decimal(text), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _shortest(values: list[float] | list[int]) -> list[str] | None:
    """Each number's shortest round-trip digits, by orjson (Ryu), at about a quarter of ``repr``'s
    cost; None where orjson wrote an exponent (``format_float`` never does)."""
    data = orjson.dumps(values)
    return None if b"e" in data else data[1:-1].decode().split(",")


def format_floats(values: npt.NDArray[np.float64]) -> list[str]:
    """``format_float`` of each value, the usual ones in a few array operations: a whole number
    below 1e15 is its integer's digits, and any other finite value from 1e-4 to 1e15 is its
    shortest round-trip digits, which there have no exponent; only the rest go one by one.

    Why: a range answer is mostly this text (a 6-hour dashboard panel is thousands of points),
    and Python's ``repr`` of a float costs about 400 ns. Should orjson ever write an exponent in
    that range, those values take the one-by-one path, so the text is the same either way.
    """
    values = np.asarray(values, np.float64)
    out = np.empty(len(values), object)
    magnitude = np.abs(values)
    small = np.isfinite(values) & (magnitude < 1e15)
    with np.errstate(invalid="ignore"):  # NaN and infinities are left to format_float
        whole = small & (values == np.trunc(values)) & ~((values == 0) & np.signbit(values))
    plain = small & ~whole & (magnitude >= 1e-4)
    if whole.any():
        integers = values[whole].astype(np.int64).tolist()
        out[whole] = _shortest(integers) or list(map(str, integers))
    if plain.any():
        texts = _shortest(values[plain].tolist())
        out[plain] = texts if texts is not None else [format_float(v) for v in values[plain].tolist()]
    rest = np.flatnonzero(~(whole | plain))
    if len(rest):
        out[rest] = [format_float(v) for v in values[rest].tolist()]
    return out.tolist()  # type: ignore[no-any-return]


def format_time(ts_ms: int) -> float | int:
    """API timestamp: seconds as a number, integral when Prometheus would print no fraction."""
    ts_ms = int(ts_ms)
    return ts_ms // 1000 if ts_ms % 1000 == 0 else ts_ms / 1000


def _times(ts_ms: Any) -> list[float | int]:
    """``format_time`` of each timestamp; whole seconds (the usual steps) in one array operation."""
    if len(ts_ms) and not (ts_ms % 1000).any():
        return (ts_ms // 1000).tolist()  # type: ignore[no-any-return]
    return [format_time(t) for t in ts_ms.tolist()]


def _pairs(series: list[MatrixSeries]) -> list[tuple[float | int, str]]:
    """Every point of every series, laid end to end, as ``(time, "value")``, which JSON writes as
    an array, as Prometheus does. All series in one pass: a panel is many series of a few hundred
    points, and per-series array calls cost more than the points themselves."""
    times = _times(np.concatenate([s.ts_ms for s in series]))
    return list(zip(times, format_floats(np.concatenate([s.values for s in series])), strict=True))


def _matrix_json(series: list[MatrixSeries]) -> list[dict[str, Any]]:
    if not series:
        return []
    points = _pairs(series)
    out = []
    at = 0
    for s in series:
        end = at + len(s.ts_ms)
        out.append({"metric": dict(s.labels), "values": points[at:end]})
        at = end
    return out


def render_points(series: list[MatrixSeries]) -> list[tuple[bytes, npt.NDArray[np.int64]]]:
    """Per series, its points as JSON text (``MatrixSeries.points_json``) and where each point starts
    in it, plus one entry past the end (``len(text) + 1``: where a next point would start after a
    comma). So points ``a:b`` are ``text[offsets[a]:offsets[b] - 1]``. All series in one pass, as
    ``to_api_json`` writes them: orjson over ``(time, "value")`` pairs, whose text holds a ``[``
    only where a point starts (times are numbers, values digits, signs, ``NaN`` or ``Inf``)."""
    if not series:
        return []
    if sum(len(s.ts_ms) for s in series) <= _FEW_POINTS:
        return [_render_few(s) for s in series]
    body = orjson.dumps(_pairs(series))[1:-1]
    starts = np.flatnonzero(np.frombuffer(body, np.uint8) == ord("["))
    ends = np.append(starts[1:] - 1, len(body))  # each point's end, before its comma
    out = []
    at = 0
    for s in series:
        n = len(s.ts_ms)
        if n == 0:
            out.append((b"", np.ones(1, np.int64)))
            continue
        first = int(starts[at])
        last_end = int(ends[at + n - 1])
        offsets = np.empty(n + 1, np.int64)
        offsets[:n] = starts[at : at + n] - first
        offsets[n] = last_end - first + 1
        out.append((body[first:last_end], offsets))
        at += n
    return out


# Up to this many points, ``render_points`` writes them one by one: the whole-array path costs some
# thirty numpy calls whatever the size (about 20 µs), about what sixteen points cost one by one, and
# a refresh's newest steps are a few points.
_FEW_POINTS = 16


def _render_few(series: MatrixSeries) -> tuple[bytes, npt.NDArray[np.int64]]:
    """``render_points`` of one series, point by point (the same text and offsets)."""
    if not len(series.ts_ms):
        return b"", np.ones(1, np.int64)
    times = [format_time(t) for t in series.ts_ms.tolist()]
    values = [format_float(v) for v in series.values.tolist()]
    texts = [orjson.dumps(point) for point in zip(times, values, strict=True)]
    offsets = [0]
    for text in texts:
        offsets.append(offsets[-1] + len(text) + 1)
    return b",".join(texts), np.array(offsets, np.int64)


def matrix_data_json(series: list[MatrixSeries]) -> bytes:
    """``orjson.dumps(to_api_json(Matrix(series)))``, the points of a series that carries
    ``points_json`` taken as they are. Raises as orjson does on labels it cannot write."""
    missing = [s for s in series if s.points_json is None]
    rendered = iter(render_points(missing))
    parts = []
    for s in series:
        text = s.points_json if s.points_json is not None else next(rendered)[0]
        parts.append(b'{"metric":' + orjson.dumps(s.labels) + b',"values":[' + text + b"]}")
    return b'{"resultType":"matrix","result":[' + b",".join(parts) + b"]}"


def to_api_json(value: Value) -> dict[str, Any]:
    """The ``data`` member of a Prometheus ``/api/v1/query(_range)`` response."""
    if isinstance(value, Scalar):
        return {"resultType": "scalar", "result": [format_time(value.ts_ms), format_float(value.value)]}
    if isinstance(value, String):
        return {"resultType": "string", "result": [format_time(value.ts_ms), value.value]}
    if isinstance(value, Vector):
        t = format_time(value.ts_ms)
        return {
            "resultType": "vector",
            "result": [
                {"metric": dict(s.labels), "value": [t, format_float(s.value)]} for s in value.samples
            ],
        }
    if isinstance(value, Matrix):
        return {"resultType": "matrix", "result": _matrix_json(value.series)}
    raise TypeError(f"not a PromQL value: {type(value).__name__}")
