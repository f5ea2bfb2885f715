"""JSON request bodies read the same way by every route: bounded, and every way to fail a ``ValueError``.

Why one reader: ``json.loads`` fails in more ways than ``JSONDecodeError`` on hostile input — a
document nested deeper than the interpreter's stack raises ``RecursionError``, an integer of more
than 4,300 digits a ``ValueError`` of its own, bytes that are not UTF-8 a ``UnicodeDecodeError`` —
and a route that caught only the first answered the others with a 500. Routes catch ``ValueError``
and answer ``bad_data``.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

# The JSON APIs take events, traces, keys, rule groups and sketch rows: far below this.
MAX_JSON_BYTES = 16 << 20


def parse_json(raw: bytes, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """``raw`` as JSON; ``ValueError`` naming the problem for anything that is not a JSON document
    (``max_bytes``: for a route whose reader allows larger bodies than the default)."""
    if len(raw) > max_bytes:
        raise ValueError(f"body: {len(raw)} bytes, more than the {max_bytes} a JSON body may hold")
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("body: nested deeper than the JSON reader follows") from None
    except ValueError as err:  # JSONDecodeError, UnicodeDecodeError, integers past 4,300 digits
        raise ValueError(f"body: not a JSON document ({err})"[:500]) from None


async def read_json(request: Request) -> Any:
    """The request's body as JSON (see ``parse_json``)."""
    return parse_json(await request.body())
