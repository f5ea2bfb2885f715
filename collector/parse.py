"""Exposition text → flat samples, on prometheus-client's own parsers.

Two modes (STYLE 7.6): strict OpenMetrics (``prometheus_client.openmetrics.parser``) when a
target answers ``application/openmetrics-text`` and for the conformance suite; lenient
Prometheus text (``prometheus_client.parser``) otherwise, because the guide's own example
(SEED-SPEC §2) is not valid OpenMetrics: its HELP/TYPE name differs from the sample name, a
``_total`` series is typed gauge, timestamps are milliseconds, and there is no ``# EOF``.

Bad input raises ``ParseError`` naming the line, whatever went wrong inside the library: any
exception out of the parsers (an ``OverflowError`` for a 400-digit integer, a ``RecursionError``,
a bug) is a ParseError, so no body can take a scrape down with something unexpected. As in
Prometheus, one bad line fails the whole scrape: a partly read exposition would make series
flicker and rates jump. NaN and ±Inf values pass through as floats; a value beyond float64
(``1`` followed by 400 digits; Prometheus' ParseFloat refuses it too) and a timestamp that is not
finite are parse errors; a finite timestamp beyond int64 milliseconds is clamped to that range
(the store's type; its time limits then drop the sample).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TextIO, cast

from prometheus_client import parser as text_parser
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import parser as om_parser
from prometheus_client.samples import Timestamp

from model.metadata import FamilyMetadata

OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text"
# Prometheus stores timestamps as int64 milliseconds; so does the store (``ts_ms Int64``).
MAX_TS_MS = 2**63 - 1
MIN_TS_MS = -(2**63)
MAX_DETAIL_CHARS = 300  # the library quotes whole lines; a 32 KB line does not belong in a log
_COUNTER_TYPE_LINE = re.compile(r"^\s*#\s+TYPE\s+(\S+)\s+counter\s*$")


class _BadSample(ValueError):
    """A sample the parser read but whose value or timestamp cannot be stored; names the sample."""


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


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _ts_ms(timestamp: object, name: str = "") -> int | None:
    """Milliseconds: OpenMetrics gives seconds (a Timestamp or a float), the text parser ms / 1000.

    Refuses (``_BadSample``) a timestamp that is not finite; one beyond int64 milliseconds is
    clamped to the int64 range.
    """
    if timestamp is None:
        return None
    if isinstance(timestamp, Timestamp):
        ms = timestamp.sec * 1000 + timestamp.nsec // 1_000_000
    else:
        seconds = float(timestamp)  # type: ignore[arg-type]
        if not math.isfinite(seconds):
            raise _BadSample(f"timestamp {_short(timestamp)} of {name[:100]!r} is not a finite number")
        ms = round(seconds * 1000)
    # OpenMetrics allows any float (its conformance suite has 12345678901234567890.1 s): keep the
    # int64 type the store needs and let the store's time limits judge a sample that far away
    return min(max(ms, MIN_TS_MS), MAX_TS_MS)


def _value(value: object, name: str) -> float:
    """The sample value as a float; an integer beyond float64 (OverflowError) is refused."""
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError as exc:
        raise _BadSample(f"value of {name[:100]!r} is out of the float64 range") from exc


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
                    _value(s.value, name),
                    _ts_ms(s.timestamp, name),
                    family.name,
                    family.type,
                )
            )
    return out


@dataclass(frozen=True, slots=True)
class Parsed:
    """An exposition read: its samples, and the metadata its TYPE/HELP/UNIT lines declare."""

    samples: list[ParsedSample]
    families: list[FamilyMetadata]


def _metadata(families: Iterable[Metric], *, strict: bool, counters: set[str]) -> list[FamilyMetadata]:
    """Metadata keyed as Prometheus keys it: by the name in the TYPE/HELP line.

    A family with none of those lines (a bare sample) has no metadata, as in Prometheus' scrape
    cache. The text parser names a counter declared ``foo_total`` ``foo``; the declared name is
    restored. A name declared twice keeps its last declaration.
    """
    found: dict[str, FamilyMetadata] = {}
    for family in families:
        doc = family.documentation or ""
        unit = getattr(family, "unit", "") or ""
        if not doc and not unit and family.type in ("untyped", "unknown"):
            continue
        name = family.name
        if not strict and family.type == "counter" and name not in counters:
            name += "_total"
        found[name] = FamilyMetadata.bounded(name, family.type, doc, unit)
    return list(found.values())


def parse_exposition(text: str, *, strict: bool) -> Parsed:
    """Parse an exposition (strict OpenMetrics, or lenient Prometheus text with ms timestamps):
    its samples and its families' metadata."""
    lines = _Lines(text)
    try:
        if strict:
            families = list(om_parser.text_fd_to_metric_families(lines))  # type: ignore[no-untyped-call]
            counters: set[str] = set()
        else:
            families = list(text_parser.text_fd_to_metric_families(cast(TextIO, lines)))
            counters = _declared_counters(text)
        return Parsed(
            _flatten(families, strict=strict, counters=counters),
            _metadata(families, strict=strict, counters=counters),
        )
    except _BadSample as exc:
        raise ParseError(str(exc)) from exc  # found after reading every line: no line number
    except Exception as exc:  # any failure inside the library is the body's fault: one reason, parse
        detail = (str(exc) or type(exc).__name__)[:MAX_DETAIL_CHARS]
        where = f" in {lines.text[:200]!r}" if lines.text and lines.text not in detail else ""
        raise ParseError(f"{detail}{where}", lines.number or None) from exc


def parse_text(text: str, *, strict: bool) -> list[ParsedSample]:
    """The samples of an exposition (see :func:`parse_exposition`)."""
    return parse_exposition(text, strict=strict).samples


def parse_scrape(body: bytes, content_type: str) -> Parsed:
    """Parse a scrape response, choosing the mode from its Content-Type."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ParseError(f"body is not UTF-8: {exc}") from exc
    return parse_exposition(text, strict=is_openmetrics(content_type))


def parse_body(body: bytes, content_type: str) -> list[ParsedSample]:
    """The samples of a scrape response (see :func:`parse_scrape`)."""
    return parse_scrape(body, content_type).samples
