"""Which failed sends keep the batch (retry) and which drop it (the batch itself refused)."""

from __future__ import annotations

import httpx
import pytest

from exporters.errors import PermanentError, RetryableError, is_retryable


def _status(code: int) -> httpx.HTTPStatusError:
    request = httpx.Request("POST", "http://server/api/v1/ingest")
    return httpx.HTTPStatusError("refused", request=request, response=httpx.Response(code, request=request))


@pytest.mark.parametrize("code", [401, 403, 408, 429, 500, 502, 503, 504])
def test_outages_and_refused_keys_keep_the_batch(code: int) -> None:
    assert is_retryable(_status(code))


@pytest.mark.parametrize("code", [400, 404, 413, 422])
def test_a_refused_batch_is_dropped(code: int) -> None:
    assert not is_retryable(_status(code))


def test_transport_failures_are_outages() -> None:
    assert is_retryable(httpx.ConnectError("refused"))
    assert is_retryable(RetryableError("later"))
    assert not is_retryable(PermanentError("never"))
