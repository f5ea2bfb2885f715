"""Find generated content and token usage in a streamed response, chunk by chunk, without buffering it.

Two framings are understood, told apart line by line:

- server-sent events (``text/event-stream``): ``data: <json>`` lines, an event ends at a blank
  line; ``event:``/``id:``/``retry:`` fields and ``:`` comments are skipped; ``[DONE]`` ends it;
- JSON lines (chunked ``application/x-ndjson`` or ``application/json``): one JSON object a line.

A payload *carries content* when it holds generated text in one of the shapes engines use:
OpenAI chat (``choices[].delta.content`` / ``reasoning_content`` / ``tool_calls``), OpenAI text
completions (``choices[].text``), TGI (``token.text``), llama.cpp's native ``/completion``
(``content``) and Ollama (``response``, ``message.content``). OpenAI's opening role-only delta
(``"content": ""`` or ``null``) does not: TTFT runs to the first *generated* text (guide T1-56).

A stream's *final event* says it is whole: ``[DONE]`` (OpenAI), or the engine's own last payload
(llama.cpp's native ``"stop": true``, Ollama's ``"done": true``, TGI's ``generated_text``). The
proxy counts a stream that got that far as complete however the client leaves after it.

Token usage comes from the stream when the engine sends it (OpenAI ``usage`` — vLLM sends it with
``stream_options.include_usage`` —, TGI ``details.generated_tokens``, llama.cpp ``tokens_predicted``
/ ``tokens_evaluated``, Ollama ``eval_count`` / ``prompt_eval_count``). The scanner only reads a
copy of each line; the bytes forwarded to the client are never touched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, NamedTuple

MAX_LINE_BYTES = 1 << 20  # a longer line is dropped unparsed (counted), never held without bound


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts an engine reported; ``None`` where it did not say."""

    input_tokens: int | None = None
    output_tokens: int | None = None


def _text(value: Any) -> bool:
    return isinstance(value, str) and value != ""


def _choice_has_content(choice: Any) -> bool:
    if not isinstance(choice, dict):
        return False
    delta = choice.get("delta")
    if isinstance(delta, dict) and (
        _text(delta.get("content")) or _text(delta.get("reasoning_content")) or delta.get("tool_calls")
    ):
        return True
    message = choice.get("message")
    if isinstance(message, dict) and _text(message.get("content")):
        return True
    return _text(choice.get("text"))


def content_steps(obj: Any) -> int:
    """How many generation steps a payload carries: one per choice with text (0 = none)."""
    if not isinstance(obj, dict):
        return 0
    choices = obj.get("choices")
    if isinstance(choices, list) and choices:
        if len(choices) == 1:  # the usual stream chunk
            return 1 if _choice_has_content(choices[0]) else 0
        return sum(1 for c in choices if _choice_has_content(c))
    token = obj.get("token")
    if isinstance(token, dict):  # TGI: special tokens (eos) are not generated text
        return 1 if _text(token.get("text")) and not token.get("special", False) else 0
    message = obj.get("message")
    if isinstance(message, dict):  # Ollama chat
        return 1 if _text(message.get("content")) else 0
    if _text(obj.get("response")) or _text(obj.get("content")):  # Ollama generate, llama.cpp
        return 1
    return 0


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def id_of(obj: dict[str, Any]) -> str:
    """A payload's ``id`` (OpenAI, vLLM, llama.cpp: ``chatcmpl-…``) when it is a short visible string."""
    value = obj.get("id")
    if isinstance(value, str) and 0 < len(value) <= 64 and value.isascii() and value.isprintable():
        return value if " " not in value else ""
    return ""


def is_final(obj: Any) -> bool:
    """Whether a payload is an engine's last one of a stream (OpenAI's is ``[DONE]``, not JSON)."""
    if not isinstance(obj, dict):
        return False
    return obj.get("stop") is True or obj.get("done") is True or isinstance(obj.get("generated_text"), str)


def usage_of(obj: Any) -> Usage | None:
    """Token counts in a payload or a whole (non-streamed) body, or ``None``."""
    if not isinstance(obj, dict):
        return None
    usage = obj.get("usage")
    if isinstance(usage, dict):
        return Usage(_int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens")))
    details = obj.get("details")
    if isinstance(details, dict) and _int(details.get("generated_tokens")) is not None:
        return Usage(_int(details.get("prompt_tokens")), _int(details.get("generated_tokens")))
    if _int(obj.get("tokens_predicted")) is not None:
        return Usage(_int(obj.get("tokens_evaluated")), _int(obj.get("tokens_predicted")))
    if _int(obj.get("eval_count")) is not None:
        return Usage(_int(obj.get("prompt_eval_count")), _int(obj.get("eval_count")))
    return None


class ChunkFindings(NamedTuple):
    """What one network chunk completed: content steps, and usage if a payload reported it."""

    steps: int = 0
    usage: Usage | None = None


NOTHING = ChunkFindings()
_decode = json.JSONDecoder().decode  # json.loads less its per-call encoding detection (SSE is UTF-8)


class StreamScanner:
    """Incremental line scanner over one response stream.

    >>> scanner = StreamScanner()
    >>> scanner.feed(b'data: {"choices":[{"delta":{"content":"Hi"}}]}\\n\\n').steps
    1
    """

    def __init__(self) -> None:
        self._partial = b""
        self._data: list[bytes] = []  # data lines of the SSE event being read
        self.done = False  # [DONE]: nothing more to read
        self.final = False  # the stream's final event arrived ([DONE] or an engine's last payload)
        self.response_id = ""  # the first payload's "id" (OpenAI's chatcmpl-…), for exemplars
        self.skipped_lines = 0

    def feed(self, chunk: bytes) -> ChunkFindings:
        """Scan ``chunk``; report what the payloads it completed carry."""
        if self.done or not chunk:
            return NOTHING
        if (
            not self._partial
            and not self._data
            and chunk.startswith(b"data:")
            and chunk.find(b"\n") == len(chunk) - 2
            and chunk.endswith(b"\n\n")
        ):  # the usual chunk: one whole event of one data line (one token), no line split needed
            payload = chunk[5:-2]
            found = self._inspect(payload[1:] if payload.startswith(b" ") else payload)
            return ChunkFindings(*found) if found[0] or found[1] else NOTHING
        buf = self._partial + chunk if self._partial else chunk
        lines = buf.split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > MAX_LINE_BYTES:
            self._partial = b""
            self.skipped_lines += 1
        steps = 0
        usage: Usage | None = None
        for raw in lines:
            for payload in self._payloads(raw.rstrip(b"\r")):
                s, u = self._inspect(payload)
                steps += s
                usage = u or usage
        return ChunkFindings(steps, usage) if steps or usage else NOTHING

    def finish(self) -> ChunkFindings:
        """The end of the stream: a last line without a newline still counts."""
        rest, self._partial = self._partial, b""
        findings = self.feed(rest + b"\n\n") if rest or self._data else NOTHING
        return findings

    def _payloads(self, line: bytes) -> list[bytes]:
        if line.startswith(b"data:"):
            value = line[5:]
            self._data.append(value[1:] if value.startswith(b" ") else value)
            return []
        if not line:  # SSE: a blank line dispatches the event
            if not self._data:
                return []
            data, self._data = b"\n".join(self._data), []
            return [data]
        if line.startswith((b"{", b"[")):  # JSON lines
            return [line]
        return []  # event:, id:, retry:, comments, anything else

    def _inspect(self, payload: bytes) -> tuple[int, Usage | None]:
        if payload.strip() == b"[DONE]":
            self.done = self.final = True
            return 0, None
        try:
            obj = _decode(payload.decode())
        except ValueError:  # UnicodeDecodeError included
            self.skipped_lines += 1
            return 0, None
        if is_final(obj):
            self.final = True
        if not self.response_id and isinstance(obj, dict):
            self.response_id = id_of(obj)
        return content_steps(obj), usage_of(obj)
