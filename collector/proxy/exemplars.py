"""Exemplars: for each histogram bucket, one request that landed there, so a slow bucket links to it.

An exemplar (OpenMetrics, Prometheus' ``query_exemplars``) is a value with a timestamp and a few
labels naming where it came from. The proxy's are ``request_id`` and, when the client sent a W3C
``traceparent``, ``trace_id`` (the header itself goes upstream unchanged, so the engine's spans join
the same trace). Grafana links an exemplar's ``trace_id`` to a tracing data source, and shows the
``request_id`` to look the request up in the client's or the engine's logs.

The request id is, in order: the client's ``x-request-id``; the engine's ``x-request-id`` answer
header (vLLM, SGLang); the ``id`` of the answer's JSON (``chatcmpl-…``, what the ``openai`` client
returns as ``completion.id``); else one the proxy makes up, unique per request.

Bounded: ``ExemplarReservoir`` keeps, per histogram bucket, the most recent exemplar since it was
last drained — at most one per bucket per flush, whatever the request rate (Prometheus' client
libraries keep one per bucket the same way).
"""

from __future__ import annotations

import bisect
import math
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client.utils import floatToGoString

from model.labels import METRIC_NAME, Labels, to_labels

REQUEST_ID = "request_id"
TRACE_ID = "trace_id"
MAX_ID_CHARS = 64  # OpenMetrics bounds an exemplar's label names and values to 128 characters in all
_ID = re.compile(rb"[\x21-\x7e]{1,%d}" % MAX_ID_CHARS)
_HEX = re.compile(rb"[0-9a-f]+")


def _hex(part: bytes, size: int) -> bool:
    return len(part) == size and _HEX.fullmatch(part) is not None and part != b"0" * size


def trace_id_of(traceparent: bytes) -> str:
    """The trace id of a W3C ``traceparent`` value (``version-traceid-parentid-flags``); "" where it
    is not a valid one: version ``ff``, an all-zero id, upper-case hex, or version 00 with more fields
    (later versions may append some; the first four keep their meaning)."""
    parts = traceparent.strip(b" \t").split(b"-")
    if len(parts) < 4 or len(parts[0]) != 2 or _HEX.fullmatch(parts[0]) is None or parts[0] == b"ff":
        return ""
    if parts[0] == b"00" and len(parts) != 4:
        return ""
    if not (_hex(parts[1], 32) and _hex(parts[2], 16)) or len(parts[3]) != 2 or not _HEX.fullmatch(parts[3]):
        return ""
    return parts[1].decode()


def request_id_of(value: bytes | str | None) -> str:
    """A request id as given (visible ASCII, up to ``MAX_ID_CHARS``); "" where it is anything else."""
    if value is None:
        return ""
    raw = value.encode("latin-1", "replace") if isinstance(value, str) else value
    return raw.decode() if _ID.fullmatch(raw) else ""


def new_request_id() -> str:
    return secrets.token_hex(8)


def bucket_bound(bounds: Sequence[float], value: float) -> float:
    """The ``le`` of the cumulative bucket ``value`` lands in: the first of the increasing ``bounds``
    at or above it, else ``+Inf``."""
    i = bisect.bisect_left(bounds, value)
    return bounds[i] if i < len(bounds) else math.inf


@dataclass(frozen=True, slots=True)
class Exemplar:
    """One exemplar of one bucket series (``series`` has ``__name__`` ``…_bucket`` and ``le``)."""

    series: Labels
    labels: Labels
    value: float
    ts_ms: int


class ExemplarReservoir:
    """The latest exemplar per (histogram, bucket) since the last ``drain``.

    >>> r = ExemplarReservoir()
    >>> r.offer("x_cost", (10.0, 100.0), 42.0, 1_000, (("request_id", "r1"),))
    >>> [e.series for e in r.drain({"service_id": "s"})][0][-1]
    ('service_id', 's')
    """

    def __init__(self) -> None:
        self._latest: dict[tuple[str, float], tuple[float, int, Labels]] = {}

    def offer(self, metric: str, bounds: tuple[float, ...], value: float, ts_ms: int, labels: Labels) -> None:
        """``value`` was observed in the histogram ``metric`` with bucket ``bounds`` (+Inf implied)."""
        self._latest[(metric, bucket_bound(bounds, value))] = (value, ts_ms, labels)

    def drain(self, identity: dict[str, str]) -> list[Exemplar]:
        """Every kept exemplar, as its bucket series' labels; the reservoir is empty after."""
        latest, self._latest = self._latest, {}
        return [
            Exemplar(
                to_labels({**identity, METRIC_NAME: f"{metric}_bucket", "le": floatToGoString(le)}),  # type: ignore[no-untyped-call]
                labels,
                value,
                ts_ms,
            )
            for (metric, le), (value, ts_ms, labels) in latest.items()
        ]

    def __len__(self) -> int:
        return len(self._latest)


# -- the wire form, sidecar → server (``POST /api/v1/ingest/exemplars``)

MAX_WIRE_EXEMPLARS = 10_000  # in one request
MAX_SERIES_LABELS = 64
MAX_EXEMPLAR_LABEL_CHARS = 128  # OpenMetrics: names and values of an exemplar's labels together
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_MIN_TS_MS, _MAX_TS_MS = 0, 253_402_300_799_999  # up to the year 9999


def exemplars_to_wire(exemplars: list[Exemplar]) -> dict[str, object]:
    return {
        "exemplars": [
            {"series": dict(e.series), "labels": dict(e.labels), "value": e.value, "ts_ms": e.ts_ms}
            for e in exemplars
        ]
    }


def _label_map(value: object, what: str, max_labels: int) -> dict[str, str]:
    if not isinstance(value, dict) or len(value) > max_labels:
        raise ValueError(f"{what}: an object of at most {max_labels} labels expected")
    for name, text in value.items():
        if not _LABEL_NAME.fullmatch(name) or not isinstance(text, str):
            raise ValueError(f"{what}: label {name[:64]!r} is not a label name with a string value")
    return value


def exemplars_from_wire(body: object) -> list[Exemplar]:
    """The exemplars of a wire-form body; ``ValueError`` naming the first thing that is not right."""
    if not isinstance(body, dict) or not isinstance(body.get("exemplars"), list):
        raise ValueError('an object with an "exemplars" list expected')
    items = body["exemplars"]
    if len(items) > MAX_WIRE_EXEMPLARS:
        raise ValueError(f"more than {MAX_WIRE_EXEMPLARS} exemplars in one request")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"exemplar {i}: an object expected")
        series = _label_map(item.get("series"), f"exemplar {i} series", MAX_SERIES_LABELS)
        if not series.get(METRIC_NAME):
            raise ValueError(f"exemplar {i} series: no {METRIC_NAME}")
        labels = _label_map(item.get("labels"), f"exemplar {i} labels", 8)
        if sum(len(k) + len(v) for k, v in labels.items()) > MAX_EXEMPLAR_LABEL_CHARS:
            raise ValueError(f"exemplar {i} labels: more than {MAX_EXEMPLAR_LABEL_CHARS} characters")
        value, ts_ms = item.get("value"), item.get("ts_ms")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"exemplar {i}: value must be a finite number")
        if isinstance(ts_ms, bool) or not isinstance(ts_ms, int) or not _MIN_TS_MS <= ts_ms <= _MAX_TS_MS:
            raise ValueError(f"exemplar {i}: ts_ms must be an integer time in ms")
        out.append(Exemplar(to_labels(series), to_labels(labels), float(value), ts_ms))
    return out
