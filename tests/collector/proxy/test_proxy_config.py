"""ProxyConfig from YAML shapes; bad values name their key."""

from __future__ import annotations

import pytest

from collector.config import ProxyConfig
from model.errors import ConfigError


def test_defaults_follow_the_guide() -> None:
    config = ProxyConfig.from_dict({})
    assert config.read_timeout_s == 1200  # the guide's largest Request Timeout
    assert config.total_timeout_s == 3600
    assert config.max_body_bytes == 50 << 20
    assert config.host_port == ("127.0.0.1", 9000)


def test_from_yaml() -> None:
    config = ProxyConfig.from_dict(
        {"listen": "0.0.0.0:8080", "upstream": "http://127.0.0.1:8000", "read_timeout": "30s", "max_paths": 8}
    )
    assert config.host_port == ("0.0.0.0", 8080)
    assert config.read_timeout_s == 30
    assert config.max_paths == 8


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"listen": "9000"}, "proxy.listen"),
        ({"listen": "h:99999"}, "proxy.listen"),
        ({"upstream": "127.0.0.1:8000"}, "proxy.upstream"),
        ({"read_timeout": "soon"}, "proxy.read_timeout"),
        ({"max_body_bytes": 0}, "proxy.max_body_bytes"),
        ({"max_paths": "many"}, "proxy.max_paths"),
        ({"buffering": True}, "proxy.buffering"),
        ({"verify_tls": "no"}, "proxy.verify_tls"),
    ],
)
def test_bad_values_name_the_key(data: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        ProxyConfig.from_dict(data)
