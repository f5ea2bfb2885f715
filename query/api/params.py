"""Request parameters as the Prometheus HTTP API reads them: times, durations, ``match[]`` selectors."""

from __future__ import annotations

import datetime as dt
import math

import promql_parser

from model.durations import parse_duration_ms
from model.labels import Matcher
from query.promql.errors import PromQLError
from query.promql.parse import parse_expr, to_matchers

# Prometheus' API uses these as the open ends of a time range.
MIN_TIME_MS = -9_223_372_036_854_775 // 1000 * 1000
MAX_TIME_MS = 9_223_372_036_854_775 // 1000 * 1000


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
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if math.isnan(seconds) or math.isinf(seconds):
            raise BadParamError(f'invalid parameter "{name}": cannot parse "{text}" to a valid timestamp')
        return round(seconds * 1000)
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadParamError(
            f'invalid parameter "{name}": cannot parse "{text}" to a valid timestamp'
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return round(parsed.timestamp() * 1000)


def parse_step_ms(text: str | None) -> int:
    """Range-query step: float seconds or a duration; must be positive."""
    if not text:
        raise BadParamError('invalid parameter "step": cannot parse "" to a valid duration')
    try:
        step_ms = parse_duration_ms(text)
    except ValueError:
        raise BadParamError(f'invalid parameter "step": cannot parse "{text}" to a valid duration') from None
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
    try:
        return parse_duration_ms(text) / 1000
    except ValueError:
        message = f'invalid parameter "timeout": cannot parse "{text}" to a valid duration'
        raise BadParamError(message) from None


def parse_match(selector: str) -> list[Matcher]:
    """Matchers of one ``match[]`` series selector, e.g. ``up{job="api"}``."""
    try:
        expr = parse_expr(selector)
        if not isinstance(expr, promql_parser.VectorSelector):
            raise BadParamError(f'invalid parameter "match[]": {selector!r} is not a series selector')
        matchers = to_matchers(expr)
    except PromQLError as err:
        raise BadParamError(f'invalid parameter "match[]": {err}') from None
    if all(m.matches("") for m in matchers):
        raise BadParamError(
            'invalid parameter "match[]": match[] must contain at least one non-empty matcher'
        )
    return matchers
