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


# HTTP answers that say nothing about the batch: the server is busy (429), timed out waiting for it
# (408), or does not accept our key (401, 403: a missing, wrong or revoked key is the operator's to
# fix, and the scrapes already taken must still arrive once it is).
_RETRYABLE_STATUS = frozenset({401, 403, 408, 429})


def is_retryable(err: BaseException) -> bool:
    """True for outages (network, timeouts, server busy, HTTP 5xx, 408/429) and for a key the server
    refuses (401/403); False for refusals of the batch itself."""
    if isinstance(err, httpx.HTTPStatusError):
        return err.response.status_code >= 500 or err.response.status_code in _RETRYABLE_STATUS
    return isinstance(err, _RETRYABLE)
