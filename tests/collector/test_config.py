"""collector.config: defaults from the guide, YAML mapping, errors that name the YAML path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from collector.config import ScrapeConfig, TargetConfig
from model.errors import ConfigError

SECTION = """
interval: 10s
timeout: 5s
scheme: https
verify_tls: false
targets:
  - url: https://10.0.0.7:9090/metrics
    engine: vllm
    service_id: 9f322d5a-b1d2-4370-94df-5a87de27d36e
    service_name: chat
    group_id: g-1
    project_id: p-1
    instance_name: chat-0
    source: chat-0-pod
    role: decode
  - host: 127.0.0.1
    port: 8000
"""


def test_defaults_follow_the_guide() -> None:
    config = ScrapeConfig()
    assert (config.interval_s, config.timeout_s, config.max_body_bytes, config.path) == (
        10.0,
        5.0,
        32768,
        "/metrics",
    )
    assert TargetConfig(host="h", port=8000).allowed_ports == (8000, 9090)


def test_section_from_yaml() -> None:
    config = ScrapeConfig.from_dict(yaml.safe_load(SECTION), "receivers.scrape")
    assert config.scheme == "https"
    assert config.verify_tls is False
    first, second = config.targets
    assert first.engine == "vllm"
    assert first.identity()["role"] == "decode"
    assert first.scrape_url(config) == "https://10.0.0.7:9090/metrics"
    assert second.scrape_url(config) == "https://127.0.0.1:8000/metrics"
    assert second.identity() == {}


def test_unset_timeout_follows_a_short_interval() -> None:
    assert ScrapeConfig.from_dict({"interval": "1s"}, "s").timeout_s == 1.0


def test_durations_in_prometheus_form() -> None:
    config = ScrapeConfig.from_dict({"interval": "1m30s", "timeout": "2500ms"}, "s")
    assert (config.interval_s, config.timeout_s) == (90.0, 2.5)


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"intervall": "10s"}, "receivers.scrape.intervall"),
        ({"interval": "ten"}, "receivers.scrape.interval"),
        ({"interval": "5s", "timeout": "6s"}, "receivers.scrape.timeout"),
        ({"max_body_bytes": "32k"}, "receivers.scrape.max_body_bytes"),
        ({"scheme": "ftp"}, "receivers.scrape.scheme"),
        ({"path": "metrics"}, "receivers.scrape.path"),
        ({"verify_tls": "no"}, "receivers.scrape.verify_tls"),
        ({"targets": {"url": "x"}}, "receivers.scrape.targets"),
        ({"targets": [{"host": "h", "port": 8080}]}, "receivers.scrape.targets[0].port"),
        ({"targets": [{"url": "http://h:8080/metrics"}]}, "receivers.scrape.targets[0].port"),
        ({"targets": [{"url": "http://h/metrics"}]}, "receivers.scrape.targets[0].port"),
        ({"targets": [{"host": "h", "port": 8000, "engine": "x"}]}, "receivers.scrape.targets[0].engine"),
        ({"targets": [{"host": "h", "port": 8000, "pod": "x"}]}, "receivers.scrape.targets[0].pod"),
        ({"targets": [{"host": "h"}]}, "receivers.scrape.targets[0]"),
        ({"targets": [{"url": "h:8000"}]}, "receivers.scrape.targets[0].url"),
        ({"targets": [{"url": "http://h:8000/m", "host": "h"}]}, "receivers.scrape.targets[0].url"),
        (
            {"targets": [{"host": "h", "port": 8000, "service_id": ["a"]}]},
            "receivers.scrape.targets[0].service_id",
        ),
        (
            {"targets": [{"host": "h", "port": 8000, "allowed_ports": "8000"}]},
            "receivers.scrape.targets[0].allowed_ports",
        ),
    ],
)
def test_errors_name_the_yaml_path(data: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError) as err:
        ScrapeConfig.from_dict(data, "receivers.scrape")
    assert str(err.value).startswith(path + ":") or str(err.value).startswith(path + "."), str(err.value)


def test_allowed_ports_can_be_widened() -> None:
    target = TargetConfig.from_dict({"host": "127.0.0.1", "port": 8080, "allowed_ports": [8080]}, "t")
    assert target.port == 8080


def test_numeric_ids_from_yaml_become_strings() -> None:
    target = TargetConfig.from_dict({"host": "h", "port": 9090, "project_id": 42}, "t")
    assert target.identity() == {"project_id": "42"}


def test_validate_rejects_timeout_over_interval() -> None:
    with pytest.raises(ConfigError, match=r"scrape\.timeout"):
        ScrapeConfig(interval_s=1, timeout_s=2).validate()


def test_example_file_loads() -> None:
    path = Path(__file__).parent / "testdata" / "scrape.yaml"
    config = ScrapeConfig.from_dict(yaml.safe_load(path.read_text()), "receivers.scrape")
    assert [t.engine for t in config.targets] == ["vllm", "generic"]
    assert config.targets[0].identity()["role"] == "decode"
