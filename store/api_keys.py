"""API keys scoped to a project: create (the secret is shown once), look up by secret, list, revoke.

Look-ups are cached for a few seconds only: a key revoked by another server process on the same
store stops working within ``POSITIVE_TTL_S``. Unknown secrets are cached too (``NEGATIVE_TTL_S``),
in a bounded table, so a caller trying key after key costs one store query per new secret and
a bounded amount of memory.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

from store.backend import Backend
from store.expiring_cache import ExpiringCache

PERMISSIONS = ("read", "write", "audit", "admin")
ALL_PROJECTS = "*"
POSITIVE_TTL_S = 5.0
NEGATIVE_TTL_S = 30.0
CACHE_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a key of one project (or ``*``, every project) with some permissions."""

    key_id: str
    name: str
    project_id: str
    permissions: tuple[str, ...]
    # The configuration's admin key: the only caller that manages other projects, ``*`` keys,
    # retention and global rules. Keys from the store never are.
    bootstrap: bool = False

    def may(self, permission: str) -> bool:
        return permission in self.permissions or "admin" in self.permissions

    def sees(self, project_id: str) -> bool:
        return self.project_id in (ALL_PROJECTS, project_id)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    """Keys in the store, cached by secret hash for the request path."""

    def __init__(self, backend: Backend, clock: Callable[[], float] = time.monotonic) -> None:
        self._backend = backend
        self._db = backend.database
        self._found: ExpiringCache[str, Principal] = ExpiringCache(CACHE_ENTRIES, POSITIVE_TTL_S, clock)
        self._unknown: ExpiringCache[str, bool] = ExpiringCache(CACHE_ENTRIES, NEGATIVE_TTL_S, clock)
        self.store_lookups = 0  # secrets looked up in the store (cache misses), for tests and metrics

    def create(self, project_id: str, permissions: list[str], name: str = "") -> tuple[Principal, str]:
        """A new key; returns it and its secret (never stored, never shown again)."""
        if not project_id:
            raise ValueError("project_id: required")
        bad = [p for p in permissions if p not in PERMISSIONS]
        if bad or not permissions:
            raise ValueError(f"permissions: each one of {', '.join(PERMISSIONS)} (got {permissions!r})")
        key_id = secrets.token_hex(8)
        secret = f"isk_{secrets.token_urlsafe(32)}"
        principal = Principal(key_id, name, project_id, tuple(permissions))
        self._write(principal, _hash(secret), revoked=False)
        return principal, secret

    def _write(self, principal: Principal, key_hash: str, revoked: bool) -> None:
        now = time.time_ns()
        self._backend.insert(
            "api_keys",
            pa.table(
                {
                    "key_id": [principal.key_id],
                    "key_hash": [key_hash],
                    "name": [principal.name],
                    "project_id": [principal.project_id],
                    "permissions": pa.array([list(principal.permissions)], pa.list_(pa.string())),
                    "created_ms": pa.array([now // 1_000_000], pa.int64()),
                    "revoked": pa.array([int(revoked)], pa.uint8()),
                    "version": pa.array([now], pa.uint64()),
                }
            ),
        )
        self._found.clear()
        self._unknown.clear()  # a new key's secret may have been tried (and cached unknown) before

    def _rows(self, where: str = "1 = 1", params: dict[str, str] | None = None) -> list[dict]:
        return self._backend.query(
            # Aliases differ from the columns: WHERE filters raw rows, the aggregates pick the newest.
            f"SELECT key_id, argMax(key_hash, version) AS k_hash, argMax(name, version) AS k_name, "
            f"argMax(project_id, version) AS k_project, argMax(permissions, version) AS k_perms, "
            f"argMax(revoked, version) AS k_revoked FROM {self._db}.api_keys WHERE {where} GROUP BY key_id",
            params or {},
        ).to_pylist()

    def cached(self, secret: str) -> tuple[bool, Principal | None]:
        """``(True, key or None)`` when the answer for ``secret`` is cached; no store query."""
        key_hash = _hash(secret)
        hit, found = self._found.get(key_hash)
        if hit:
            return True, found
        hit, _ = self._unknown.get(key_hash)
        return hit, None

    def lookup(self, secret: str) -> Principal | None:
        """The live key with this secret, or None."""
        key_hash = _hash(secret)
        hit, found = self._found.get(key_hash)
        if hit or self._unknown.get(key_hash)[0]:
            return found
        self.store_lookups += 1
        rows = [r for r in self._rows("key_hash = {h:String}", {"h": key_hash}) if not r["k_revoked"]]
        if not rows:
            self._unknown.put(key_hash, True)
            return None
        r = rows[0]
        found = Principal(r["key_id"], r["k_name"], r["k_project"], tuple(r["k_perms"]))
        self._found.put(key_hash, found)
        return found

    def list(self, project_id: str | None = None) -> list[Principal]:
        rows = self._rows()
        return [
            Principal(r["key_id"], r["k_name"], r["k_project"], tuple(r["k_perms"]))
            for r in sorted(rows, key=lambda r: r["key_id"])
            if not r["k_revoked"] and (project_id is None or r["k_project"] == project_id)
        ]

    def revoke(self, key_id: str, project_id: str | None = None) -> Principal | None:
        """Revoke a live key (of ``project_id`` only, when given); None when there is none."""
        rows = [r for r in self._rows("key_id = {k:String}", {"k": key_id}) if not r["k_revoked"]]
        if not rows or (project_id is not None and rows[0]["k_project"] != project_id):
            return None
        r = rows[0]
        principal = Principal(r["key_id"], r["k_name"], r["k_project"], tuple(r["k_perms"]))
        self._write(principal, r["k_hash"], revoked=True)
        return principal
