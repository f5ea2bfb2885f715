"""Syntax from the ``promql-parser`` package, adapted to the engine: matchers, durations, ``@``.

The package follows current Prometheus; ``holt_winters`` (renamed in 3.0) is registered back so
2.42 queries parse. A negative ``@`` timestamp makes the package panic when read, so it is recovered
from the panic message; times and durations the package cannot represent (``@ 1e20``,
``offset 100000000y``) fail when read, and become ``bad_data`` here. The text is measured
(``query.promql.limits``) before the parser sees it: the parser is Rust, and a deep enough query
overflows its stack.
"""

from __future__ import annotations

import functools
import re
from datetime import timedelta
from typing import Any

import promql_parser as pp
import re2

from model.labels import METRIC_NAME, Matcher, MatchOp
from query.promql.errors import PromQLError
from query.promql.limits import DEFAULT_LIMITS, QueryLimits, check_query_text
from query.promql.regex import compile_anchored, to_python_regex

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
# Prometheus' API bounds (``MinTime``/``MaxTime`` in ms): an ``@`` time beyond them is refused.
_MAX_AT_MS = 9_223_372_036_854_775


# Dashboards send the same few hundred queries every refresh; an AST is immutable (the package's
# objects refuse new attributes) and safe to share between threads, and parsing one is ~40 µs.
_CACHED_TEXT_CHARS = 4096
_parsed = functools.lru_cache(maxsize=1024)(pp.parse)


def parse_expr(query: str, limits: QueryLimits = DEFAULT_LIMITS) -> Any:
    """The query's AST; syntax errors become ``PromQLError("bad_data")`` as in Prometheus' API.

    ``limits`` are checked on the text first, so no input can crash or stall the parser.
    """
    check_query_text(query, limits)
    try:
        return _parsed(query) if len(query) <= _CACHED_TEXT_CHARS else pp.parse(query)
    except (ValueError, OverflowError, UnicodeError) as exc:
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
    """The selector's matchers as ``model.labels.Matcher``, the metric name as an ``__name__`` matcher.

    A regex must compile as RE2 (what Prometheus and ClickHouse run); it is also rewritten into the
    subset both RE2 and Python's ``re`` read the same way.
    """
    out = []
    if selector.name:
        out.append(Matcher(METRIC_NAME, MatchOp.EQ, selector.name))
    for m in selector.matchers.matchers:
        try:
            op = _MATCH_OPS[str(m.op)]
            value = m.value
            if op in (MatchOp.RE, MatchOp.NRE):
                compile_anchored(value)
                value = to_python_regex(value)
            out.append(Matcher(m.name, op, value))
        except (re.error, ValueError, re2.error) as exc:
            raise PromQLError(
                "bad_data", f"parse error: invalid regular expression {m.value!r}: {exc}"
            ) from None
    return out


def offset_ms(node: Any) -> int:
    """The ``offset`` of a selector or subquery in ms (0 when absent)."""
    return _duration_of(node, "offset")


def range_ms_of(node: Any) -> int:
    """The range of a matrix selector or subquery in ms."""
    return _duration_of(node, "range")


def step_ms_of(node: Any) -> int:
    """A subquery's step in ms; 0 when it has none (the engine's default applies)."""
    return _duration_of(node, "step")


def _duration_of(node: Any, name: str) -> int:
    try:
        return duration_ms(getattr(node, name))
    except PromQLError:
        raise
    except BaseException as exc:  # too large for the package's durations; PanicException included
        if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
            raise
        raise PromQLError("bad_data", f"parse error: {name} out of range: {exc}") from None


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
        when = round(at.at.timestamp() * 1000)
    except BaseException as exc:
        if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
            raise
        found = _PANIC_DURATION.search(str(exc))
        if not found:
            raise PromQLError("bad_data", "parse error: timestamp out of bounds for @ modifier") from None
        when = -round(float(found.group(1)) * _UNIT_MS[found.group(2)])
    if abs(when) > _MAX_AT_MS:
        raise PromQLError("bad_data", "parse error: timestamp out of bounds for @ modifier")
    return when


def vector_selectors(expr: Any) -> list[Any]:
    """Every vector selector in the expression (in a matrix selector or subquery too), as
    Prometheus' ``parser.ExtractSelectors``."""
    out: list[Any] = []
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, pp.VectorSelector):
            out.append(node)
        elif isinstance(node, pp.MatrixSelector):
            out.append(node.vector_selector)
        elif isinstance(node, pp.BinaryExpr):
            stack += (node.lhs, node.rhs)
        elif isinstance(node, pp.Call):
            stack.extend(node.args)
        elif isinstance(node, pp.AggregateExpr):
            stack += [n for n in (node.expr, node.param) if n is not None]
        elif isinstance(node, pp.ParenExpr | pp.UnaryExpr | pp.SubqueryExpr):
            stack.append(node.expr)
    return out
