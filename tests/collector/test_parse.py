"""collector.parse: lenient Prometheus text, strict OpenMetrics, errors with line numbers."""

from __future__ import annotations

import math

import pytest

from collector.parse import OPENMETRICS_CONTENT_TYPE, ParseError, parse_body, parse_text

# SEED-SPEC §2, verbatim
GUIDE_EXAMPLE = """# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total gauge
html_http_requests_total{method="post",code="200"} 1656 1686660980680
html_http_requests_total{method="post",code="400"} 2 1686660980681
"""


def test_guide_example_parses_leniently_with_ms_timestamps() -> None:
    samples = parse_text(GUIDE_EXAMPLE, strict=False)
    assert [(s.name, s.labels, s.value, s.ts_ms) for s in samples] == [
        ("html_http_requests_total", {"method": "post", "code": "200"}, 1656.0, 1686660980680),
        ("html_http_requests_total", {"method": "post", "code": "400"}, 2.0, 1686660980681),
    ]


def test_guide_example_is_not_strict_openmetrics() -> None:
    with pytest.raises(ParseError):
        parse_text(GUIDE_EXAMPLE, strict=True)


def test_text_content_type_selects_lenient_mode() -> None:
    samples = parse_body(GUIDE_EXAMPLE.encode(), "text/plain; version=0.0.4; charset=utf-8")
    assert len(samples) == 2


def test_openmetrics_content_type_selects_strict_mode() -> None:
    with pytest.raises(ParseError):
        parse_body(GUIDE_EXAMPLE.encode(), "application/openmetrics-text; version=1.0.0; charset=utf-8")


def test_openmetrics_timestamps_are_seconds() -> None:
    text = "# TYPE a gauge\na 1 1686660980.68\n# EOF\n"
    [sample] = parse_body(text.encode(), OPENMETRICS_CONTENT_TYPE)
    assert sample.ts_ms == 1686660980680


def test_no_timestamp_gives_none() -> None:
    [sample] = parse_text("a 1\n", strict=False)
    assert sample.ts_ms is None


@pytest.mark.parametrize(
    ("text", "check"),
    [
        ("a NaN\n", math.isnan),
        ("a +Inf\n", lambda v: v == math.inf),
        ("a -Inf\n", lambda v: v == -math.inf),
        ("a 1e3\n", lambda v: v == 1000.0),
    ],
)
def test_special_values_pass_through(text: str, check: object) -> None:
    [sample] = parse_text(text, strict=False)
    assert check(sample.value)  # type: ignore[operator]


def test_counter_keeps_its_exposed_name_in_lenient_mode() -> None:
    # prometheus_client renames samples of `# TYPE foo counter` to foo_total; Prometheus does not
    text = "# TYPE foo counter\nfoo 3\n# TYPE bar_total counter\nbar_total 4\n"
    assert [(s.name, s.value) for s in parse_text(text, strict=False)] == [("foo", 3.0), ("bar_total", 4.0)]


def test_histogram_samples_keep_family_and_type() -> None:
    text = '# TYPE h histogram\nh_bucket{le="0.5"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1.5\nh_count 2\n'
    samples = parse_text(text, strict=False)
    assert {s.family for s in samples} == {"h"}
    assert {s.type for s in samples} == {"histogram"}
    assert [s.labels.get("le") for s in samples] == ["0.5", "+Inf", None, None]


def test_strict_openmetrics_counter() -> None:
    text = "# TYPE c counter\nc_total 5\nc_created 1.7e9\n# EOF\n"
    assert [(s.name, s.value) for s in parse_text(text, strict=True)] == [
        ("c_total", 5.0),
        ("c_created", 1.7e9),
    ]


@pytest.mark.parametrize(
    "text",
    [
        'a{b="1" 1\n',  # unterminated label set
        "a 1 2 3 x\n",  # junk value
        'a{b="1"}\n',  # no value
        "1a 1\n",  # bad name
    ],
)
def test_lenient_rejects_malformed(text: str) -> None:
    with pytest.raises(ParseError):
        parse_text(text, strict=False)


@pytest.mark.parametrize("text", ["a 1\n\n# EOF\n", 'a{a="1"b="2"} 1\n# EOF\n', "a 1\n"])
def test_strict_rejects_malformed(text: str) -> None:
    with pytest.raises(ParseError):
        parse_text(text, strict=True)


def test_error_names_the_line() -> None:
    text = '# TYPE a gauge\na 1\nb{x="1" 2\n'
    with pytest.raises(ParseError) as err:
        parse_text(text, strict=False)
    assert err.value.line == 3
    assert "line 3" in str(err.value)


def test_non_utf8_body_is_a_parse_error() -> None:
    with pytest.raises(ParseError):
        parse_body(b"a\xff 1\n", "text/plain")
