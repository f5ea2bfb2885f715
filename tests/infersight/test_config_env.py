"""What a new user's file needs: ``${VAR:-default}``, nothing for a section that is off, and
``--set`` reaching list items (``targets[0].engine``)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infersight.config import apply_overrides, expand_env, load_config
from model.errors import ConfigError


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "infersight.yaml"
    path.write_text(text)
    return path


def test_default_when_unset_or_empty() -> None:
    text = "a: ${X:-one}\nb: ${Y:-}\nc: ${Z:-http://h:1/p}\n"
    assert expand_env(text, {}) == "a: one\nb: \nc: http://h:1/p\n"
    assert expand_env(text, {"X": "", "Y": "y", "Z": "z"}) == "a: one\nb: y\nc: z\n"


def test_unset_without_default_names_it_and_the_way_out() -> None:
    with pytest.raises(ConfigError, match=r"\$\{NOPE\}.*\$\{NOPE:-DEFAULT\}"):
        expand_env("a: ${NOPE}\n", {})


def test_whole_line_comments_are_not_expanded() -> None:
    assert expand_env("  # pod: ${POD_NAME}\na: 1\n", {}) == "  # pod: ${POD_NAME}\na: 1\n"


def test_auth_off_needs_no_admin_key(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, "auth: {enabled: false, admin_key: short}\n"), environ={})
    assert not config.auth.enabled
    with pytest.raises(ConfigError, match=r"auth\.admin_key"):
        load_config(_write(tmp_path, "auth: {enabled: true, admin_key: short}\n"), environ={})


def test_kubernetes_pod_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    path = _write(tmp_path, "kubernetes: {enabled: true, pod: '${POD_NAME:-}'}\n")
    monkeypatch.delenv("POD_NAME", raising=False)
    assert load_config(path).kubernetes.pod == socket.gethostname()
    monkeypatch.setenv("POD_NAME", "my-llm-pod-7")
    assert load_config(path).kubernetes.pod == "my-llm-pod-7"
    assert load_config(_write(tmp_path, "kubernetes: {enabled: false}\n")).kubernetes.pod == ""


TWO_TARGETS = """
targets:
  - {url: "http://127.0.0.1:8000/metrics", engine: vllm, source: a}
  - {url: "http://127.0.0.1:9090/metrics", source: b}
probes:
  - {kind: readiness, url: "http://127.0.0.1:8000/health"}
"""


def test_set_reaches_list_items(tmp_path: Path) -> None:
    config = load_config(
        _write(tmp_path, TWO_TARGETS),
        [
            "targets[0].engine=sglang",
            "targets[1].url=http://127.0.0.1:8001/metrics",
            "targets[1].allowed_ports=[8001]",
            "targets[2].url=http://127.0.0.1:8000/metrics",
            "probes[0].url=http://127.0.0.1:8001/health",
        ],
        environ={},
    )
    assert [t.engine for t in config.targets] == ["sglang", "generic", "generic"]
    assert config.targets[1].allowed_ports == (8001,)
    assert config.probes[0].url == "http://127.0.0.1:8001/health"


@pytest.mark.parametrize(
    ("item", "named"),
    [
        ("targets[5].engine=vllm", "past the end"),
        ("targets[0][0]=1", "not an item of a list"),
        ("targets[0].url.x=1", "url is not a section"),
        ("targets.engine=vllm", "not inside a section"),
        ("targets[0]x=1", "not a key"),
        ("=1", "expected"),
        ("targets[0].engine=tachyon", "targets[0].engine"),
    ],
)
def test_bad_set_is_named(tmp_path: Path, item: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
        load_config(_write(tmp_path, TWO_TARGETS), [item], environ={})


_key = st.from_regex(r"[a-z_]{1,6}(\[[0-9]\])?", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(st.lists(_key, min_size=1, max_size=4).map(".".join), st.text(max_size=20))
def test_any_set_is_applied_or_a_config_error(dotted: str, value: str) -> None:
    """A hostile --set never raises anything but ConfigError (or YAML's own error for its value)."""
    import yaml

    data = {"targets": [{"url": "x"}], "scrape": {"interval": "10s"}}
    with contextlib.suppress(ConfigError, yaml.YAMLError):
        apply_overrides(data, [f"{dotted}={value}"])
