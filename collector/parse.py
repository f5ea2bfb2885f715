"""Exposition text → flat samples, on prometheus-client's own parsers.

Two modes (STYLE 7.6): strict OpenMetrics (``prometheus_client.openmetrics.parser``) when a
target answers ``application/openmetrics-text`` and for the conformance suite; lenient
Prometheus text (``prometheus_client.parser``) otherwise, because the guide's own example
(SEED-SPEC §2) is not valid OpenMetrics: its HELP/TYPE name differs from the sample name, a
``_total`` series is typed gauge, timestamps are milliseconds, and there is no ``# EOF``.

Bad input raises ``ParseError`` naming the line. NaN and ±Inf values pass through as floats.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TextIO, cast

from prometheus_client import parser as text_parser
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import parser as om_parser
from prometheus_client.samples import Timestamp

OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text"
_COUNTER_TYPE_LINE = re.compile(r"^\s*#\s+TYPE\s+(\S+)\s+counter\s*$")


class ParseError(ValueError):
    """The exposition cannot be parsed; ``line`` is 1-based when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


@dataclass(frozen=True, slots=True)
class ParsedSample:
    """One exposed sample: sample name, labels without ``__name__``, value, own timestamp in ms."""

    name: str
    labels: dict[str, str]
    value: float
    ts_ms: int | None
    family: str
    type: str


class _Lines:
    """Feeds a parser line by line and remembers where it was, for error messages."""

    def __init__(self, text: str) -> None:
        self._lines = io.StringIO(text)
        self.number = 0
        self.text = ""

    def __iter__(self) -> Iterator[str]:
        for line in self._lines:
            self.number += 1
            self.text = line.rstrip("\n")
            yield line


def is_openmetrics(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() == OPENMETRICS_CONTENT_TYPE


def _ts_ms(timestamp: object) -> int | None:
    """Milliseconds: OpenMetrics gives seconds (a Timestamp or a float), the text parser ms / 1000."""
    if timestamp is None:
        return None
    if isinstance(timestamp, Timestamp):
        return timestamp.sec * 1000 + timestamp.nsec // 1_000_000
    return round(float(timestamp) * 1000)  # type: ignore[arg-type]


def _declared_counters(text: str) -> set[str]:
    """Names declared ``# TYPE <name> counter``: the text parser renames their samples to <name>_total."""
    return {m.group(1) for line in text.splitlines() if (m := _COUNTER_TYPE_LINE.match(line))}


def _flatten(families: Iterable[Metric], *, strict: bool, counters: set[str]) -> list[ParsedSample]:
    out: list[ParsedSample] = []
    for family in families:
        for s in family.samples:
            if s.value is None or getattr(s, "native_histogram", None) is not None:
                continue  # native histograms have no flat value; Prometheus 2.42 text has none
            name = s.name
            if (
                not strict
                and family.type == "counter"
                and family.name in counters
                and name == family.name + "_total"
            ):
                name = family.name  # undo prometheus_client's renaming; Prometheus keeps the exposed name
            out.append(
                ParsedSample(
                    name,
                    dict(s.labels),
                    float(s.value),
                    _ts_ms(s.timestamp),
                    family.name,
                    family.type,
                )
            )
    return out


def parse_text(text: str, *, strict: bool) -> list[ParsedSample]:
    """Parse an exposition: strict OpenMetrics, or lenient Prometheus text (ms timestamps)."""
    lines = _Lines(text)
    try:
        if strict:
            families = list(om_parser.text_fd_to_metric_families(lines))  # type: ignore[no-untyped-call]
            return _flatten(families, strict=True, counters=set())
        families = list(text_parser.text_fd_to_metric_families(cast(TextIO, lines)))
        return _flatten(families, strict=False, counters=_declared_counters(text))
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        detail = str(exc) or type(exc).__name__
        where = f" in {lines.text[:200]!r}" if lines.text and lines.text not in detail else ""
        raise ParseError(f"{detail}{where}", lines.number or None) from exc


def parse_body(body: bytes, content_type: str) -> list[ParsedSample]:
    """Parse a scrape response, choosing the mode from its Content-Type."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(f"body is not UTF-8: {exc}") from exc
    return parse_text(text, strict=is_openmetrics(content_type))
