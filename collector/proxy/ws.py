"""WebSocket upgrades passed through: one upstream connection per client connection, messages relayed.

The guide's services speak WS/WSS too (T1-2, Appendix A). The proxy accepts the client's upgrade
only after the upstream accepted it (with the same subprotocol), then relays every text and binary
message unchanged in both directions until either side closes; the close code goes across. Frames
are re-framed (an ASGI server hands over messages, not frames), message bytes are not changed.
An upstream that refuses the upgrade gives the client a 403 close before accept (what uvicorn
sends for a refused handshake). WebSocket messages are not timed (they are not a request/response)
but counted per direction (``to_upstream`` / ``to_client``) into the ``counts`` the caller passes.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

from loguru import logger

try:  # optional: without the websockets library, upgrades are not accepted (see available())
    from websockets.asyncio.client import ClientConnection, connect
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI
except ImportError:  # pragma: no cover - depends on the environment
    connect = None  # type: ignore[assignment,misc]

Scope = dict[str, Any]


def available() -> bool:
    """Whether WebSocket upgrades can be relayed (the ``websockets`` package is installed)."""
    return connect is not None


# request headers that belong to the handshake itself: the client library writes its own
_HANDSHAKE = frozenset(
    {b"host", b"connection", b"upgrade", b"sec-websocket-key", b"sec-websocket-version",
     b"sec-websocket-extensions", b"sec-websocket-protocol", b"content-length"}
)  # fmt: skip


def _ws_url(upstream: str, scope: Scope) -> str:
    base = "ws" + upstream.removeprefix("http")  # http→ws, https→wss
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
    url = base + raw_path.decode("latin-1")
    query: bytes = scope.get("query_string", b"")
    return url + "?" + query.decode("latin-1") if query else url


async def relay_websocket(
    upstream: str,
    scope: Scope,
    receive: Callable[[], Any],
    send: Callable[[dict[str, Any]], Any],
    counts: Counter[str] | None = None,
) -> None:
    """Serve one ASGI websocket connection by relaying it to ``upstream``; count messages in ``counts``."""
    counts = Counter() if counts is None else counts
    if (await receive())["type"] != "websocket.connect" or connect is None:
        return
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"] if k not in _HANDSHAKE]
    try:
        conn = await connect(
            _ws_url(upstream, scope),
            additional_headers=headers,
            subprotocols=scope.get("subprotocols") or None,
            max_size=None,
            compression=None,
            open_timeout=10,
        )
    except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
        logger.warning("proxy: websocket upgrade to the upstream failed ({})", type(exc).__name__)
        await send({"type": "websocket.close", "code": 1011})
        return
    async with conn:
        await send({"type": "websocket.accept", "subprotocol": conn.subprotocol})
        to_upstream = asyncio.create_task(_client_to_upstream(receive, conn, counts))
        to_client = asyncio.create_task(_upstream_to_client(conn, send, counts))
        _, pending = await asyncio.wait({to_upstream, to_client}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


async def _client_to_upstream(
    receive: Callable[[], Any], conn: ClientConnection, counts: Counter[str]
) -> None:
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            await conn.close(code=message.get("code", 1000))
            return
        if message.get("bytes") is not None:
            await conn.send(message["bytes"])
        elif message.get("text") is not None:
            await conn.send(message["text"])
        else:
            continue
        counts["to_upstream"] += 1


async def _upstream_to_client(
    conn: ClientConnection, send: Callable[[dict[str, Any]], Any], counts: Counter[str]
) -> None:
    try:
        async for data in conn:
            key = "bytes" if isinstance(data, bytes) else "text"
            await send({"type": "websocket.send", key: data})
            counts["to_client"] += 1
    except ConnectionClosed:
        pass
    code = conn.close_code if conn.close_code is not None else 1000
    await send({"type": "websocket.close", "code": code, "reason": conn.close_reason or ""})
