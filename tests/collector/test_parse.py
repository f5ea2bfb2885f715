"""collector.parse: lenient Prometheus text, strict OpenMetrics, errors with line numbers."""

from __future__ import annotations

import contextlib
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


# --- hostile bodies: a ParseError, never anything else -------------------------------------------


@pytest.mark.parametrize("strict", [False, True], ids=["text", "openmetrics"])
@pytest.mark.parametrize(
    "text",
    [
        "a 1 Inf\n",  # timestamp Inf: OverflowError inside the conversion to ms
        "a 1 -Inf\n",
        "a 1 NaN\n",
        "a 1 1e400\n",
        "a " + "9" * 400 + "\n",  # a value beyond float64: OverflowError in prometheus-client
        "# TYPE a counter\na_total " + "9" * 400 + "\n",
    ],
)
def test_numbers_beyond_float64_are_parse_errors(text: str, strict: bool) -> None:
    body = text + ("# EOF\n" if strict else "")
    with pytest.raises(ParseError):
        parse_body(body.encode(), OPENMETRICS_CONTENT_TYPE if strict else "text/plain")


def test_past_pythons_int_digit_limit_the_text_parser_reads_inf() -> None:
    # both parsers fall back to float() when int() refuses 5000 digits: +Inf, as for "1e400"
    [sample] = parse_text("a " + "9" * 5000 + "\n", strict=False)
    assert sample.value == math.inf
    [sample] = parse_text("a " + "9" * 5000 + "\n# EOF\n", strict=True)
    assert sample.value == math.inf


def test_the_400_digit_openmetrics_value_is_a_parse_error() -> None:
    body = b"# TYPE a counter\na_total " + b"9" * 400 + b"\n# EOF\n"
    with pytest.raises(ParseError, match="line 2"):
        parse_body(body, OPENMETRICS_CONTENT_TYPE)


def test_timestamps_beyond_int64_ms_are_clamped_not_raised() -> None:
    # the OpenMetrics suite says 12345678901234567890.1 s parses; the store needs int64 ms
    [sample] = parse_body(b"a 1 12345678901234567890.1\n# EOF\n", OPENMETRICS_CONTENT_TYPE)
    assert sample.ts_ms == 2**63 - 1
    [sample] = parse_body(b"a 1 " + b"9" * 400 + b"\n# EOF\n", OPENMETRICS_CONTENT_TYPE)
    assert sample.ts_ms == 2**63 - 1
    [sample] = parse_text("a 1 -1e300\n", strict=False)
    assert sample.ts_ms == -(2**63)


def test_a_text_timestamp_beyond_float64_is_a_parse_error() -> None:
    with pytest.raises(ParseError):
        parse_text("a 1 " + "9" * 400 + "\n", strict=False)


def test_special_values_are_kept_as_floats_in_every_sample_type() -> None:
    text = (
        "# TYPE h histogram\n"
        'h_bucket{le="1"} NaN\nh_bucket{le="+Inf"} +Inf\nh_sum 1e308\nh_count -1\n'
        "# TYPE c counter\nc_total -Inf\n"
    )
    values = [s.value for s in parse_text(text, strict=False)]
    assert math.isnan(values[0])
    assert values[1:] == [math.inf, 1e308, -1.0, -math.inf]


@settings(max_examples=400, deadline=None, database=None)
@given(body=st.binary(max_size=512), strict=st.booleans())
def test_random_bytes_raise_only_parse_error(body: bytes, strict: bool) -> None:
    try:
        samples = parse_body(body, OPENMETRICS_CONTENT_TYPE if strict else "text/plain")
    except ParseError:
        return
    for s in samples:
        assert isinstance(s.value, float)
        assert s.ts_ms is None or -(2**63) <= s.ts_ms < 2**63


EXPOSITION_ALPHABET = 'ab_:{}="\\ #\t+-.0123456789eEInfNa\nxTYPEHELPcounterhistogramle,'


@settings(max_examples=400, deadline=None, database=None)
@given(text=st.text(alphabet=EXPOSITION_ALPHABET, max_size=300), strict=st.booleans())
def test_exposition_like_text_raises_only_parse_error(text: str, strict: bool) -> None:
    with contextlib.suppress(ParseError):
        parse_text(text, strict=strict)
