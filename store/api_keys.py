"""API keys scoped to a project: create (the secret is shown once), look up by secret, list, revoke."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

import pyarrow as pa

from store.backend import Backend

PERMISSIONS = ("read", "write", "audit", "admin")
ALL_PROJECTS = "*"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a key of one project (or ``*``, every project) with some permissions."""

    key_id: str
    name: str
    project_id: str
    permissions: tuple[str, ...]

    def may(self, permission: str) -> bool:
        return permission in self.permissions or "admin" in self.permissions

    def sees(self, project_id: str) -> bool:
        return self.project_id in (ALL_PROJECTS, project_id)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    """Keys in the store, cached by secret hash for the request path."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._db = backend.database
        self._lock = threading.Lock()
        self._cache: dict[str, Principal | None] = {}

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
        with self._lock:
            self._cache.clear()

    def _rows(self, where: str = "1 = 1", params: dict[str, str] | None = None) -> list[dict]:
        return self._backend.query(
            # Aliases differ from the columns: WHERE filters raw rows, the aggregates pick the newest.
            f"SELECT key_id, argMax(key_hash, version) AS k_hash, argMax(name, version) AS k_name, "
            f"argMax(project_id, version) AS k_project, argMax(permissions, version) AS k_perms, "
            f"argMax(revoked, version) AS k_revoked FROM {self._db}.api_keys WHERE {where} GROUP BY key_id",
            params or {},
        ).to_pylist()

    def lookup(self, secret: str) -> Principal | None:
        """The live key with this secret, or None."""
        key_hash = _hash(secret)
        with self._lock:
            if key_hash in self._cache:
                return self._cache[key_hash]
        rows = [r for r in self._rows("key_hash = {h:String}", {"h": key_hash}) if not r["k_revoked"]]
        found = None
        if rows:
            r = rows[0]
            found = Principal(r["key_id"], r["k_name"], r["k_project"], tuple(r["k_perms"]))
        with self._lock:
            self._cache[key_hash] = found
        return found

    def list(self, project_id: str | None = None) -> list[Principal]:
        rows = self._rows()
        return [
            Principal(r["key_id"], r["k_name"], r["k_project"], tuple(r["k_perms"]))
            for r in sorted(rows, key=lambda r: r["key_id"])
            if not r["k_revoked"] and (project_id is None or r["k_project"] == project_id)
        ]

    def revoke(self, key_id: str) -> Principal | None:
        rows = [r for r in self._rows("key_id = {k:String}", {"k": key_id}) if not r["k_revoked"]]
        if not rows:
            return None
        r = rows[0]
        principal = Principal(r["key_id"], r["k_name"], r["k_project"], tuple(r["k_perms"]))
        self._write(principal, r["k_hash"], revoked=True)
        return principal
