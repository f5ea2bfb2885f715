"""While the server's store has not been reached since start-up, reads answer 503 ``unavailable``.

``infersight server`` starts without its ClickHouse server (``store.open.PendingBackend``): ingest
and remote write are answered from the ingest log, which inserts once the store is back; every
other API call needs the store, and would otherwise fail deep inside (the PromQL engine reports a
store failure as ``internal``, a 500). So until the store answers, those calls get Prometheus'
error shape with errorType ``unavailable`` and HTTP 503, which tells a client to retry.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

# Answered without the store: the ingest log takes these, and the liveness check.
WITHOUT_STORE = frozenset({"/api/v1/ingest", "/api/v1/write", "/-/healthy"})


class StoreGate:
    """Pure ASGI middleware: ``StoreGate(app, ready=backend.ready)``."""

    def __init__(self, app: ASGIApp, ready: Callable[[], bool]) -> None:
        self.app = app
        self._ready = ready
        self._open = False  # once the store answered, the gate stays open (later outages: 503 per call)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._open or scope["type"] != "http" or scope["path"] in WITHOUT_STORE:
            await self.app(scope, receive, send)
            return
        if self._ready():
            self._open = True
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            {
                "status": "error",
                "errorType": "unavailable",
                "error": "store unavailable: not reached since start-up; retrying",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", b"5"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
