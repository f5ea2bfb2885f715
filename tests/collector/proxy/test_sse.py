"""The stream scanner over real captured streams and chunking edge cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collector.proxy.sse import StreamScanner, content_steps, usage_of


def _scan(data: bytes, size: int) -> tuple[int, object]:
    scanner = StreamScanner()
    steps, usage = 0, None
    for i in range(0, len(data), size):
        found = scanner.feed(data[i : i + size])
        steps += found.steps
        usage = found.usage or usage
    end = scanner.finish()
    return steps + end.steps, end.usage or usage


@pytest.mark.parametrize("size", [1, 7, 64, 100_000])
def test_llamacpp_chat_stream_any_chunking(testdata_dir: Path, size: int) -> None:
    data = (testdata_dir / "captured/engines/llamacpp/chat-stream.sse").read_bytes()
    events = [json.loads(line[6:]) for line in data.split(b"\n") if line.startswith(b"data: {")]
    expected = sum(1 for e in events if e["choices"] and e["choices"][0]["delta"].get("content"))
    steps, _ = _scan(data, size)
    assert steps == expected > 0


def test_llamacpp_completions_stream(testdata_dir: Path) -> None:
    data = (testdata_dir / "captured/engines/llamacpp/completions-stream.sse").read_bytes()
    steps, _ = _scan(data, 50)
    assert steps > 0


def test_role_delta_is_not_content() -> None:
    opening = b'data: {"choices":[{"delta":{"role":"assistant","content":""}}]}\n\n'
    assert StreamScanner().feed(opening).steps == 0
    assert StreamScanner().feed(opening.replace(b'""', b"null")).steps == 0


def test_usage_chunk_and_done() -> None:
    data = (
        b'data: {"choices":[{"delta":{"content":"a"}}],"usage":null}\n\n'
        b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}\n\n'
        b"data: [DONE]\n\n"
    )
    scanner = StreamScanner()
    found = scanner.feed(data)
    assert found.steps == 1
    assert found.usage is not None
    assert (found.usage.input_tokens, found.usage.output_tokens) == (5, 1)
    assert scanner.done


def test_json_lines_and_crlf() -> None:
    data = b'{"response":"Hel","done":false}\r\n{"response":"lo","done":false}\r\n'
    data += b'{"response":"","done":true,"prompt_eval_count":3,"eval_count":2}\r\n'
    found = StreamScanner().feed(data)
    assert found.steps == 2
    assert found.usage is not None
    assert (found.usage.input_tokens, found.usage.output_tokens) == (3, 2)


def test_sse_comments_and_fields_are_skipped() -> None:
    data = b': keep-alive\n\nevent: message\nid: 1\ndata: {"token":{"text":"x","special":false}}\n\n'
    assert StreamScanner().feed(data).steps == 1


def test_bad_json_is_counted_not_raised() -> None:
    scanner = StreamScanner()
    assert scanner.feed(b"data: {not json\n\n").steps == 0
    assert scanner.skipped_lines == 1


@pytest.mark.parametrize(
    ("payload", "steps"),
    [
        ({"choices": [{"text": "hi"}]}, 1),
        ({"choices": [{"delta": {"tool_calls": [{"index": 0}]}}]}, 1),
        ({"choices": [{"delta": {"reasoning_content": "think"}}]}, 1),
        ({"choices": [{"delta": {"content": "a"}}, {"delta": {"content": "b"}}]}, 2),
        ({"token": {"text": "</s>", "special": True}}, 0),
        ({"content": "x", "stop": False}, 1),
        ({"message": {"content": ""}}, 0),
        ([1, 2], 0),
    ],
)
def test_content_shapes(payload: object, steps: int) -> None:
    assert content_steps(payload) == steps


def test_usage_of_whole_bodies(testdata_dir: Path) -> None:
    body = json.loads((testdata_dir / "captured/engines/llamacpp/chat-nonstream.json").read_text())
    usage = usage_of(body)
    assert usage is not None
    assert usage.output_tokens == body["usage"]["completion_tokens"]
    assert usage_of({"details": {"generated_tokens": 4}}) is not None
    assert usage_of({"nothing": 1}) is None
