"""Who may call what, and which project's data they see.

With auth on, every ``/api`` call carries ``Authorization: Bearer <key>``. The key's project
scopes everything it reads: series (a ``project_id`` matcher is added to every selector, in every
query, label and series call), events and audit traces; what it writes must be its own project's.
Reading the audit trail needs the ``audit`` permission; managing keys needs ``admin``.
"""

from __future__ import annotations

import hmac
import json
from contextvars import ContextVar
from typing import Any

from starlette.concurrency import run_in_threadpool

from model.labels import Matcher, MatchOp
from model.series import Series
from store.api_keys import ALL_PROJECTS, KeyStore, Principal

CURRENT: ContextVar[Principal | None] = ContextVar("infersight_principal", default=None)
OPEN_PATHS = ("/-/healthy", "/-/ready")


def current_project() -> str | None:
    """The project the caller is confined to, or None (auth off, or an all-projects key)."""
    principal = CURRENT.get()
    if principal is None or principal.project_id == ALL_PROJECTS:
        return None
    return principal.project_id


def required_permission(method: str, path: str) -> str:
    if path.startswith("/api/v1/admin") or (path.startswith("/api/v1/rules") and method != "GET"):
        return "admin"
    if path.startswith("/api/v1/audit") and method == "GET":
        return "audit"
    if method == "POST" and path.rstrip("/") in (
        "/api/v1/ingest",
        "/api/v1/write",
        "/api/v1/events",
        "/api/v1/audit/traces",
    ):
        return "write"
    return "read"


class TenantQuerier:
    """Wraps a querier: every read of a confined caller gets ``project_id="<theirs>"`` added."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    @staticmethod
    def _scoped(matchers: list[Matcher]) -> list[Matcher]:
        project = current_project()
        return matchers if project is None else [*matchers, Matcher("project_id", MatchOp.EQ, project)]

    def select(self, matchers: list[Matcher], start_ms: int, end_ms: int) -> list[Series]:
        return self._inner.select(self._scoped(matchers), start_ms, end_ms)

    def label_names(self, matchers: list[Matcher], start_ms: int, end_ms: int) -> list[str]:
        return self._inner.label_names(self._scoped(matchers), start_ms, end_ms)

    def label_values(self, name: str, matchers: list[Matcher], start_ms: int, end_ms: int) -> list[str]:
        return self._inner.label_values(name, self._scoped(matchers), start_ms, end_ms)

    def find_series(self, matchers: list[Matcher], start_ms: int, end_ms: int) -> dict[int, dict[str, str]]:
        return self._inner.find_series(self._scoped(matchers), start_ms, end_ms)

    def select_buckets(
        self, matchers: list[Matcher], start_ms: int, end_ms: int, width_ms: int, columns: Any
    ) -> Any:
        return self._inner.select_buckets(self._scoped(matchers), start_ms, end_ms, width_ms, columns)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class AuthMiddleware:
    """Pure ASGI middleware (so the principal it sets is seen by the endpoint and its threads)."""

    def __init__(self, app: Any, keys: KeyStore, admin_secret: str | None) -> None:
        self.app = app
        self.keys = keys
        self.admin = Principal("admin", "bootstrap admin", ALL_PROJECTS, ("admin",)) if admin_secret else None
        self.admin_secret = admin_secret

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"").decode("latin-1")
        secret = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        principal = None
        if secret and self.admin_secret and hmac.compare_digest(secret, self.admin_secret):
            principal = self.admin
        elif secret:
            principal = await run_in_threadpool(self.keys.lookup, secret)
        if principal is None:
            message = "a valid API key is required (Authorization: Bearer <key>)"
            await _deny(send, 401, "unauthorized", message)
            return
        needed = required_permission(scope["method"], scope["path"])
        if not principal.may(needed):
            await _deny(send, 403, "forbidden", f"this key lacks the {needed!r} permission")
            return
        token = CURRENT.set(principal)
        try:
            await self.app(scope, receive, send)
        finally:
            CURRENT.reset(token)


async def _deny(send: Any, status: int, error_type: str, message: str) -> None:
    body = json.dumps({"status": "error", "errorType": error_type, "error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
