"""OpenAI wire shapes: chat and text completions, streamed chunks, usage, errors.

Shapes follow OpenAI's API reference as vLLM reproduces it: every chunk carries id, object,
created and model; a chat stream opens with a ``role`` delta; with
``stream_options.include_usage`` the other chunks carry ``"usage": null`` and one last chunk has
empty ``choices`` and the usage; the stream ends with ``data: [DONE]``.
"""

from __future__ import annotations

import json
from typing import Any

CHAT_PATH = "/v1/chat/completions"
COMPLETIONS_PATH = "/v1/completions"

ERROR_TYPES = {
    400: "BadRequestError",
    404: "NotFoundError",
    429: "RateLimitError",
    500: "InternalServerError",
}


def sse(payload: dict[str, Any] | str) -> bytes:
    """One server-sent event: ``data: <json>`` and a blank line."""
    body = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {body}\n\n".encode()


DONE = sse("[DONE]")


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def error_body(status: int, message: str) -> dict[str, Any]:
    """OpenAI's error object; the openai client raises the matching APIStatusError subclass."""
    return {
        "error": {
            "message": message,
            "type": ERROR_TYPES.get(status, "APIError"),
            "param": None,
            "code": status,
        }
    }


class ChunkWriter:
    """Builds the chunks of one response; ``chat`` picks chat.completion vs text_completion shapes.

    >>> w = ChunkWriter("chatcmpl-1", "m", 1700000000, chat=True, include_usage=False)
    >>> w.first("Hi")[:6]
    b'data: '
    """

    def __init__(self, request_id: str, model: str, created: int, *, chat: bool, include_usage: bool) -> None:
        self.request_id = request_id
        self.model = model
        self.created = created
        self.chat = chat
        self.include_usage = include_usage

    def _chunk(self, choice: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.request_id,
            "object": "chat.completion.chunk" if self.chat else "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        }
        if self.include_usage:
            body["usage"] = None
        return body

    def _choice(self, text: str | None, finish_reason: str | None, *, role: bool = False) -> dict[str, Any]:
        if not self.chat:
            return {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish_reason}
        delta: dict[str, Any] = {}
        if role:
            delta["role"] = "assistant"
        if text is not None:
            delta["content"] = text
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}

    def first(self, text: str) -> bytes:
        """The first write: the role delta (chat only) and the first token."""
        head = sse(self._chunk(self._choice("", None, role=True))) if self.chat else b""
        return head + self.token(text)

    def token(self, text: str) -> bytes:
        return sse(self._chunk(self._choice(text, None)))

    def last(self, finish_reason: str, prompt_tokens: int, completion_tokens: int) -> bytes:
        """The finish_reason chunk, the usage chunk if asked for, and ``[DONE]``."""
        out = sse(self._chunk(self._choice(None if self.chat else "", finish_reason)))
        if self.include_usage:
            out += sse(
                {
                    "id": self.request_id,
                    "object": "chat.completion.chunk" if self.chat else "text_completion",
                    "created": self.created,
                    "model": self.model,
                    "choices": [],
                    "usage": usage(prompt_tokens, completion_tokens),
                }
            )
        return out + DONE

    def whole(
        self, text: str, finish_reason: str, prompt_tokens: int, completion_tokens: int
    ) -> dict[str, Any]:
        """A non-streamed response body."""
        if self.chat:
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        else:
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}
        return {
            "id": self.request_id,
            "object": "chat.completion" if self.chat else "text_completion",
            "created": self.created,
            "model": self.model,
            "choices": [choice],
            "usage": usage(prompt_tokens, completion_tokens),
        }
