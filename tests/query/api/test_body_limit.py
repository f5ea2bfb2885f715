"""Every request body has a ceiling: a declared one over it is refused unread, a streamed one cut off."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from query.api.app import create_app
from store.open import Store
from tests.query.api.live_server import live_server

LIMIT = 64 * 1024


@pytest.fixture
def base(chdb_store: Store) -> Iterator[str]:
    with live_server(create_app(chdb_store, max_body_bytes=LIMIT)) as url:
        yield url


def _chunks(total: int, size: int = 8192) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        yield b"[" * min(size, total - sent)
        sent += size


@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/audit/traces", "/api/v1/write", "/api/v1/query"])
def test_declared_length_over_the_ceiling_is_413(base: str, path: str) -> None:
    response = httpx.post(
        base + path, content=b"x" * (LIMIT + 1), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["errorType"] == "bad_data"


@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/audit/traces", "/api/v1/query"])
def test_streamed_body_over_the_ceiling_is_cut_off(base: str, path: str) -> None:
    response = httpx.post(
        base + path, content=_chunks(4 * LIMIT), headers={"Content-Type": "application/json"}
    )
    # The query routes read their form themselves and name the problem in a 400 of their own.
    assert response.status_code in (400, 413)
    assert response.json()["errorType"] == "bad_data"


def test_bodies_under_the_ceiling_still_work_and_the_server_answers(base: str) -> None:
    event = {"type": "Normal", "reason": "Started", "message": "m", "object": {"kind": "pod", "name": "p"}}
    response = httpx.post(f"{base}/api/v1/events", json={"events": [event]})
    assert response.status_code < 500, response.text
    response = httpx.post(f"{base}/api/v1/query", data={"query": "vector(1)"})
    assert response.status_code == 200
    assert httpx.get(f"{base}/-/healthy").status_code == 200


def test_a_content_length_that_is_not_a_number_is_400(base: str) -> None:
    with httpx.Client() as client:
        request = client.build_request("POST", f"{base}/api/v1/events", content=b"{}")
        request.headers["Content-Length"] = "abc"
        try:
            response = client.send(request)
        except httpx.HTTPError:
            return  # uvicorn's parser refused it before the app: no answer is also no 5xx
        assert response.status_code == 400
