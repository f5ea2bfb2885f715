"""Export failures are retryable (keep the batch, try later) or permanent (drop it, count it)."""

from __future__ import annotations

import httpx

from store.backend import StoreUnavailableError


class RetryableError(RuntimeError):
    """The destination cannot take the batch now; the same batch may succeed later."""


class PermanentError(ValueError):
    """The destination refuses this batch and always will (malformed, rejected)."""


_RETRYABLE: tuple[type[BaseException], ...] = (
    RetryableError,
    StoreUnavailableError,
    ConnectionError,
    TimeoutError,
    OSError,
    httpx.TransportError,
)


def is_retryable(err: BaseException) -> bool:
    """True for outages (network, timeouts, server busy, HTTP 5xx/429); False for refusals."""
    if isinstance(err, httpx.HTTPStatusError):
        return err.response.status_code >= 500 or err.response.status_code == 429
    return isinstance(err, _RETRYABLE)
