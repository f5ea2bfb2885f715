"""Prometheus API answers: ``{"status": "error", "errorType": ..., "error": ...}`` and successes.

Bodies are rendered here rather than by FastAPI: a result can hold millions of points, and
rendering it is CPU work that belongs in the worker that computed it, not on the event loop
(``render_json``). Text that UTF-8 cannot carry (a lone surrogate from a hostile request echoed in
a message) is replaced, so rendering never fails.
"""

from __future__ import annotations

import json

from fastapi.responses import Response

try:
    import orjson
except ImportError:  # optional: the standard library renders the same bytes, slower
    orjson = None

# HTTP status per errorType, as Prometheus' web/api/v1 returns them.
STATUS_BY_ERROR_TYPE = {
    "bad_data": 400,
    "execution": 422,
    "canceled": 503,
    "timeout": 503,
    "internal": 500,
    "unavailable": 503,
    "not_found": 404,
    "unauthorized": 401,
    "forbidden": 403,
}


def render_json(body: object, status_code: int = 200) -> Response:
    """``body`` as a JSON response, rendered now (call it in a worker for large bodies).

    orjson (about 5x faster on a range answer's points) where it renders the body as the standard
    library would: not with a float NaN or infinity (which must fail), nor text that is not valid
    UTF-8, nor keys that are not strings; those go the standard library's way.
    """
    if orjson is not None:
        try:
            data = orjson.dumps(body)
        except (TypeError, orjson.JSONEncodeError):
            pass
        else:
            if b"null" not in data or _no_nan(body):
                return Response(data, status_code, media_type="application/json")
    text = json.dumps(body, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return Response(text.encode("utf-8", "replace"), status_code, media_type="application/json")


def error_response(error_type: str, message: str) -> Response:
    return render_json(
        {"status": "error", "errorType": error_type, "error": message},
        STATUS_BY_ERROR_TYPE.get(error_type, 500),
    )


def success(data: object, warnings: list[str] | None = None) -> dict[str, object]:
    body: dict[str, object] = {"status": "success", "data": data}
    if warnings:
        body["warnings"] = warnings
    return body


def _no_nan(body: object) -> bool:
    """No float NaN or infinity anywhere in ``body`` (orjson writes them as null)."""
    stack = [body]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                return False
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return True
