"""Label sets and label matchers, with Prometheus semantics.

A label set is a plain ``dict[str, str]`` that includes the metric name under ``__name__``;
``Labels`` (a sorted tuple of pairs) is its hashable, canonical form used as a series identity.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Any

import re2

METRIC_NAME = "__name__"

Labels = tuple[tuple[str, str], ...]


def to_labels(mapping: dict[str, str]) -> Labels:
    """Canonical hashable form of a label set: sorted pairs, empty values dropped (as Prometheus)."""
    return tuple(sorted((k, v) for k, v in mapping.items() if v != ""))


class MatchOp(StrEnum):
    EQ = "="
    NE = "!="
    RE = "=~"
    NRE = "!~"


_RE2 = re2.Options()
_RE2.dot_nl = True
_RE2.log_errors = False


@lru_cache(maxsize=4096)
def _compile_anchored(pattern: str) -> Any:
    # Prometheus regex matchers are fully anchored RE2 expressions; RE2 also bounds the time a
    # match takes (linear), where Python's backtracking ``re`` is exponential on ``(a+)+b``.
    return re2.compile(f"^(?:{pattern})$", _RE2)


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label matcher, e.g. ``Matcher("code", MatchOp.RE, "5..")``.

    A missing label matches as the empty string, as in Prometheus.
    """

    name: str
    op: MatchOp
    value: str
    _regex: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.op in (MatchOp.RE, MatchOp.NRE):
            object.__setattr__(self, "_regex", _compile_anchored(self.value))

    def matches(self, value: str) -> bool:
        if self.op is MatchOp.EQ:
            return value == self.value
        if self.op is MatchOp.NE:
            return value != self.value
        assert self._regex is not None
        hit = self._regex.match(value) is not None
        return hit if self.op is MatchOp.RE else not hit

    def matches_labels(self, labels: dict[str, str]) -> bool:
        return self.matches(labels.get(self.name, ""))
