"""The one configuration file: YAML, one section per component, flags applied over it.

```yaml
store:   {dsn: "chdb://./data/infersight"}
server:  {listen: "127.0.0.1:9091"}
scrape:  {interval: 10s, timeout: 5s, max_body_bytes: 32768}
targets: [{url: "http://127.0.0.1:8000/metrics", engine: vllm, service_id: "...", source: "pod-0"}]
sidecar: {ship_to: "http://127.0.0.1:9091"}
```

Every key is checked: an unknown key or a wrong value stops start-up with a ``ConfigError``
naming its path (``scrape.timeout``), so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alerts.config import AlertsSection
from collector.config import (
    ProbeConfig,
    ProxyConfig,
    ResourcesConfig,
    ScrapeConfig,
    TargetConfig,
    probes_from_list,
)
from collector.cost import CostConfig
from model.errors import ConfigError
from model.slo import Slo, slos_from_list
from model.yaml_text import load_yaml
from query.api.otlp_names import identity_table
from simulator.config import SimulatorConfig

DEMO_DATA = "data/demo"  # the demo's own data folder unless --data or store.dsn names another


def section_from_dict(cls: type, data: Any, path: str) -> Any:
    """Build the frozen dataclass ``cls`` from a mapping, checking keys and scalar types."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    values = {}
    for key, value in data.items():
        if key not in known:
            raise ConfigError(f"{path}.{key}: unknown key (known: {', '.join(sorted(known))})")
        values[key] = _check_type(value, hints[key], f"{path}.{key}")
    try:
        section = cls(**values)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{path}: {err}") from None
    section.validate()
    return section


def _check_type(value: Any, hint: Any, path: str) -> Any:
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None and type(None) in allowed:
        return None
    for kind in allowed:
        if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if kind in (int, str, bool) and type(value) is kind:
            return value
    names = " or ".join(getattr(k, "__name__", str(k)) for k in allowed)
    raise ConfigError(f"{path}: expected {names}, got {value!r}")


@dataclass(frozen=True, slots=True)
class StoreSection:
    """``chdb://PATH`` (embedded, the default) or ``clickhouse://[user:pw@]host:9000/db`` (a server)."""

    dsn: str = "chdb://./data/infersight"
    database: str = "infersight"
    retention_days: int = 15  # metrics; whole daily partitions are dropped past it
    rollup_interval_s: float = 60.0  # how often 1m/5m/15m/1h rollups move on (store.rollups); 0: never
    # Several servers on one cluster: "zk1:2181,zk2:2181" elects one leader for the singletons
    # (infersight/leader.py; needs the `cluster` extra). Empty: this process does them all.
    zookeeper: str = ""
    # Embedded store: the newest points kept in memory too, so the everyday dashboard ranges need
    # no store read (store/recent_points.py): how far back, and at most how many points (16 bytes
    # each); 0 points: off.
    recent_points_hours: float = 6.5
    recent_points_max: int = 32_000_000

    @property
    def recent_points(self) -> tuple[float, int]:
        """``open_store``'s ``recent``: hours and points kept in memory."""
        return self.recent_points_hours, self.recent_points_max

    def validate(self) -> None:
        if self.recent_points_hours <= 0 or self.recent_points_max < 0:
            raise ConfigError("store.recent_points_hours must be > 0 and store.recent_points_max >= 0")
        if not self.dsn.startswith(("chdb://", "clickhouse://")):
            raise ConfigError(f"store.dsn: use chdb://PATH or clickhouse://HOST:PORT/DB, got {self.dsn!r}")
        if self.retention_days < 1:
            raise ConfigError(f"store.retention_days: must be >= 1 (got {self.retention_days})")
        if self.rollup_interval_s < 0:
            raise ConfigError(f"store.rollup_interval_s: must be >= 0 (got {self.rollup_interval_s})")


@dataclass(frozen=True, slots=True)
class BufferSection:
    """The exporter's disk buffer: batches wait here while the store is unreachable."""

    dir: str = ""  # default: <data folder>/buffer
    max_bytes: int = 256 << 20
    max_batch_samples: int = 10_000
    max_batch_age_s: float = 1.0
    # The server's ingest log (remote write, /api/v1/ingest): samples per INSERT, how long a block
    # may wait for more, and whether an answer waits for fsync (off: written, as Prometheus' WAL).
    ingest_block_samples: int = 200_000
    ingest_block_age_s: float = 0.25
    ingest_fsync: bool = False

    def validate(self) -> None:
        for name in ("max_bytes", "max_batch_samples", "ingest_block_samples"):
            if getattr(self, name) < 1:
                raise ConfigError(f"buffer.{name}: must be >= 1 (got {getattr(self, name)})")
        for name in ("max_batch_age_s", "ingest_block_age_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"buffer.{name}: must be > 0 (got {getattr(self, name)})")


@dataclass(frozen=True, slots=True)
class ServerSection:
    listen: str = "127.0.0.1:9091"

    def validate(self) -> None:
        host, _, port = self.listen.rpartition(":")
        if not host or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ConfigError(f"server.listen: expected HOST:PORT, got {self.listen!r}")

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0]

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


@dataclass(frozen=True, slots=True)
class SidecarSection:
    """Where a sidecar ships: ``ship_to`` (the server's API) and, when the server has auth on,
    ``api_key``: a key with the ``write`` permission on the pod's project (``${INFERSIGHT_KEY}``)."""

    ship_to: str = "http://127.0.0.1:9091"
    metrics_listen: str = ""  # e.g. 0.0.0.0:9100: the sidecar's own /metrics for a plain Prometheus
    api_key: str = ""
    # How often a sidecar with a proxy reads the SLOs the server's API holds for its project.
    slos_interval_s: float = 30.0

    def validate(self) -> None:
        if self.slos_interval_s <= 0:
            raise ConfigError(f"sidecar.slos_interval_s: must be > 0 (got {self.slos_interval_s})")
        if not self.ship_to.startswith(("http://", "https://")):
            raise ConfigError(f"sidecar.ship_to: expected an http(s) URL, got {self.ship_to!r}")
        if self.metrics_listen:
            host, _, port = self.metrics_listen.rpartition(":")
            if not host or not port.isdigit():
                raise ConfigError(f"sidecar.metrics_listen: expected HOST:PORT, got {self.metrics_listen!r}")
        if self.api_key and (not self.api_key.isascii() or not self.api_key.isprintable()):
            raise ConfigError("sidecar.api_key: printable ASCII only (it travels in an HTTP header)")


@dataclass(frozen=True, slots=True)
class OtlpExportSection:
    """The sidecar also pushes what it collects to an OTLP/HTTP endpoint (``exporters/otlp.py``):
    ``endpoint`` is the full metrics URL (``http://collector:4318/v1/metrics``); empty: off.
    ``headers`` as ``OTEL_EXPORTER_OTLP_HEADERS`` (``k=v,k2=v2``); the ``genai_*`` values are the
    GenAI semantic-convention attributes on the ``gen_ai.*`` metrics (provider: the first target's
    engine, server address: its host, when empty)."""

    endpoint: str = ""
    headers: str = ""
    timeout_s: float = 10.0
    genai_operation: str = "chat"
    genai_provider: str = ""
    genai_model: str = ""
    server_address: str = ""

    def validate(self) -> None:
        if self.endpoint and not self.endpoint.startswith(("http://", "https://")):
            raise ConfigError(f"otlp_export.endpoint: expected an http(s) URL, got {self.endpoint!r}")
        if self.timeout_s <= 0:
            raise ConfigError(f"otlp_export.timeout_s: must be > 0 (got {self.timeout_s})")
        from exporters.otlp import parse_headers  # the SDK's exporter loads only where it is used

        try:
            parse_headers(self.headers)
        except ValueError as err:
            raise ConfigError(f"otlp_export.headers: {err}") from None


@dataclass(frozen=True, slots=True)
class OtlpSection:
    """The server's OTLP receivers: ``identity`` maps more resource attributes to labels, ahead of
    the defaults (``attr=label,attr2=label2``; docs/opentelemetry.md has the default table)."""

    identity: str = ""

    def validate(self) -> None:
        try:
            identity_table(self.identity)
        except ValueError as err:
            raise ConfigError(f"otlp.identity: {err}") from None


@dataclass(frozen=True, slots=True)
class DashboardsSection:
    out_dir: str = "dashboards/json"

    def validate(self) -> None:
        if not self.out_dir:
            raise ConfigError("dashboards.out_dir: must not be empty")


@dataclass(frozen=True, slots=True)
class AuthSection:
    """API keys and tenancy. ``admin_key`` bootstraps key management (use ``${INFERSIGHT_ADMIN_KEY}``)."""

    enabled: bool = False
    admin_key: str = ""

    def validate(self) -> None:
        # Checked only when it is used: with auth off an unset or short key needs nothing.
        if self.enabled and self.admin_key and len(self.admin_key) < 16:
            raise ConfigError("auth.admin_key: use at least 16 characters")


@dataclass(frozen=True, slots=True)
class KubernetesSection:
    """Watch the Kubernetes events of this pod (in-cluster credentials; needs the ``k8s`` extra)."""

    enabled: bool = False
    namespace: str = "default"
    pod: str = ""  # empty: $POD_NAME, else the host name (Kubernetes names a pod's host after the pod)

    def validate(self) -> None:
        return None


def _kubernetes(data: Any, environ: Mapping[str, str] | None = None) -> KubernetesSection:
    """The section, its pod name filled in when it is on and none was given."""
    section: KubernetesSection = section_from_dict(KubernetesSection, data, "kubernetes")
    if section.enabled and not section.pod:
        env = os.environ if environ is None else environ
        section = dataclasses.replace(section, pod=env.get("POD_NAME") or socket.gethostname())
    return section


@dataclass(frozen=True, slots=True)
class EventsSection:
    """Event detection and retention (the guide: pod events 1 hour, or 7 days; service events a month)."""

    interval_s: float = 10.0
    silent_after_s: float = 60.0
    pod_retention_s: float = 3600.0
    service_retention_s: float = 30 * 86400.0

    def validate(self) -> None:
        for name in ("interval_s", "silent_after_s", "pod_retention_s", "service_retention_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"events.{name}: must be > 0 (got {getattr(self, name)})")


@dataclass(frozen=True, slots=True)
class AuditSection:
    """Signed digests of the audit trail, written outside the database (``store.audit_digests``).

    On by default: without them ``verify`` cannot tell that the newest records were deleted, the
    table emptied or the chain re-hashed. The key never goes into the database; keep a copy of it
    (and ideally of the digests) away from the machine the database runs on.
    """

    digests: bool = True
    digest_dir: str = ""  # default: <data folder>-audit/digests (beside the chDB folder, not in it)
    key_file: str = ""  # default: <data folder>-audit/digest.key, created 0600 on first start
    digest_every_records: int = 100
    digest_every_s: float = 300.0

    def validate(self) -> None:
        if self.digest_every_records < 1:
            raise ConfigError(f"audit.digest_every_records: must be >= 1 (got {self.digest_every_records})")
        if self.digest_every_s <= 0:
            raise ConfigError(f"audit.digest_every_s: must be > 0 (got {self.digest_every_s})")


@dataclass(frozen=True, slots=True)
class DemoSection:
    services: int = 2
    pods_per_service: int = 2
    concurrency: int = 8
    duration_s: float | None = None
    scrape_interval_s: float = 10.0
    # Crash one pod and restart it mid-run, so the demo shows pod and service events.
    chaos: bool = True
    # Put the sidecar's ingress proxy in front of every pod: exact per-request TTFT/TPOT and
    # quantile sketches; without it the guide's series come from the engines' own /metrics.
    proxy: bool = True
    # Slow the first service's first tokens for the first third of the run (slo_misses) so its
    # SLO is missed a known share of the time and its burn-rate alert fires, then resolves.
    slo_misses: bool = True

    def validate(self) -> None:
        for name in ("services", "pods_per_service", "concurrency"):
            if getattr(self, name) < 1:
                raise ConfigError(f"demo.{name}: must be >= 1 (got {getattr(self, name)})")
        if self.duration_s is not None and self.duration_s <= 0:
            raise ConfigError(f"demo.duration_s: must be > 0 (got {self.duration_s})")
        if self.scrape_interval_s <= 0:
            raise ConfigError(f"demo.scrape_interval_s: must be > 0 (got {self.scrape_interval_s})")


@dataclass(frozen=True, slots=True)
class Config:
    store: StoreSection = field(default_factory=StoreSection)
    server: ServerSection = field(default_factory=ServerSection)
    scrape: ScrapeConfig = field(default_factory=ScrapeConfig)
    targets: tuple[TargetConfig, ...] = ()
    sidecar: SidecarSection = field(default_factory=SidecarSection)
    otlp_export: OtlpExportSection = field(default_factory=OtlpExportSection)
    otlp: OtlpSection = field(default_factory=OtlpSection)
    dashboards: DashboardsSection = field(default_factory=DashboardsSection)
    events: EventsSection = field(default_factory=EventsSection)
    auth: AuthSection = field(default_factory=AuthSection)
    kubernetes: KubernetesSection = field(default_factory=KubernetesSection)
    alerts: AlertsSection = field(default_factory=AlertsSection)
    buffer: BufferSection = field(default_factory=BufferSection)
    audit: AuditSection = field(default_factory=AuditSection)
    # The sidecar's other receivers; a section being present turns it on.
    proxy: ProxyConfig | None = None
    resources: ResourcesConfig | None = None
    probes: tuple[ProbeConfig, ...] = ()
    # Service level objectives (model/slo.py) and the pod's price (collector/cost.py).
    slos: tuple[Slo, ...] = ()
    cost: CostConfig | None = None
    demo: DemoSection = field(default_factory=DemoSection)
    # The demo's engines: a few percent of 500s and 429s so "requests by code" shows them.
    simulator: SimulatorConfig = field(
        default_factory=lambda: SimulatorConfig(
            ttft_median_ms=60.0,
            ttft_sigma=0.5,
            itl_median_ms=12.0,
            itl_sigma=0.3,
            output_tokens_min=8,
            output_tokens_max=48,
            error_rate=0.03,
            rate_limit_rate=0.01,
        )
    )
    log_level: str = "INFO"


_SECTIONS: dict[str, Any] = {
    "store": lambda d: section_from_dict(StoreSection, d, "store"),
    "server": lambda d: section_from_dict(ServerSection, d, "server"),
    "scrape": lambda d: ScrapeConfig.from_dict(d or {}, "scrape"),
    "targets": lambda d: _targets(d),
    "sidecar": lambda d: section_from_dict(SidecarSection, d, "sidecar"),
    "otlp_export": lambda d: section_from_dict(OtlpExportSection, d, "otlp_export"),
    "otlp": lambda d: section_from_dict(OtlpSection, d, "otlp"),
    "dashboards": lambda d: section_from_dict(DashboardsSection, d, "dashboards"),
    "events": lambda d: section_from_dict(EventsSection, d, "events"),
    "auth": lambda d: section_from_dict(AuthSection, d, "auth"),
    "kubernetes": lambda d: _kubernetes(d),
    "alerts": lambda d: AlertsSection.from_dict(d, "alerts"),
    "buffer": lambda d: section_from_dict(BufferSection, d, "buffer"),
    "audit": lambda d: section_from_dict(AuditSection, d, "audit"),
    "proxy": lambda d: ProxyConfig.from_dict(d or {}, "proxy"),
    "resources": lambda d: ResourcesConfig.from_dict(d or {}, "resources"),
    "probes": lambda d: probes_from_list(d or [], "probes"),
    "slos": lambda d: slos_from_list(d, "slos"),
    "cost": lambda d: CostConfig.from_dict(d or {}, "cost"),
    "demo": lambda d: section_from_dict(DemoSection, d, "demo"),
    "simulator": lambda d: SimulatorConfig.from_dict(d or {}, "simulator"),
    "log_level": lambda d: _log_level(d),
}


def _targets(data: Any) -> tuple[TargetConfig, ...]:
    if data is None:
        return ()
    if not isinstance(data, list):
        raise ConfigError(f"targets: expected a list, got {type(data).__name__}")
    return tuple(TargetConfig.from_dict(item, f"targets[{i}]") for i, item in enumerate(data))


def _log_level(value: Any) -> str:
    levels = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")
    if not isinstance(value, str) or value.upper() not in levels:
        raise ConfigError(f"log_level: expected one of {', '.join(levels)}, got {value!r}")
    return value.upper()


def config_from_dict(data: Any) -> Config:
    """Validate a whole configuration mapping."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("configuration: expected a mapping at the top level")
    unknown = set(data) - set(_SECTIONS)
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(f"{key}: unknown section (known: {', '.join(_SECTIONS)})")
    return Config(**{key: _SECTIONS[key](value) for key, value in data.items()})


_STEP = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)$")


def _override_path(dotted: str, item: str) -> list[str | int]:
    """``targets[0].engine`` as ``["targets", 0, "engine"]``: keys and list positions."""
    path: list[str | int] = []
    for part in dotted.split("."):
        match = _STEP.match(part)
        if match is None:
            raise ConfigError(f"--set {item!r}: {part!r} is not a key or key[N]")
        path.append(match.group(1))
        path.extend(int(n) for n in re.findall(r"\d+", match.group(2)))
    return path


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``--set section.key=value`` flags (values parsed as YAML scalars) over the file.

    A list item is named by its position, ``targets[0].engine=sglang``; the position just past the
    end adds an item (``targets[1].url=...`` on a file with one target)."""
    for item in overrides:
        dotted, sep, raw = item.partition("=")
        if not sep or not dotted:
            raise ConfigError(f"--set {item!r}: expected section.key=value")
        *parents, leaf = _override_path(dotted, item)
        node: Any = data
        for step, following in zip(parents, [*parents, leaf][1:], strict=True):
            node = _child(node, step, following, item)
        try:
            value = load_yaml(raw)
        except ValueError as err:
            raise ConfigError(f"--set {item!r}: {err}") from None
        _assign(node, leaf, value, item)
    return data


def _child(node: Any, step: str | int, following: str | int, item: str) -> Any:
    fresh: Any = [] if isinstance(following, int) else {}
    if isinstance(step, int):
        if not isinstance(node, list):
            raise ConfigError(f"--set {item!r}: [{step}] names a list item, but that setting is not a list")
        if step == len(node):
            node.append(fresh)
        elif step > len(node):
            raise ConfigError(f"--set {item!r}: [{step}] is past the end of a list of {len(node)}")
        return node[step]
    if not isinstance(node, dict):
        raise ConfigError(f"--set {item!r}: {step} is not inside a section")
    child = node.setdefault(step, fresh)
    if not isinstance(child, dict | list):
        raise ConfigError(f"--set {item!r}: {step} is not a section")
    return child


def _assign(node: Any, leaf: str | int, value: Any, item: str) -> None:
    if isinstance(leaf, int):
        if not isinstance(node, list) or leaf > len(node):
            raise ConfigError(f"--set {item!r}: [{leaf}] is not an item of a list")
        if leaf == len(node):
            node.append(value)
        else:
            node[leaf] = value
    elif isinstance(node, dict):
        node[leaf] = value
    else:
        raise ConfigError(f"--set {item!r}: {leaf} is not inside a section")


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(text: str, environ: Mapping[str, str]) -> str:
    """Replace ``${NAME}`` with the environment's value and ``${NAME:-default}`` with it or, when
    it is unset or empty, the default (as the shell does). Whole-line comments are left alone,
    so a commented-out line never needs its variables set."""

    def value(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if default is not None:
            return environ.get(name) or default
        if name not in environ:
            raise ConfigError(
                f"configuration refers to ${{{name}}}, which is not set in the environment "
                f"(write ${{{name}:-DEFAULT}} for a value to use when it is not set)"
            )
        return environ[name]

    return "".join(
        line if line.lstrip().startswith("#") else _ENV_REF.sub(value, line)
        for line in text.splitlines(keepends=True)
    )


def load_config(
    path: str | Path | None, overrides: list[str] | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Read the YAML file (if any, ``${VAR}`` expanded), apply flag overrides, validate everything."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = load_yaml(expand_env(Path(path).read_text(), os.environ if environ is None else environ))
        except OSError as err:
            raise ConfigError(f"cannot read configuration file {path}: {err.strerror}") from None
        except ValueError as err:
            raise ConfigError(f"{path}: {err}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
        data = loaded or {}
    return config_from_dict(apply_overrides(data, overrides or []))


def state_dir(config: Config) -> Path:
    """Where a process keeps its small files (alert state, API rule groups, the export buffer):
    the embedded store's data folder, or ``.infersight`` beside a server-backed one."""
    from store.open import chdb_path  # the store's parsing; imported late like the store itself

    dsn = config.store.dsn
    return Path(chdb_path(dsn)) if dsn.startswith("chdb://") else Path(".infersight")


def audit_paths(config: Config) -> tuple[Path, Path]:
    """The audit digest folder and signing key file: as configured, or in ``<data folder>-audit``
    beside an embedded store's folder (``.infersight/audit`` for a server store). Neither may lie
    inside the chDB data folder, which is the database itself."""
    from store.open import chdb_path

    dsn, section = config.store.dsn, config.audit
    data = Path(chdb_path(dsn)) if dsn.startswith("chdb://") else None
    base = data.parent / f"{data.name}-audit" if data is not None else Path(".infersight") / "audit"
    digests = Path(section.digest_dir) if section.digest_dir else base / "digests"
    key = Path(section.key_file) if section.key_file else base / "digest.key"
    if data is not None:
        inside = data.resolve()
        for setting, path in (("audit.digest_dir", digests), ("audit.key_file", key)):
            if path.resolve().is_relative_to(inside):
                raise ConfigError(f"{setting}: {path} is inside the database folder {data}; put it outside")
    return digests, key
