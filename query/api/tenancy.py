"""Who may call what, and which project's data they see.

With auth on, every ``/api`` call (and every OTLP write, ``/v1/metrics`` and ``/v1/traces``) carries
``Authorization: Bearer <key>``. The key's project
scopes everything it reads: series (a ``project_id`` matcher is added to every selector, in every
query, label and series call), events and audit traces; what it writes must be its own project's.
Reading the audit trail needs the ``audit`` permission; managing keys needs ``admin``.

A key's powers, ``admin`` included, stay inside its project: only the bootstrap admin key of the
configuration manages other projects, ``*`` keys, retention and global rules (``managed_project``).

Failed authentication is cheap: a malformed ``Authorization`` header is a 401 before anything
else; unknown keys are cached for a while (``store/api_keys.py``); and a client address that fails
``MAX_FAILURES`` times in a window is answered 429 without a look-up (``failed_auth.py``).

A key that must be looked up while the store cannot answer is a 503 ``unavailable`` (the caller
retries), not a 500 and not a 401 (the key may well be valid): the bootstrap key and keys still in
the cache keep answering through an outage. ``AuthMiddleware.counts()`` says how many requests were
answered 401, 429 and 503 and how many keys were looked up in the store (the server's own series).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import threading
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from loguru import logger
from starlette.concurrency import run_in_threadpool

from model.labels import Matcher, MatchOp
from model.series import Series, StepWindows
from query.api.failed_auth import FailedAuthLimiter
from query.api.otlp_request import PATHS as OTLP_PATHS
from store.api_keys import ALL_PROJECTS, KeyStore, Principal

CURRENT: ContextVar[Principal | None] = ContextVar("infersight_principal", default=None)
OPEN_PATHS = ("/-/healthy", "/-/ready")
MAX_AUTHORIZATION_BYTES = 4096
# Store look-ups of uncached keys at once: a flood of new keys waits here, not in the threads
# every other request needs.
MAX_CONCURRENT_LOOKUPS = 4
MISSING_KEY = "a valid API key is required (Authorization: Bearer <key>)"


class MalformedAuthorizationError(ValueError):
    """The ``Authorization`` header is not ``Bearer <key>`` with a key of visible ASCII."""


def bearer_secret(values: list[bytes]) -> str:
    """The key of the request's ``Authorization`` header values; MalformedAuthorizationError says why not."""
    if not values:
        raise MalformedAuthorizationError(MISSING_KEY)
    if len(values) > 1:
        raise MalformedAuthorizationError("Authorization: one header expected")
    raw = values[0]
    if len(raw) > MAX_AUTHORIZATION_BYTES:
        raise MalformedAuthorizationError(f"Authorization: longer than {MAX_AUTHORIZATION_BYTES} bytes")
    if not raw.isascii():
        raise MalformedAuthorizationError("Authorization: must be ASCII (Bearer <key>)")
    scheme, _, secret = raw.decode("ascii").strip().partition(" ")
    if scheme.lower() != "bearer":
        raise MalformedAuthorizationError("Authorization: the scheme must be Bearer")
    secret = secret.strip()
    if not secret or not all(0x21 <= ord(c) <= 0x7E for c in secret):
        raise MalformedAuthorizationError("Authorization: the key must be visible ASCII without spaces")
    return secret


def managed_project() -> str | None:
    """The one project the caller may manage; None for the bootstrap key (and with auth off), which
    manages every project and the global settings. A ``*`` key that is not the bootstrap key gets
    ``*``, which no management call accepts: it reads everywhere but manages nothing."""
    principal = CURRENT.get()
    return None if principal is None or principal.bootstrap else principal.project_id


@contextmanager
def confined_to(project_id: str | None) -> Iterator[None]:
    """Reads inside see only ``project_id``'s series (every project's with None), as a read key of
    that project would: how a project's alert rules are evaluated."""
    principal = None if project_id is None else Principal("rules", "rule evaluation", project_id, ("read",))
    token = CURRENT.set(principal)
    try:
        yield
    finally:
        CURRENT.reset(token)


def current_project() -> str | None:
    """The project the caller is confined to, or None (auth off, or an all-projects key)."""
    principal = CURRENT.get()
    if principal is None or principal.project_id == ALL_PROJECTS:
        return None
    return principal.project_id


def required_permission(method: str, path: str) -> str:
    if path.startswith("/api/v1/admin") or (
        path.startswith(("/api/v1/rules", "/api/v1/slos")) and method != "GET"
    ):
        return "admin"
    if path.startswith("/api/v1/audit") and method == "GET":
        return "audit"
    if method == "POST" and path.rstrip("/") in OTLP_PATHS:
        return "write"
    if method == "POST" and path.rstrip("/") in (
        "/api/v1/ingest",
        "/api/v1/ingest/metadata",
        "/api/v1/write",
        "/api/v1/events",
        "/api/v1/audit/traces",
        "/api/v1/sketches",
        "/api/v1/ingest/exemplars",
    ):
        return "write"
    return "read"


# What a write key (a sidecar's) may also read: its project's SLO definitions, which it judges its
# requests against (infersight/server_slos.py). Definitions only, never data.
_WRITERS_MAY_READ = ("/api/v1/slos",)


def writer_may_read(principal: Principal, method: str, path: str) -> bool:
    return method == "GET" and path.rstrip("/") in _WRITERS_MAY_READ and principal.may("write")


class TenantQuerier:
    """Wraps a querier: every read of a confined caller gets ``project_id="<theirs>"`` added."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    @staticmethod
    def _scoped(matchers: list[Matcher]) -> list[Matcher]:
        project = current_project()
        return matchers if project is None else [*matchers, Matcher("project_id", MatchOp.EQ, project)]

    def select(
        self, matchers: list[Matcher], start_ms: int, end_ms: int, windows: StepWindows | None = None
    ) -> list[Series]:
        if windows is None:
            return self._inner.select(self._scoped(matchers), start_ms, end_ms)
        return self._inner.select(self._scoped(matchers), start_ms, end_ms, windows=windows)

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

    def result_version(self) -> Hashable | None:
        """The store's write version with the caller's project: what one project computed is never
        another's (``query.promql.shared_results``)."""
        version = getattr(self._inner, "result_version", None)
        inner = version() if callable(version) else None
        return None if inner is None else (current_project(), inner)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class KeyLookupUnavailableError(Exception):
    """The store could not be asked about a key (down, unreachable, failing)."""


class AuthCounts:
    """Requests the auth middleware answered itself, by outcome; shared with whoever reports them
    (Starlette builds the middleware lazily, so its owner holds this instead). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.unauthorized = 0  # 401
        self.unavailable = 0  # 503: a key to look up while the store could not answer

    def add(self, outcome: str) -> None:
        with self._lock:
            setattr(self, outcome, getattr(self, outcome) + 1)


class AuthMiddleware:
    """Pure ASGI middleware (so the principal it sets is seen by the endpoint and its threads)."""

    def __init__(
        self,
        app: Any,
        keys: KeyStore,
        admin_secret: str | None,
        limiter: FailedAuthLimiter | None = None,
        counts: AuthCounts | None = None,
    ) -> None:
        self.app = app
        self.keys = keys
        self.admin = (
            Principal("admin", "bootstrap admin", ALL_PROJECTS, ("admin",), bootstrap=True)
            if admin_secret
            else None
        )
        self._admin_secret = admin_secret.encode() if admin_secret else b""
        self.limiter = limiter or FailedAuthLimiter()
        self._lookups = asyncio.Semaphore(MAX_CONCURRENT_LOOKUPS)
        self.outcomes = counts or AuthCounts()
        self._lookups_failing = False  # logged once per outage, not once per request

    def counts(self) -> dict[str, int]:
        """Requests refused by outcome (``unauthorized`` 401, ``too_many_failures`` 429,
        ``store_unavailable`` 503) and ``store_lookups``: keys looked up in the store."""
        return auth_counts(self.outcomes, self.limiter, self.keys)

    async def _lookup(self, secret: str) -> Principal | None:
        """The store's answer for ``secret``; ``KeyLookupUnavailableError`` when it gives none."""
        async with self._lookups:
            try:
                found = await run_in_threadpool(self.keys.lookup, secret)
            except Exception as err:  # whatever the store's client raises while it is down
                if not self._lookups_failing:
                    self._lookups_failing = True
                    logger.error(
                        "API keys cannot be looked up ({}: {}); uncached keys are answered 503 until"
                        " the store answers", type(err).__name__, err,
                    )  # fmt: skip
                raise KeyLookupUnavailableError(str(err)) from None
        if self._lookups_failing:
            self._lookups_failing = False
            logger.info("API key look-ups answer again")
        return found

    async def _principal(self, secret: str | None, address: str) -> Principal | int | None:
        """The caller, None (401) or the seconds it must wait (429); ``KeyLookupUnavailableError``
        (503) when the key must be looked up and the store cannot answer."""
        hit = False
        if secret is not None:
            if self.admin is not None and hmac.compare_digest(secret.encode(), self._admin_secret):
                return self.admin
            hit, principal = self.keys.cached(secret)
            if principal is not None:
                return principal
        wait = self.limiter.retry_after_s(address)
        if wait:
            return wait
        if secret is None or hit:
            return None
        return await self._lookup(secret)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not (scope["path"].startswith("/api") or scope["path"] in OTLP_PATHS):
            await self.app(scope, receive, send)
            return
        values = [v for k, v in scope.get("headers") or [] if k.lower() == b"authorization"]
        client = scope.get("client")
        address = str(client[0]) if client else ""
        message = MISSING_KEY
        try:
            secret: str | None = bearer_secret(values)
        except MalformedAuthorizationError as error:
            secret, message = None, str(error)
        try:
            principal = await self._principal(secret, address)
        except KeyLookupUnavailableError:
            self.outcomes.add("unavailable")
            await _deny(
                send, 503, "unavailable", "the store cannot check this API key now; retry later",
                [(b"retry-after", b"5")],
            )  # fmt: skip
            return
        if isinstance(principal, int):
            await _deny(
                send, 429, "too_many_requests", "too many failed authentications from this address",
                [(b"retry-after", str(principal).encode())],
            )  # fmt: skip
            return
        if principal is None:
            self.outcomes.add("unauthorized")
            self.limiter.failed(address)
            await _deny(send, 401, "unauthorized", message, [(b"www-authenticate", b"Bearer")])
            return
        needed = required_permission(scope["method"], scope["path"])
        if not (principal.may(needed) or writer_may_read(principal, scope["method"], scope["path"])):
            await _deny(send, 403, "forbidden", f"this key lacks the {needed!r} permission")
            return
        token = CURRENT.set(principal)
        try:
            await self.app(scope, receive, send)
        finally:
            CURRENT.reset(token)


def auth_counts(outcomes: AuthCounts, limiter: FailedAuthLimiter, keys: KeyStore) -> dict[str, int]:
    """``AuthMiddleware.counts`` from its parts."""
    return {
        "unauthorized": outcomes.unauthorized,
        "too_many_failures": limiter.refused,
        "store_unavailable": outcomes.unavailable,
        "store_lookups": keys.store_lookups,
    }


async def _deny(
    send: Any, status: int, error_type: str, message: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"status": "error", "errorType": error_type, "error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
