"""How big and how deep a query may be, checked on the raw text before the parser sees it.

The parser (``promql-parser``, Rust) recurses once per nesting level and takes time quadratic in
the length of an operator chain while holding the GIL: 10,000 nested parentheses or a chain of a
few thousand ``or`` overflow its stack (SIGSEGV, the whole server gone), and a chain of 3,000
``+`` stalls every other request for seconds. Our own evaluator then walks the tree recursively.
So the text is measured first, in a few C-speed passes (no Python loop over its characters):

- ``max_length``: characters in the query;
- ``max_depth``: nesting of ``( [ {``;
- ``max_operators``: operator signs and keywords (binary and unary together), which bounds the
  depth of an operator chain the brackets do not show;
- ``max_unary_run``: signs in a row (``- - - -x``), each a level of the tree.

String literals and comments are blanked first, so a long regex or a quoted ``(((`` costs only
length. The defaults are far above any real query (Prometheus 2.42's own test suite needs depth 4
and 14 operators) and keep the parser's worst case at a few milliseconds.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np

from query.promql.errors import PromQLError

# String literals ("…", '…' with escapes; `…` raw) and comments, unterminated ones to the end.
_LITERALS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|\'[^\'\\]*(?:\\.[^\'\\]*)*\'?|`[^`]*`?|#[^\n]*', re.DOTALL)
# Inside a selector's braces are matchers (``a!="b"``), not operators; braces never nest.
_BRACES = re.compile(r"\{[^{}]*\}")
_KEYWORD_OPERATORS = re.compile(r"\b(?:and|or|unless|atan2)\b", re.IGNORECASE)


def _byte_table(values: dict[bytes, int]) -> np.ndarray:
    """A lookup table over byte values: one fancy-indexing pass classifies every byte."""
    table = np.zeros(256, dtype=np.int32)
    for chars, value in values.items():
        table[np.frombuffer(chars, dtype=np.uint8)] = value
    return table


_DEPTH_STEP = _byte_table({b"([{": 1, b")]}": -1})
_IS_SIGN = _byte_table({b"+-": 1})
_IS_OPERATOR = _byte_table({b"+-*/%^<>": 1})


@dataclass(frozen=True, slots=True)
class QueryLimits:
    """Bounds on a query's text; see the module docstring for what each one protects."""

    max_length: int = 128 * 1024
    max_depth: int = 128
    max_operators: int = 256
    max_unary_run: int = 64


DEFAULT_LIMITS = QueryLimits()


# Texts up to this long that passed are remembered (a dashboard sends the same queries every refresh).
_REMEMBERED_LENGTH = 4096


def check_query_text(query: str, limits: QueryLimits = DEFAULT_LIMITS) -> None:
    """Raise ``PromQLError("bad_data")`` naming the limit the query passes; cheap for any input."""
    if len(query) <= _REMEMBERED_LENGTH:
        _check_remembered(query, limits)  # a refusal raises, and is not remembered
    else:
        _check(query, limits)


@functools.lru_cache(maxsize=2048)
def _check_remembered(query: str, limits: QueryLimits) -> None:
    _check(query, limits)


def _check(query: str, limits: QueryLimits) -> None:
    if len(query) > limits.max_length:
        raise _refused(f"query is {len(query)} characters long, more than the limit of {limits.max_length}")
    try:
        query.encode("utf-8")
    except UnicodeEncodeError:
        raise _refused("query is not valid UTF-8") from None
    code = _BRACES.sub("{}", _LITERALS.sub('""', query))
    data = np.frombuffer(code.encode("utf-8"), dtype=np.uint8)
    deepest = int(np.cumsum(_DEPTH_STEP[data]).max()) if len(data) else 0
    if deepest > limits.max_depth:
        raise _refused(f"query nests {deepest} levels deep, more than the limit of {limits.max_depth}")
    operators = int(_IS_OPERATOR[data].sum()) + code.count("==") + code.count("!=")
    operators += len(_KEYWORD_OPERATORS.findall(code))
    if operators > limits.max_operators:
        raise _refused(f"query has {operators} operators, more than the limit of {limits.max_operators}")
    run = _longest_sign_run("".join(code.split()).encode("utf-8"))
    if run > limits.max_unary_run:
        raise _refused(f"query has {run} signs in a row, more than the limit of {limits.max_unary_run}")


def _longest_sign_run(code: bytes) -> int:
    signs = _IS_SIGN[np.frombuffer(code, dtype=np.uint8)]
    if not signs.any():
        return 0
    edges = np.flatnonzero(np.diff(np.concatenate(([0], signs, [0]))))
    return int((edges[1::2] - edges[::2]).max())


def _refused(reason: str) -> PromQLError:
    return PromQLError("bad_data", f"parse error: {reason}")
