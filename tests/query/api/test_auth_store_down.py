"""The store goes down mid-run: a key that must be looked up is answered 503 ``unavailable`` in
Prometheus' shape (the caller retries), never a 500 and never a 401; the bootstrap key and keys
still cached keep answering; once the store answers again the same key works. Against a real
uvicorn server; the outage is the backend's query raising as a store that is down does."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from query.api.app import AuthSettings, create_app
from query.api.tenancy import AuthMiddleware
from store.api_keys import KeyStore
from store.backend import StoreUnavailableError
from store.open import Store
from tests.query.api.live_server import live_server

ADMIN = "store-down-admin-key"
BOOT = {"Authorization": f"Bearer {ADMIN}"}


class Outage:
    """Makes the backend's reads fail while ``down`` (as ``store.native`` does when the server is gone)."""

    def __init__(self, backend: Any, monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
        self.down = False
        real = backend.query

        def query(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise error
            return real(*args, **kwargs)

        monkeypatch.setattr(backend, "query", query)


@pytest.mark.parametrize(
    "error",
    [
        StoreUnavailableError("connection refused"),
        RuntimeError("Code: 210. DB::NetException: Connection reset"),
    ],
    ids=["unavailable", "client-error"],
)
def test_an_uncached_key_is_503_while_the_store_is_down(
    chdb_store: Store, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    outage = Outage(chdb_store.backend, monkeypatch, error)
    app = create_app(chdb_store, auth=AuthSettings(enabled=True, admin_key=ADMIN, max_failures=3))
    query = {"query": "1"}
    with live_server(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        created = [
            client.post(
                "/api/v1/admin/keys", json={"project_id": "p1", "permissions": ["read"]}, headers=BOOT
            ).json()["data"]["key"]
            for _ in range(2)
        ]
        cached = {"Authorization": f"Bearer {created[0]}"}
        uncached = {"Authorization": f"Bearer {created[1]}"}
        assert client.get("/api/v1/query", params=query, headers=cached).status_code == 200
        outage.down = True
        for _ in range(5):  # more than max_failures: a 503 is no failed authentication
            answer = client.get("/api/v1/query", params=query, headers=uncached)
            assert answer.status_code == 503, answer.text
            body = answer.json()
            assert body["status"] == "error"
            assert body["errorType"] == "unavailable"
            assert "retry" in body["error"]
            assert answer.headers["retry-after"] == "5"
            unknown = client.get(
                "/api/v1/query", params=query, headers={"Authorization": "Bearer isk_nobody"}
            )
            assert unknown.status_code == 503
        assert client.get("/api/v1/query", params=query, headers=cached).status_code == 200
        assert client.get("/api/v1/query", params=query, headers=BOOT).status_code == 200
        assert client.get("/api/v1/query", params=query).status_code == 401  # no key: nothing to look up
        outage.down = False
        assert client.get("/api/v1/query", params=query, headers=uncached).status_code == 200
        wrong = client.get("/api/v1/query", params=query, headers={"Authorization": "Bearer isk_nobody"})
        assert wrong.status_code == 401


async def _ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def test_the_middleware_counts_what_it_refuses(chdb_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    outage = Outage(chdb_store.backend, monkeypatch, StoreUnavailableError("down"))
    keys = KeyStore(chdb_store.backend)
    _, secret = keys.create("p1", ["read"])
    middleware = AuthMiddleware(_ok, keys, ADMIN)
    transport = httpx.ASGITransport(app=middleware)

    def get(headers: dict[str, str]) -> int:
        async def go() -> int:
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                return (await c.get("/api/v1/query", headers=headers)).status_code

        return asyncio.run(go())

    assert get({"Authorization": "Bearer isk_a"}) == 401
    assert get({}) == 401
    outage.down = True
    assert get({"Authorization": f"Bearer {secret}"}) == 503
    outage.down = False
    assert get({"Authorization": f"Bearer {secret}"}) == 200
    assert middleware.counts() == {
        "unauthorized": 2,
        "too_many_failures": 0,
        "store_unavailable": 1,
        "store_lookups": 3,
    }
