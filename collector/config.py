"""Scrape settings and targets: frozen dataclasses, ``validate()``, ``from_dict`` from YAML.

Defaults follow the guide (SEED-SPEC §2): every 10 s, path ``/metrics``, port 8000 or 9090,
bodies of at most 32 KB (32768 bytes), HTTPS preferred but HTTP allowed. Errors are ConfigError
naming the YAML path of the wrong key or value; unknown keys are errors too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from model.durations import parse_duration_ms
from model.errors import ConfigError

ENGINES = ("vllm", "generic")
SCHEMES = ("http", "https")
DEFAULT_ALLOWED_PORTS = (8000, 9090)  # "Set the metric collection port to 8000 or 9090" (§2)
IDENTITY_FIELDS = ("service_id", "service_name", "group_id", "project_id", "instance_name", "source", "role")


def _check_keys(data: Any, known: set[str], path: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping, got {type(data).__name__}")
    for key in data:
        if key not in known:
            raise ConfigError(f"{path}.{key}: unknown key (known: {', '.join(sorted(known))})")
    return data


def _duration_s(data: dict[str, Any], key: str, default: float, path: str) -> float:
    if key not in data:
        return default
    try:
        return parse_duration_ms(data[key]) / 1000.0
    except ValueError as exc:
        raise ConfigError(f"{path}.{key}: {exc}") from exc


def _typed(data: dict[str, Any], key: str, kind: type, default: Any, path: str) -> Any:
    if key not in data:
        return default
    value = data[key]
    if kind is int and isinstance(value, bool):
        raise ConfigError(f"{path}.{key}: expected an integer, got {value!r}")
    if not isinstance(value, kind):
        raise ConfigError(f"{path}.{key}: expected {kind.__name__}, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class TargetConfig:
    """One scrape target and the identity labels put on its series.

    >>> TargetConfig(host="127.0.0.1", port=8000, engine="vllm", service_id="svc-1").validate()
    """

    url: str = ""  # full URL; otherwise built from host + port and ScrapeConfig's scheme and path
    host: str = ""
    port: int = 0
    engine: str = "generic"
    service_id: str = ""
    service_name: str = ""
    group_id: str = ""
    project_id: str = ""
    instance_name: str = ""
    source: str = ""  # the pod
    role: str = ""  # prefill / decode in a disaggregated deployment; empty = no label
    allowed_ports: tuple[int, ...] = DEFAULT_ALLOWED_PORTS

    def identity(self) -> dict[str, str]:
        """Identity labels with a value (empty ones are left off, as Prometheus drops them)."""
        return {name: getattr(self, name) for name in IDENTITY_FIELDS if getattr(self, name)}

    def scrape_url(self, scrape: ScrapeConfig) -> str:
        if self.url:
            return self.url
        return f"{scrape.scheme}://{self.host}:{self.port}{scrape.path}"

    def _port(self, path: str) -> int:
        if not self.url:
            return self.port
        parts = urlsplit(self.url)
        try:
            port = parts.port
        except ValueError as exc:
            raise ConfigError(f"{path}.url: bad port in {self.url!r}") from exc
        return port if port is not None else (443 if parts.scheme == "https" else 80)

    def validate(self, path: str = "target") -> None:
        if self.engine not in ENGINES:
            raise ConfigError(f"{path}.engine: must be one of {ENGINES}, got {self.engine!r}")
        if self.url:
            parts = urlsplit(self.url)
            if parts.scheme not in SCHEMES or not parts.hostname:
                raise ConfigError(f"{path}.url: expected http(s)://host:port/path, got {self.url!r}")
            if self.host or self.port:
                raise ConfigError(f"{path}.url: give either url or host and port, not both")
        elif not self.host or not 0 < self.port < 65536:
            raise ConfigError(f"{path}: needs url, or host and port (1-65535)")
        if not self.allowed_ports:
            raise ConfigError(f"{path}.allowed_ports: must not be empty")
        port = self._port(path)
        if port not in self.allowed_ports:
            allowed = ", ".join(str(p) for p in self.allowed_ports)
            raise ConfigError(
                f"{path}.port: {port} is not an allowed metrics port ({allowed}); "
                "the guide allows 8000 or 9090, set allowed_ports to widen"
            )

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str) -> TargetConfig:
        known = {"url", "host", "port", "engine", "allowed_ports", *IDENTITY_FIELDS}
        data = _check_keys(data, known, path)
        values: dict[str, Any] = {}
        for key in ("url", "host", "engine", *IDENTITY_FIELDS):
            if key in data:
                value = data[key]
                if isinstance(value, int | float) and not isinstance(value, bool) and key in IDENTITY_FIELDS:
                    value = str(value)  # YAML reads numeric ids as numbers
                if not isinstance(value, str):
                    raise ConfigError(f"{path}.{key}: expected a string, got {value!r}")
                values[key] = value
        values["port"] = _typed(data, "port", int, 0, path)
        if "allowed_ports" in data:
            ports = data["allowed_ports"]
            if not isinstance(ports, list) or not all(
                isinstance(p, int) and not isinstance(p, bool) for p in ports
            ):
                raise ConfigError(f"{path}.allowed_ports: expected a list of port numbers, got {ports!r}")
            values["allowed_ports"] = tuple(ports)
        config = cls(**values)
        config.validate(path)
        return config


@dataclass(frozen=True, slots=True)
class ScrapeConfig:
    """How targets are scraped; ``targets`` is filled when the whole YAML section is read.

    >>> ScrapeConfig(interval_s=10, timeout_s=5).validate()
    """

    interval_s: float = 10.0
    timeout_s: float = 5.0
    max_body_bytes: int = 32768  # "cannot exceed 32 KB" (§2)
    scheme: str = "http"
    verify_tls: bool = True
    path: str = "/metrics"
    stale_markers: bool = True  # write Prometheus staleness markers for vanished series
    targets: tuple[TargetConfig, ...] = field(default=())

    def validate(self, path: str = "scrape") -> None:
        if self.interval_s <= 0:
            raise ConfigError(f"{path}.interval: must be > 0, got {self.interval_s}s")
        if not 0 < self.timeout_s <= self.interval_s:
            raise ConfigError(
                f"{path}.timeout: must be in (0, interval={self.interval_s}s], got {self.timeout_s}s"
            )
        if self.max_body_bytes < 1:
            raise ConfigError(f"{path}.max_body_bytes: must be >= 1, got {self.max_body_bytes}")
        if self.scheme not in SCHEMES:
            raise ConfigError(f"{path}.scheme: must be http or https, got {self.scheme!r}")
        if not self.path.startswith("/"):
            raise ConfigError(f"{path}.path: must start with '/', got {self.path!r}")
        for i, target in enumerate(self.targets):
            target.validate(f"{path}.targets[{i}]")

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str) -> ScrapeConfig:
        known = {
            "interval",
            "timeout",
            "max_body_bytes",
            "scheme",
            "verify_tls",
            "path",
            "stale_markers",
            "targets",
        }
        data = _check_keys(data, known, path)
        targets_data = data.get("targets", [])
        if not isinstance(targets_data, list):
            raise ConfigError(f"{path}.targets: expected a list, got {targets_data!r}")
        interval_s = _duration_s(data, "interval", 10.0, path)
        # as Prometheus: an unset timeout never exceeds the interval
        config = cls(
            interval_s=interval_s,
            timeout_s=_duration_s(data, "timeout", min(5.0, interval_s), path),
            max_body_bytes=_typed(data, "max_body_bytes", int, 32768, path),
            scheme=_typed(data, "scheme", str, "http", path),
            verify_tls=_typed(data, "verify_tls", bool, True, path),
            path=_typed(data, "path", str, "/metrics", path),
            stale_markers=_typed(data, "stale_markers", bool, True, path),
            targets=tuple(
                TargetConfig.from_dict(t, f"{path}.targets[{i}]") for i, t in enumerate(targets_data)
            ),
        )
        config.validate(path)
        return config
