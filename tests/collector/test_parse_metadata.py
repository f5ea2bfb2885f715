"""The parser keeps what TYPE/HELP/UNIT lines say, keyed as Prometheus keys it (the name in the line)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.parse import ParseError, parse_exposition, parse_scrape
from model.metadata import MAX_HELP_CHARS, FamilyMetadata

TEXT = """# HELP foo_total Foo things.
# TYPE foo_total counter
foo_total 1
# TYPE bar counter
# HELP bar Bar \\\\ with a\\nnewline
bar 2
# HELP h Latency.
# TYPE h histogram
h_bucket{le="+Inf"} 1
h_sum 1
h_count 1
# TYPE u untyped
u 1
bare 3
# HELP only_help Just help.
only_help 4
"""


def test_text_format_metadata() -> None:
    assert parse_exposition(TEXT, strict=False).families == [
        FamilyMetadata("foo_total", "counter", "Foo things.", ""),
        FamilyMetadata("bar", "counter", "Bar \\ with a\nnewline", ""),
        FamilyMetadata("h", "histogram", "Latency.", ""),
        FamilyMetadata("only_help", "unknown", "Just help.", ""),
    ]


def test_openmetrics_metadata_with_units() -> None:
    text = (
        "# TYPE c counter\n# HELP c C.\nc_total 1\n"
        "# TYPE d_seconds gauge\n# UNIT d_seconds seconds\nd_seconds 1\n# EOF\n"
    )
    parsed = parse_scrape(text.encode(), "application/openmetrics-text; version=1.0.0")
    assert parsed.families == [
        FamilyMetadata("c", "counter", "C.", ""),
        FamilyMetadata("d_seconds", "gauge", "", "seconds"),
    ]


def test_a_huge_help_is_clipped() -> None:
    parsed = parse_exposition(f"# HELP x {'h' * 100_000}\n# TYPE x gauge\nx 1\n", strict=False)
    assert len(parsed.families[0].help) == MAX_HELP_CHARS


def test_a_failed_parse_keeps_no_metadata() -> None:
    with pytest.raises(ParseError):
        parse_scrape(b"# HELP x fine\n# TYPE x gauge\nx not-a-number\n", "text/plain")


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


@settings(max_examples=300, deadline=None)
@given(
    help_=st.text(
        st.one_of(st.characters(whitelist_categories=("L", "N", "P", "S")), st.sampled_from(" \t\\\n")),
        max_size=200,
    )
)
def test_any_help_text_round_trips(help_: str) -> None:
    """Whatever a HELP line holds (escaped as the text format escapes), the same text comes back,
    without the whitespace around it (the parser strips lines)."""
    text = f"# HELP m {_escaped(help_)}\n# TYPE m gauge\nm 1\n"
    assert parse_exposition(text, strict=False).families == [
        FamilyMetadata("m", "gauge", help_.strip(" \t"), "")
    ]


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=300))
def test_any_body_gives_bounded_metadata_or_a_parse_error(body: bytes) -> None:
    try:
        families = parse_scrape(b"# HELP m x\n# TYPE m gauge\n" + body, "text/plain").families
    except ParseError:
        return
    assert all(len(f.help) <= MAX_HELP_CHARS for f in families)
    assert all(
        f.type
        in ("counter", "gauge", "histogram", "summary", "unknown", "info", "stateset", "gaugehistogram")
        for f in families
    )
