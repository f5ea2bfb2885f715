"""Request parameters as the Prometheus HTTP API reads them: times, durations, ``match[]`` selectors.

Every malformed value is a ``BadParamError`` (400 ``bad_data``), never another exception: times
outside Prometheus' own ``MinTime``/``MaxTime``, ``NaN``/``Inf``, durations that overflow Go's int64
nanoseconds, numbers too long to read, text that is not UTF-8.
"""

from __future__ import annotations

import datetime as dt
import math

import promql_parser
from starlette.requests import Request

from model.durations import parse_duration_ms
from model.labels import Matcher
from query.promql.errors import PromQLError
from query.promql.parse import parse_expr, to_matchers

# Prometheus' API uses these as the open ends of a time range.
MIN_TIME_MS = -9_223_372_036_854_775 // 1000 * 1000
MAX_TIME_MS = 9_223_372_036_854_775 // 1000 * 1000
# Go's time.Duration is int64 nanoseconds: a longer step or timeout overflows in Prometheus.
MAX_DURATION_MS = 9_223_372_036_854


class BadParamError(ValueError):
    """A request parameter is missing or malformed (Prometheus errorType ``bad_data``)."""


def parse_time_ms(text: str | None, name: str, default_ms: int | None) -> int:
    """A Unix timestamp in (fractional) seconds or RFC 3339, as Prometheus accepts; ms.

    ``default_ms=None`` makes the parameter required (``start``/``end`` of a range query).
    """
    if text is None or text == "":
        if default_ms is None:
            raise BadParamError(f'invalid parameter "{name}": cannot parse "" to a valid timestamp')
        return default_ms
    bad = BadParamError(f'invalid parameter "{name}": cannot parse "{_shown(text)}" to a valid timestamp')
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds) or not MIN_TIME_MS <= seconds * 1000 <= MAX_TIME_MS:
            raise bad
        return round(seconds * 1000)
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return round(parsed.timestamp() * 1000)
    except (ValueError, OverflowError):
        raise bad from None


def parse_duration_param_ms(text: str, name: str) -> int:
    """A duration parameter (``5m``, ``1m30s`` or float seconds) in ms, as Prometheus reads one."""
    try:
        value_ms = parse_duration_ms(text)
    except (ValueError, OverflowError):  # OverflowError: "inf" seconds
        raise BadParamError(
            f'invalid parameter "{name}": cannot parse "{_shown(text)}" to a valid duration'
        ) from None
    if value_ms > MAX_DURATION_MS:
        raise BadParamError(
            f'invalid parameter "{name}": cannot parse "{_shown(text)}" to a valid duration. '
            "It overflows int64"
        )
    return value_ms


def parse_limit(text: str | None, name: str = "limit") -> int:
    """A ``limit`` parameter: an integer; absent or negative means no limit (-1)."""
    if not text:
        return -1
    try:
        return max(int(text), -1)
    except ValueError:  # not a number, or one with more digits than Python will read
        raise BadParamError(f"{name} must be a number") from None


def _shown(text: str) -> str:
    """A parameter as an error message quotes it: shortened, and only what UTF-8 can carry."""
    short = text if len(text) <= 200 else text[:200] + "…"
    return short.encode("utf-8", "replace").decode("utf-8")


def parse_step_ms(text: str | None) -> int:
    """Range-query step: float seconds or a duration; must be positive."""
    if not text:
        raise BadParamError('invalid parameter "step": cannot parse "" to a valid duration')
    step_ms = parse_duration_param_ms(text, "step")
    if step_ms <= 0:
        raise BadParamError(
            'invalid parameter "step": zero or negative query resolution step widths are not accepted. '
            "Try a positive integer"
        )
    return step_ms


def parse_timeout_s(text: str | None) -> float | None:
    """The query's ``timeout`` parameter (a duration or seconds); ``None`` when absent."""
    if not text:
        return None
    return parse_duration_param_ms(text, "timeout") / 1000


def parse_match(selector: str) -> list[Matcher]:
    """Matchers of one ``match[]`` series selector, e.g. ``up{job="api"}``."""
    try:
        expr = parse_expr(selector)
        if not isinstance(expr, promql_parser.VectorSelector):
            raise BadParamError(f'invalid parameter "match[]": {_shown(selector)!r} is not a series selector')
        matchers = to_matchers(expr)
    except PromQLError as err:
        raise BadParamError(f'invalid parameter "match[]": {err}') from None
    if all(m.matches("") for m in matchers):
        raise BadParamError(
            'invalid parameter "match[]": match[] must contain at least one non-empty matcher'
        )
    return matchers


async def bounded_body(
    request: Request, limit: int, what: str, error: type[ValueError] = BadParamError
) -> bytes:
    """The request's body, refused (``error``, a 400 by default) past ``limit`` bytes: by its
    declared length before reading, else as soon as the stream passes it."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise error(f"{what} larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise error(f"{what} larger than {limit} bytes")
    return bytes(body)
