"""The CLI's side of a running server's API: ``infersight query`` and ``infersight audit verify --server``.

A command that asks a server needs its URL and, with ``auth.enabled``, a key; both come from flags
or the environment (``INFERSIGHT_SERVER``, ``INFERSIGHT_KEY``), so a key need not be typed where
``ps`` shows it. Failures are one line each: the server's own error for a refused request (exit 1),
or what kept the request from being answered at all (exit 2).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import httpx

DEFAULT_SERVER = "http://127.0.0.1:9091"


class ApiError(RuntimeError):
    """The server answered with an error: the message is its ``errorType: error``."""


class Unreachable(RuntimeError):
    """No answer at all (connection refused, timeout, not an infersight/Prometheus API)."""


def server_url(flag: str | None) -> str:
    return (flag or os.environ.get("INFERSIGHT_SERVER") or DEFAULT_SERVER).rstrip("/")


def api_key(flag: str | None) -> str | None:
    return flag or os.environ.get("INFERSIGHT_KEY") or os.environ.get("INFERSIGHT_ADMIN_KEY") or None


def get_json(
    server: str, path: str, params: Mapping[str, Any], key: str | None, timeout_s: float = 60.0
) -> dict[str, Any]:
    """``GET server+path`` and the decoded body of a successful answer."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    url = f"{server}{path}"
    try:
        response = httpx.get(url, params=dict(params), headers=headers, timeout=timeout_s)
    except httpx.HTTPError as err:
        raise Unreachable(f"cannot reach {url}: {err or type(err).__name__}") from None
    try:
        body = response.json()
    except ValueError:
        raise Unreachable(
            f"{url} answered {response.status_code} without JSON: is {server} an infersight server?"
        ) from None
    if not isinstance(body, dict):
        raise Unreachable(f"{url} answered {response.status_code} with an unexpected body")
    if response.status_code >= 400 or body.get("status") == "error":
        kind = body.get("errorType") or f"HTTP {response.status_code}"
        raise ApiError(f"{kind}: {body.get('error') or body.get('detail') or response.reason_phrase}")
    return body
