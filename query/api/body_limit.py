"""A ceiling on every request body, before any route reads it.

Why: routes read bodies whole (``await request.body()``), so without a ceiling one client could make
the server hold gigabytes. A declared ``Content-Length`` over the ceiling is answered 413 at once,
without reading; a chunked body is counted as it arrives and cut off the moment it passes the
ceiling. Remote write's compressed bodies are far smaller than this; its own decoded limit
(``query/api/request_body.py``) bounds what decompression may produce.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_BODY_BYTES = 64 << 20


class BodyTooLarge(Exception):
    """Raised from ``receive`` when a streamed body passes the ceiling."""


def _too_large(limit: int) -> bytes:
    body = {"status": "error", "errorType": "bad_data", "error": f"request body over {limit} bytes"}
    return json.dumps(body).encode()


class BodyLimit:
    """Pure ASGI middleware: 413 in Prometheus' error shape for a body over ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope.get("headers") or ()
        declared = dict(headers).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                await self._answer(
                    send,
                    400,
                    b'{"status":"error","errorType":"bad_data","error":"Content-Length is not a number"}',
                )
                return
            if too_big:
                await self._answer(send, 413, _too_large(self.max_bytes))
                return
        if declared is None and not any(name == b"transfer-encoding" for name, _ in headers):
            await self.app(scope, receive, send)  # no body at all (a dashboard's GETs): nothing to count
            return
        seen = 0
        started = over = False

        async def counting_receive() -> Message:
            nonlocal seen, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    over = True
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if over:
                return  # whatever the app answers to the cut-off (an error page): the 413 below instead
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except Exception:
            if not over:
                raise
        if over and not started:
            await self._answer(send, 413, _too_large(self.max_bytes))

    @staticmethod
    async def _answer(send: Send, status: int, body: bytes) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
