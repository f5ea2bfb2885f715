"""ResourcesConfig from YAML shapes; bad values name their key."""

from __future__ import annotations

import pytest

from collector.config import ResourcesConfig
from model.errors import ConfigError


def test_from_yaml() -> None:
    config = ResourcesConfig.from_dict(
        {
            "interval": "10s",
            "gpu": "dcgm",
            "dcgm_url": "http://127.0.0.1:9400/metrics",
            "exclude_interfaces": [],
        }
    )
    assert config.gpu == "dcgm"
    assert config.exclude_interfaces == ()
    assert config.timeout_s == 5.0


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"gpu": "cuda"}, "resources.gpu"),
        ({"npu": "exporter"}, "resources.npu_exporter_url"),
        ({"gpu": "dcgm"}, "resources.dcgm_url"),
        ({"cgroup": "v3"}, "resources.cgroup"),
        ({"interval": "1s", "timeout": "2s"}, "resources.timeout"),
        ({"exclude_interfaces": "lo"}, "resources.exclude_interfaces"),
        ({"disk": True}, "resources.disk"),
    ],
)
def test_bad_values_name_the_key(data: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        ResourcesConfig.from_dict(data)
