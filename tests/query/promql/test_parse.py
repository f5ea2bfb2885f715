"""Syntax handling around promql-parser: errors, matchers, RE2 regexes, ``@``."""

from __future__ import annotations

import re

import pytest

from model.labels import MatchOp
from query.promql.errors import PromQLError
from query.promql.parse import AT_END, at_of, duration_ms, parse_expr, to_matchers
from query.promql.regex import to_python_regex


@pytest.mark.parametrize("query", ["sum(", "foo{", "rate(foo)", "nosuchfn(x)", "foo offset 1m offset 1m"])
def test_syntax_errors_are_bad_data(query: str) -> None:
    with pytest.raises(PromQLError) as info:
        parse_expr(query)
    assert info.value.error_type == "bad_data"


def test_matchers_include_the_metric_name() -> None:
    matchers = to_matchers(parse_expr('foo{a!="b",c=~"d.*"}'))
    assert [(m.name, m.op, m.value) for m in matchers] == [
        ("__name__", MatchOp.EQ, "foo"),
        ("a", MatchOp.NE, "b"),
        ("c", MatchOp.RE, "d.*"),
    ]


def test_negative_offset_and_at() -> None:
    expr = parse_expr("foo offset -5m @ -100.5")
    assert duration_ms(expr.offset) == -300_000
    assert at_of(expr) == -100_500
    assert at_of(parse_expr("foo[5m:] @ end()")) == AT_END


def test_holt_winters_parses() -> None:
    assert parse_expr("holt_winters(foo[5m], 0.5, 0.5)").func.name == "holt_winters"


@pytest.mark.parametrize(
    ("re2", "matches", "rejects"),
    [
        ("(?i)abc", "ABC", "abd"),
        ("((?i)PRO).*", "production", "xproduction"),
        (".*((?i)TION)", "producTION", "productions"),
        ("x(?i)a|b", "B", "xb2"),
        ("[[:digit:]]+", "123", "12a"),
    ],
)
def test_re2_patterns_translate(re2: str, matches: str, rejects: str) -> None:
    pattern = re.compile(f"^(?:{to_python_regex(re2)})$")
    assert pattern.match(matches)
    assert not pattern.match(rejects)
