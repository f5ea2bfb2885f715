"""The query text is measured before the parser sees it: no input crashes or stalls the parser."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from query.promql.errors import PromQLError
from query.promql.limits import DEFAULT_LIMITS, QueryLimits, check_query_text
from query.promql.parse import at_of, offset_ms, parse_expr, range_ms_of

SUITE = Path(__file__).resolve().parents[2] / "testdata" / "promql-2.42"
_EVAL = re.compile(r"^\s*eval(?:_\w+)?\s+instant\s+at\s+\S+\s+(.+)$")


def _suite_queries() -> list[str]:
    return [m.group(1) for f in sorted(SUITE.glob("*.test")) for m in map(_EVAL.match, f.open()) if m]


def _refused(query: str, limits: QueryLimits = DEFAULT_LIMITS) -> str:
    with pytest.raises(PromQLError) as info:
        check_query_text(query, limits)
    assert info.value.error_type == "bad_data"
    return str(info.value)


def test_every_query_of_prometheus_conformance_suite_is_within_the_limits() -> None:
    queries = _suite_queries()
    assert len(queries) > 500
    for query in queries:
        check_query_text(query)


@pytest.mark.parametrize(
    ("make", "limit_name"),
    [
        (lambda n: "(" * n + "1" + ")" * n, "levels deep"),
        (lambda n: "abs(" * n + "up" + ")" * n, "levels deep"),
        (lambda n: "max_over_time(" * (n - 1) + "up" + "[5m:])" * (n - 1), "levels deep"),
        (lambda n: " + ".join(["up"] * (n + 1)), "operators"),
        (lambda n: " or ".join(["up"] * (n + 1)), "operators"),
        (lambda n: " AND ".join(["up"] * (n + 1)), "operators"),
        (lambda n: "-" * n + "1", "operators"),
    ],
)
def test_each_shape_passes_at_its_limit_and_is_refused_above(make, limit_name: str) -> None:
    limits = QueryLimits(max_depth=20, max_operators=20, max_unary_run=100)
    check_query_text(make(20), limits)
    assert limit_name in _refused(make(21), limits)


def test_signs_in_a_row_and_length() -> None:
    limits = QueryLimits(max_unary_run=3, max_length=50)
    check_query_text("- - -1", limits)
    assert "signs in a row" in _refused("- - - -1", limits)
    assert "characters long" in _refused("x" * 51, limits)


def test_quoted_text_and_comments_cost_only_length() -> None:
    limits = QueryLimits(max_depth=2, max_operators=2)
    check_query_text('up{job=~"((((+-*/((((", a!="b", c!~"[[["} # (((( + + + +\n', limits)
    check_query_text("label_replace(up, 'a', '$1', 'b', '(((((')", limits)
    check_query_text("`((((((` ", limits)


def test_text_that_is_not_utf8_is_refused() -> None:
    assert "UTF-8" in _refused('up{job="\udc80"}')


@pytest.mark.parametrize(
    "query",
    [
        "(" * 100_000 + "1" + ")" * 100_000,
        "-" * 100_000 + "1",
        "- " * 50_000 + "up",
        "abs(" * 30_000 + "vector(1)" + ")" * 30_000,
        " + ".join(["up"] * 30_000),
        " or ".join(["up"] * 20_000),
        "up" + "[5m:1m]" * 10_000,
        "{" * 100_000,
        "x" * 10_000_000,
    ],
)
def test_hostile_shapes_are_bad_data_not_a_crash(query: str) -> None:
    with pytest.raises(PromQLError) as info:
        parse_expr(query)
    assert info.value.error_type == "bad_data"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="()[]{}+-*/^%<>=!~,\"'`#\n abc1:@.", max_size=400))
def test_any_text_either_parses_or_is_bad_data(text: str) -> None:
    try:
        parse_expr(text)
    except PromQLError as err:
        error_type = err.error_type
    else:
        error_type = "bad_data"
    assert error_type == "bad_data"


@pytest.mark.parametrize(
    ("query", "read"),
    [
        ("up @ 1e20", at_of),
        ("up @ -1e20", at_of),
        ("up @ 1e15", at_of),
        ("up offset 100000000y", offset_ms),
        ("up offset -100000000y", offset_ms),
    ],
)
def test_times_and_durations_out_of_range_are_bad_data(query: str, read) -> None:
    expr = parse_expr(query)
    with pytest.raises(PromQLError) as info:
        read(expr)
    assert info.value.error_type == "bad_data"


def test_a_range_out_of_range_is_bad_data() -> None:
    with pytest.raises(PromQLError) as info:
        range_ms_of(parse_expr("up[1000000000y]"))
    assert info.value.error_type == "bad_data"
