"""Scrape settings and targets: frozen dataclasses, ``validate()``, ``from_dict`` from YAML.

Defaults follow the guide (SEED-SPEC §2): every 10 s, path ``/metrics``, port 8000 or 9090,
bodies of at most 32 KB (32768 bytes), HTTPS preferred but HTTP allowed. Errors are ConfigError
naming the YAML path of the wrong key or value; unknown keys are errors too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from collector.engines import ADAPTERS
from model.durations import parse_duration_ms
from model.errors import ConfigError

ENGINES = tuple(ADAPTERS)  # one list: the adapters that exist
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


# --- ingress proxy, resource readers, health probes ------------------------------------------------

MIB = 1 << 20


def _host_port(text: Any, path: str) -> tuple[str, int]:
    if not isinstance(text, str) or ":" not in text:
        raise ConfigError(f"{path}: expected host:port, got {text!r}")
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"{path}: expected host:port with a port in 0-65535, got {text!r}")
    return host.strip("[]"), int(port)


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """The ingress proxy: ``listen`` → ``upstream``; timeouts and size limit from the guide (§7.11).

    >>> ProxyConfig(listen="127.0.0.1:9000", upstream="http://127.0.0.1:8000").validate()
    """

    listen: str = "127.0.0.1:9000"
    upstream: str = "http://127.0.0.1:8000"
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 1200.0  # "maximum time to wait ... first token", refreshed per chunk
    total_timeout_s: float = 3600.0  # the guide's fixed end-to-end limit
    max_body_bytes: int = 50 * MIB  # the guide's largest Request Size Limit
    flush_interval_s: float = 10.0  # how often the proxy's series go to the pipeline
    max_paths: int = 64  # distinct path label values before "other"
    max_connections: int = 1000  # upstream connection pool
    verify_tls: bool = True  # an https upstream's certificate (off for a self-signed engine in the pod)

    @property
    def host_port(self) -> tuple[str, int]:
        return _host_port(self.listen, "proxy.listen")

    def validate(self, path: str = "proxy") -> None:
        _host_port(self.listen, f"{path}.listen")
        parts = urlsplit(self.upstream)
        if parts.scheme not in SCHEMES or not parts.hostname:
            raise ConfigError(f"{path}.upstream: expected http(s)://host:port, got {self.upstream!r}")
        for name in ("connect_timeout_s", "read_timeout_s", "total_timeout_s", "flush_interval_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{path}.{name.removesuffix('_s')}: must be > 0")
        for name in ("max_body_bytes", "max_paths", "max_connections"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{path}.{name}: must be >= 1, got {getattr(self, name)}")

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str = "proxy") -> ProxyConfig:
        durations = ("connect_timeout", "read_timeout", "total_timeout", "flush_interval")
        ints = ("max_body_bytes", "max_paths", "max_connections")
        data = _check_keys(data, {"listen", "upstream", "verify_tls", *durations, *ints}, path)
        d = cls()
        values: dict[str, Any] = {
            f"{k}_s": _duration_s(data, k, getattr(d, f"{k}_s"), path) for k in durations
        }
        values.update({k: _typed(data, k, int, getattr(d, k), path) for k in ints})
        config = cls(
            listen=_typed(data, "listen", str, d.listen, path),
            upstream=_typed(data, "upstream", str, d.upstream, path),
            verify_tls=_typed(data, "verify_tls", bool, d.verify_tls, path),
            **values,
        )
        config.validate(path)
        return config


GPU_SOURCES = ("auto", "nvml", "dcgm", "none")
NPU_SOURCES = ("auto", "exporter", "npu-smi", "none")
CGROUP_MODES = ("auto", "v1", "v2", "none")


@dataclass(frozen=True, slots=True)
class ResourcesConfig:
    """CPU/memory/network/GPU/NPU readers (``ma_container_*``); ``root`` is where /proc and /sys are.

    >>> ResourcesConfig(interval_s=10, gpu="dcgm", dcgm_url="http://127.0.0.1:9400/metrics").validate()
    """

    interval_s: float = 10.0
    root: str = "/"  # tests point this at a captured tree
    cgroup: str = "auto"
    # a cgroup v2 directory to read instead of the sidecar's own, e.g. the pod's cgroup from a
    # read-only hostPath mount: a sidecar container's own cgroup holds only the sidecar
    cgroup_dir: str = ""
    # another container's group instead of this process's (a Kubernetes containerID such as
    # "containerd://1d3d…", or the bare id): the engine's, looked for beside the sidecar's own group
    container_id: str = ""
    exclude_interfaces: tuple[str, ...] = ("lo",)
    gpu: str = "auto"  # auto: NVML if the library and a driver are there, else nothing
    dcgm_url: str = ""
    npu: str = "auto"  # auto: npu-exporter if npu_exporter_url is set, else npu-smi if on PATH
    npu_exporter_url: str = ""
    npu_smi_command: str = "npu-smi"
    timeout_s: float = 5.0

    def validate(self, path: str = "resources") -> None:
        if self.interval_s <= 0 or not 0 < self.timeout_s <= self.interval_s:
            raise ConfigError(f"{path}.timeout: must be in (0, interval={self.interval_s}s]")
        for name, allowed in (("cgroup", CGROUP_MODES), ("gpu", GPU_SOURCES), ("npu", NPU_SOURCES)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{path}.{name}: must be one of {allowed}, got {getattr(self, name)!r}")
        if self.gpu == "dcgm" and not self.dcgm_url:
            raise ConfigError(f"{path}.dcgm_url: needed when gpu is dcgm")
        if self.container_id:
            # imported here: collector.resources imports this module for ResourcesConfig
            from collector.resources.cgroup_path import container_key

            try:
                container_key(self.container_id)
            except ValueError as exc:
                raise ConfigError(f"{path}.container_id: {exc}") from exc
        if self.npu == "exporter" and not self.npu_exporter_url:
            raise ConfigError(f"{path}.npu_exporter_url: needed when npu is exporter")

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str = "resources") -> ResourcesConfig:
        strings = (
            "root",
            "cgroup",
            "cgroup_dir",
            "container_id",
            "gpu",
            "dcgm_url",
            "npu",
            "npu_exporter_url",
            "npu_smi_command",
        )
        data = _check_keys(data, {"interval", "timeout", "exclude_interfaces", *strings}, path)
        d = cls()
        excluded = data.get("exclude_interfaces", list(d.exclude_interfaces))
        if not isinstance(excluded, list) or not all(isinstance(x, str) for x in excluded):
            raise ConfigError(f"{path}.exclude_interfaces: expected a list of names, got {excluded!r}")
        interval_s = _duration_s(data, "interval", d.interval_s, path)
        config = cls(
            interval_s=interval_s,
            timeout_s=_duration_s(data, "timeout", min(d.timeout_s, interval_s), path),
            exclude_interfaces=tuple(excluded),
            **{k: _typed(data, k, str, getattr(d, k), path) for k in strings},
        )
        config.validate(path)
        return config


PROBE_KINDS = ("startup", "readiness", "liveness")
PROBE_METHODS = ("http", "tcp", "command")
MAX_PROBE_NUMBER = 2147483647  # the guide's upper bound for every probe parameter (§1.9.3)


@dataclass(frozen=True, slots=True)
class ProbeConfig:
    """One health probe with the guide's parameters (SEED-SPEC §7.1; Kubernetes semantics).

    >>> ProbeConfig(kind="readiness", method="http", url="http://127.0.0.1:8000/health").validate()
    """

    kind: str = "readiness"
    method: str = "http"
    url: str = ""  # http: full URL; the guide's default path is /health
    host: str = "127.0.0.1"  # tcp
    port: int = 0  # tcp
    command: tuple[str, ...] = ()  # command: argv, e.g. ("sh", "/home/ma-user/health.sh")
    initial_delay_s: float = 0.0
    period_s: float = 10.0
    timeout_s: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3

    def validate(self, path: str = "probe") -> None:
        if self.kind not in PROBE_KINDS:
            raise ConfigError(f"{path}.kind: must be one of {PROBE_KINDS}, got {self.kind!r}")
        if self.method not in PROBE_METHODS:
            raise ConfigError(f"{path}.method: must be one of {PROBE_METHODS}, got {self.method!r}")
        if self.method == "http" and urlsplit(self.url).scheme not in SCHEMES:
            raise ConfigError(f"{path}.url: expected http(s)://host:port/path, got {self.url!r}")
        if self.method == "tcp" and not 0 < self.port < 65536:
            raise ConfigError(f"{path}.port: must be in 1-65535, got {self.port}")
        if self.method == "command" and not self.command:
            raise ConfigError(f"{path}.command: must not be empty")
        if self.initial_delay_s < 0 or self.period_s <= 0 or self.timeout_s <= 0:
            raise ConfigError(f"{path}: initial_delay must be >= 0, period and timeout > 0")
        for name in ("success_threshold", "failure_threshold"):
            if not 1 <= getattr(self, name) <= MAX_PROBE_NUMBER:
                raise ConfigError(f"{path}.{name}: must be in 1-{MAX_PROBE_NUMBER}")
        if self.kind in ("startup", "liveness") and self.success_threshold != 1:
            raise ConfigError(f"{path}.success_threshold: must be 1 for {self.kind} (as Kubernetes)")

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: str = "probe") -> ProbeConfig:
        durations = ("initial_delay", "period", "timeout")
        data = _check_keys(
            data,
            {"kind", "method", "url", "host", "port", "command", "success_threshold", "failure_threshold",
             *durations},
            path,
        )  # fmt: skip
        d = cls()
        command = data.get("command", [])
        if isinstance(command, str):
            command = ["sh", "-c", command]
        if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
            raise ConfigError(f"{path}.command: expected a string or a list of strings, got {command!r}")
        config = cls(
            kind=_typed(data, "kind", str, d.kind, path),
            method=_typed(data, "method", str, d.method, path),
            url=_typed(data, "url", str, d.url, path),
            host=_typed(data, "host", str, d.host, path),
            port=_typed(data, "port", int, d.port, path),
            command=tuple(command),
            success_threshold=_typed(data, "success_threshold", int, d.success_threshold, path),
            failure_threshold=_typed(data, "failure_threshold", int, d.failure_threshold, path),
            **{f"{k}_s": _duration_s(data, k, getattr(d, f"{k}_s"), path) for k in durations},
        )
        config.validate(path)
        return config


def probes_from_list(data: Any, path: str = "probes") -> tuple[ProbeConfig, ...]:
    """A YAML list of probes; at most one of each kind."""
    if not isinstance(data, list):
        raise ConfigError(f"{path}: expected a list, got {data!r}")
    probes = tuple(ProbeConfig.from_dict(p, f"{path}[{i}]") for i, p in enumerate(data))
    kinds = [p.kind for p in probes]
    for kind in PROBE_KINDS:
        if kinds.count(kind) > 1:
            raise ConfigError(f"{path}: more than one {kind} probe")
    return probes
