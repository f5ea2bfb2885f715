"""INFERSIGHT_LOG_FORMAT: text by default, one JSON object per line with ``json``, text (and a
warning) for anything else."""

from __future__ import annotations

import json

import pytest
from loguru import logger

from infersight.logs import ENV_VAR, LogFormatError, add_sink, log_format


def test_format_from_the_environment() -> None:
    assert log_format({}) == "text"
    assert log_format({ENV_VAR: " JSON "}) == "json"
    with pytest.raises(LogFormatError, match=ENV_VAR):
        log_format({ENV_VAR: "xml"})


def test_json_lines_carry_the_message_bound_fields_and_the_traceback() -> None:
    lines: list[str] = []
    sink = add_sink(lines.append, "INFO", "json")
    try:
        logger.bind(target="http://t/metrics", service_id="svc").info("scraping {}\nwith a newline", "x")
        logger.debug("below the level")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("it failed")
    finally:
        logger.remove(sink)
    assert len(lines) == 2
    assert all(line.endswith("\n") and line.count("\n") == 1 for line in lines)
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "scraping x\nwith a newline"
    assert (first["level"], first["target"], first["service_id"]) == ("INFO", "http://t/metrics", "svc")
    assert first["time"].endswith("Z")
    assert second["level"] == "ERROR"
    assert "ValueError: boom" in second["exception"]


def test_an_unknown_format_is_text_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "xml")
    lines: list[str] = []
    sink = add_sink(lines.append, "INFO")
    try:
        logger.info("hello")
    finally:
        logger.remove(sink)
    assert "INFERSIGHT_LOG_FORMAT: expected one of text, json" in lines[0]
    assert "| INFO     |" in lines[1]
    assert lines[1].rstrip().endswith("hello")
