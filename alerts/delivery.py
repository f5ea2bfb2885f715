"""POSTing JSON with retries and exponential backoff; shared by the Alertmanager and webhook senders.

A 4xx answer is permanent (the receiver rejected the payload: retrying cannot help); network
errors and 5xx are retried ``retries`` times, waiting ``backoff_s``, then twice and four times
that, between tries.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
from loguru import logger


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 3
    backoff_s: float = 0.5
    timeout_s: float = 10.0


async def post_json(client: httpx.AsyncClient, url: str, body: Any, policy: RetryPolicy) -> bool:
    """True once ``url`` accepted ``body``; False (logged) when rejected or still failing after retries."""
    error = ""
    for attempt in range(policy.retries + 1):
        try:
            response = await client.post(url, json=body)
            if response.status_code < 300:
                return True
            if 400 <= response.status_code < 500:
                logger.error("{} rejected the alerts: HTTP {} {}", url, response.status_code, response.text)
                return False
            error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            error = repr(exc)
        if attempt < policy.retries:
            await asyncio.sleep(policy.backoff_s * 2**attempt)
    logger.error("{}: alerts not delivered after {} tries: {}", url, policy.retries + 1, error)
    return False
