"""Failed authentication is cheap and never a 500: malformed ``Authorization`` headers, unknown
keys cached in bounded tables, revocation seen within the cache's TTL by another process, and a
429 for an address that keeps failing. Against a real uvicorn server where the wire matters."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from query.api.app import AuthSettings, create_app
from query.api.failed_auth import FailedAuthLimiter
from query.api.tenancy import MalformedAuthorizationError, bearer_secret
from store.api_keys import NEGATIVE_TTL_S, POSITIVE_TTL_S, KeyStore
from store.expiring_cache import ExpiringCache
from store.open import Store
from tests.query.api.live_server import live_server

ADMIN = "hardening-admin-key"
BOOT = {"Authorization": f"Bearer {ADMIN}"}


def _server(store: Store, max_failures: int = 1_000_000) -> Iterator[str]:
    auth = AuthSettings(enabled=True, admin_key=ADMIN, max_failures=max_failures)
    with live_server(create_app(store, auth=auth)) as url:
        yield url


@pytest.fixture
def url(chdb_store: Store) -> Iterator[str]:
    yield from _server(chdb_store)


def _raw(url: str, header_lines: list[bytes]) -> tuple[int, bytes]:
    """One request with the header lines exactly as given (bytes httpx would refuse to send)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=60) as sock:
        request = b"GET /api/v1/query?query=1 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n"
        sock.sendall(request + b"".join(line + b"\r\n" for line in header_lines) + b"\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _assert_401(status: int, body: bytes) -> None:
    assert status == 401, body
    parsed = httpx.Response(200, content=body).json()
    assert parsed["status"] == "error"
    assert parsed["errorType"] == "unauthorized"
    assert parsed["error"]


MALFORMED = [
    b"Authorization: Bearer cl\xc3\xa9",  # UTF-8 key: was a 500 (hmac.compare_digest on str)
    b"Authorization: Bearer \xff\xfe",
    b"Authorization: \xe9",
    b"Authorization: Basic dXNlcjpwYXNz",
    b"Authorization: Bearer",
    b"Authorization: Bearer    ",
    b"Authorization: ",
    b"Authorization: bearer a b",
    b"Authorization: Bearer\tkey",
    b"Authorization: Bearer " + b"k" * 100_000,
    b"Authorization: Token abc",
]


@pytest.mark.parametrize("line", MALFORMED, ids=range(len(MALFORMED)))
def test_a_malformed_authorization_header_is_a_401_in_prometheus_shape(url: str, line: bytes) -> None:
    status, body = _raw(url, [line])
    if status == 431:  # uvicorn's own limit on header size answered before the app: still no 500
        return
    _assert_401(status, body)


def test_two_authorization_headers_are_refused_even_with_a_valid_one(url: str) -> None:
    _assert_401(*_raw(url, [f"Authorization: Bearer {ADMIN}".encode(), b"Authorization: Bearer x"]))
    assert _raw(url, [f"Authorization: Bearer {ADMIN}".encode()])[0] == 200


_HEADER_BYTES = st.binary(max_size=300).map(
    lambda b: bytes(c for c in b if c == 0x09 or 0x20 <= c <= 0x7E or c >= 0x80).strip(b" \t")
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_HEADER_BYTES, scheme=st.sampled_from([b"", b"Bearer ", b"bearer ", b"BEARER\t", b"Basic "]))
def test_fuzz_authorization_values_are_401_never_500(url: str, value: bytes, scheme: bytes) -> None:
    status, body = _raw(url, [b"Authorization: " + scheme + value])
    _assert_401(status, body)


@given(value=st.binary(max_size=200))
@settings(max_examples=300, deadline=None)
def test_bearer_secret_answers_a_key_or_says_why(value: bytes) -> None:
    why = ""
    try:
        secret = bearer_secret([value])
    except MalformedAuthorizationError as error:
        why, secret = str(error), ""
    assert why or secret
    assert secret.isascii()
    assert secret.isprintable()
    assert " " not in secret


def test_an_unknown_key_is_looked_up_once_and_the_cache_is_bounded(chdb_store: Store) -> None:
    now = [0.0]
    keys = KeyStore(chdb_store.backend, clock=lambda: now[0])
    for _ in range(5):
        assert keys.lookup("isk_unknown") is None
    assert keys.store_lookups == 1
    now[0] += NEGATIVE_TTL_S + 1  # a key created elsewhere with this secret is seen after the TTL
    assert keys.lookup("isk_unknown") is None
    assert keys.store_lookups == 2
    cache: ExpiringCache[str, bool] = ExpiringCache(3, 60.0)
    for i in range(100):
        cache.put(str(i), True)
    assert len(cache) == 3
    assert cache.get("99") == (True, True)
    assert cache.get("0") == (False, None)


def test_a_key_revoked_by_another_process_stops_working_within_the_ttl(chdb_store: Store) -> None:
    now = [0.0]
    here = KeyStore(chdb_store.backend, clock=lambda: now[0])
    elsewhere = KeyStore(chdb_store.backend)  # another server process on the same store
    principal, secret = elsewhere.create("p1", ["read"])
    assert here.lookup(secret) == principal
    elsewhere.revoke(principal.key_id)
    assert here.lookup(secret) == principal  # still cached: at most POSITIVE_TTL_S more
    now[0] += POSITIVE_TTL_S + 0.001
    assert here.lookup(secret) is None


def test_a_project_key_cannot_revoke_by_key_id_in_another_project(chdb_store: Store) -> None:
    keys = KeyStore(chdb_store.backend)
    principal, secret = keys.create("p1", ["read"])
    assert keys.revoke(principal.key_id, "p2") is None
    assert keys.lookup(secret) == principal
    assert keys.revoke(principal.key_id, "p1") == principal


def test_an_address_that_keeps_failing_gets_429_but_known_keys_still_work(chdb_store: Store) -> None:
    for url in _server(chdb_store, max_failures=5):
        with httpx.Client(base_url=url, timeout=60) as client:
            created = client.post(
                "/api/v1/admin/keys", json={"project_id": "p1", "permissions": ["read"]}, headers=BOOT
            ).json()["data"]["key"]
            good = {"Authorization": f"Bearer {created}"}
            assert client.get("/api/v1/query", params={"query": "1"}, headers=good).status_code == 200
            bad = {"Authorization": "Bearer isk_guess"}
            codes = [
                client.get("/api/v1/query", params={"query": "1"}, headers=bad).status_code for _ in range(5)
            ]
            assert codes == [401] * 5
            for headers in (bad, {"Authorization": "Bearer isk_other"}, {}):
                refused = client.get("/api/v1/query", params={"query": "1"}, headers=headers)
                assert refused.status_code == 429
                assert int(refused.headers["retry-after"]) >= 1
                assert refused.json()["status"] == "error"
            # the bootstrap key and a key already known are not looked up: they still answer
            assert client.get("/api/v1/query", params={"query": "1"}, headers=good).status_code == 200
            assert client.get("/api/v1/admin/keys", headers=BOOT).status_code == 200


def test_the_failure_window_ends_and_the_table_is_bounded() -> None:
    now = [0.0]
    limiter = FailedAuthLimiter(max_failures=2, window_s=10, max_addresses=3, clock=lambda: now[0])
    limiter.failed("a")
    assert limiter.retry_after_s("a") == 0
    limiter.failed("a")
    assert limiter.retry_after_s("a") == 10
    now[0] = 9.5
    assert limiter.retry_after_s("a") == 1
    now[0] = 10.0
    assert limiter.retry_after_s("a") == 0
    for address in ("b", "c", "d", "e"):
        limiter.failed(address)
        limiter.failed(address)
    assert len(limiter._windows) == 3
    assert limiter.retry_after_s("b") == 0  # forgotten first
    assert limiter.retry_after_s("e") > 0
