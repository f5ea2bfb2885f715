"""Request parameters decode exactly as the standard library's ``parse_qsl`` decodes them."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from query.api.params import BadParamError
from query.api.prometheus_v1 import MAX_PARAMS, _decode

# Pieces that matter to the decoder: separators, escapes (valid, broken, of invalid UTF-8), '+'.
_PIECES = st.one_of(
    st.sampled_from(
        ["&", "=", "+", "%", "%2", "%20", "%2B", "%26", "%3D", "%ff", "%C3%A9", "%e2%82", "&&", "=="]
    ),
    st.text(max_size=6),
    st.text(max_size=6).map(quote),
)


def _standard(raw: bytes) -> list[tuple[str, str]] | str:
    try:
        text = raw.decode("utf-8")
        return parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=MAX_PARAMS)
    except UnicodeError:
        return "bad utf-8"
    except ValueError:
        return "too many"


def _ours(raw: bytes) -> list[tuple[str, str]] | str:
    try:
        return _decode(raw, "query string")
    except BadParamError as err:
        return "too many" if "too many" in str(err) else "bad utf-8"


@settings(max_examples=400, deadline=None)
@given(st.lists(_PIECES, max_size=30).map("".join))
def test_any_query_string_decodes_as_parse_qsl_does(text: str) -> None:
    raw = text.encode("utf-8", "surrogatepass")
    assert _ours(raw) == _standard(raw)


@given(st.binary(max_size=60))
def test_any_bytes_decode_as_parse_qsl_does(raw: bytes) -> None:
    assert _ours(raw) == _standard(raw)


@pytest.mark.parametrize("fields", [MAX_PARAMS - 1, MAX_PARAMS, MAX_PARAMS + 1])
def test_the_field_limit_is_the_standard_librarys(fields: int) -> None:
    raw = "&".join(["a=1"] * fields).encode()
    assert _ours(raw) == _standard(raw)
