"""Prometheus API error responses: ``{"status": "error", "errorType": ..., "error": ...}``."""

from __future__ import annotations

from fastapi.responses import JSONResponse

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


def error_response(error_type: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"status": "error", "errorType": error_type, "error": message},
        status_code=STATUS_BY_ERROR_TYPE.get(error_type, 500),
    )


def success(data: object, warnings: list[str] | None = None) -> dict[str, object]:
    body: dict[str, object] = {"status": "success", "data": data}
    if warnings:
        body["warnings"] = warnings
    return body
