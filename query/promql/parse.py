"""Syntax from the ``promql-parser`` package, adapted to the engine: matchers, durations, ``@``.

The package follows current Prometheus; ``holt_winters`` (renamed in 3.0) is registered back so
2.42 queries parse. A negative ``@`` timestamp makes the package panic when read, so it is recovered
from the panic message.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import promql_parser as pp

from model.labels import METRIC_NAME, Matcher, MatchOp
from query.promql.errors import PromQLError
from query.promql.regex import to_python_regex

pp.register_extra_functions(
    [
        pp.Function(
            "holt_winters",
            [pp.ValueType.Matrix, pp.ValueType.Scalar, pp.ValueType.Scalar],
            pp.ValueType.Vector,
        )
    ]
)

# The package's enums are not hashable: look them up by their string form.
_MATCH_OPS = {
    str(pp.MatchOp.Equal): MatchOp.EQ,
    str(pp.MatchOp.NotEqual): MatchOp.NE,
    str(pp.MatchOp.Re): MatchOp.RE,
    str(pp.MatchOp.NotRe): MatchOp.NRE,
}
_PANIC_DURATION = re.compile(r"SystemTimeError\(([0-9.]+)(ns|µs|us|ms|s)\)")
_UNIT_MS = {"ns": 1e-6, "µs": 1e-3, "us": 1e-3, "ms": 1.0, "s": 1000.0}

AT_START = "start"
AT_END = "end"


def parse_expr(query: str) -> Any:
    """The query's AST; syntax errors become ``PromQLError("bad_data")`` as in Prometheus' API."""
    try:
        return pp.parse(query)
    except ValueError as exc:
        raise PromQLError("bad_data", f"parse error: {exc}") from None
    except BaseException as exc:  # the Rust side panics on some inputs
        if type(exc).__name__ == "PanicException":
            raise PromQLError("bad_data", f"parse error: {exc}") from None
        raise


def duration_ms(value: timedelta | None) -> int:
    """Milliseconds in an AST duration (``None`` is 0); negative offsets stay negative."""
    if value is None:
        return 0
    return value.days * 86_400_000 + value.seconds * 1000 + value.microseconds // 1000


def to_matchers(selector: Any) -> list[Matcher]:
    """The selector's matchers as ``model.labels.Matcher``, the metric name as an ``__name__`` matcher."""
    out = []
    if selector.name:
        out.append(Matcher(METRIC_NAME, MatchOp.EQ, selector.name))
    for m in selector.matchers.matchers:
        try:
            op = _MATCH_OPS[str(m.op)]
            value = to_python_regex(m.value) if op in (MatchOp.RE, MatchOp.NRE) else m.value
            out.append(Matcher(m.name, op, value))
        except re.error as exc:
            raise PromQLError(
                "bad_data", f"parse error: invalid regular expression {m.value!r}: {exc}"
            ) from None
    return out


def at_of(node: Any) -> int | str | None:
    """The ``@`` of a selector or subquery: ms, ``AT_START``/``AT_END``, or ``None`` when absent."""
    at = node.at
    if at is None:
        return None
    if at.type == pp.AtModifierType.Start:
        return AT_START
    if at.type == pp.AtModifierType.End:
        return AT_END
    try:
        when = at.at
    except BaseException as exc:
        if type(exc).__name__ != "PanicException":
            raise
        found = _PANIC_DURATION.search(str(exc))
        if not found:
            raise PromQLError("bad_data", "parse error: unsupported @ timestamp") from None
        return -round(float(found.group(1)) * _UNIT_MS[found.group(2)])
    return round(when.timestamp() * 1000)
