"""Configuration: the file and the flags over it; every wrong key or value names its path."""

from __future__ import annotations

from pathlib import Path

import pytest

from infersight.cli import main
from infersight.config import config_from_dict, load_config
from infersight.exporting import ingest_log
from model.errors import ConfigError

GOOD = """
store: {dsn: "chdb://./data/x"}
server: {listen: "127.0.0.1:9999"}
scrape: {interval: 10s, timeout: 5s}
targets:
  - url: http://127.0.0.1:8000/metrics
    engine: vllm
    service_id: svc-1
    source: pod-0
demo: {services: 3, duration_s: 12}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "infersight.yaml"
    path.write_text(text)
    return path


def test_file_is_read_and_flags_override_it(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, GOOD), ["demo.services=5", "server.listen=127.0.0.1:1234"])
    assert config.demo.services == 5
    assert config.demo.duration_s == 12.0
    assert config.server.port == 1234
    assert config.scrape.interval_s == 10.0
    assert config.targets[0].service_id == "svc-1"


def test_defaults_without_a_file() -> None:
    config = load_config(None)
    assert config.scrape.interval_s == 10.0
    assert config.scrape.max_body_bytes == 32 * 1024
    assert config.store.dsn.startswith("chdb://")


@pytest.mark.parametrize(
    ("text", "overrides", "named"),
    [
        ("stor: {}\n", [], "stor"),
        ("store: {dns: x}\n", [], "store.dns"),
        ("server: {listen: nowhere}\n", [], "server.listen"),
        ("demo: {services: 0}\n", [], "demo.services"),
        ("demo: {services: two}\n", [], "demo.services"),
        ("scrape: {timeout: 20s, interval: 10s}\n", [], "scrape"),
        ("targets: [{url: 'http://127.0.0.1:8000/metrics', colour: red}]\n", [], "targets[0].colour"),
        ("targets: [{url: 'http://127.0.0.1:1234/metrics'}]\n", [], "targets[0]"),
        ("log_level: LOUD\n", [], "log_level"),
        ("", ["demo.concurrency=-1"], "demo.concurrency"),
        ("- a\n- b\n", [], "mapping"),
    ],
)
def test_wrong_key_or_value_is_an_error_naming_it(
    tmp_path: Path, text: str, overrides: list[str], named: str
) -> None:
    with pytest.raises(ConfigError, match=named.replace("[", r"\[").replace("]", r"\]")):
        load_config(_write(tmp_path, text), overrides)


def test_cli_reports_config_errors_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["dashboards", "--config", str(_write(tmp_path, "dashboards: {out: x}\n"))])
    assert code == 2
    assert "dashboards.out" in capsys.readouterr().err


def test_cli_writes_dashboards(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboards", "--out", str(tmp_path / "json")]) == 0
    assert (tmp_path / "json" / "service.json").is_file()


def test_environment_references_are_expanded(tmp_path: Path) -> None:
    text = "targets: [{url: 'http://127.0.0.1:8000/metrics', source: '${POD_NAME}'}]\n"
    config = load_config(_write(tmp_path, text), environ={"POD_NAME": "my-llm-0"})
    assert config.targets[0].source == "my-llm-0"
    with pytest.raises(ConfigError, match="POD_NAME"):
        load_config(_write(tmp_path, text), environ={})


def test_cli_audit_verify(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from model.audit import Trace
    from store.audit import AuditLog
    from store.open import open_store

    dsn = f"chdb://{tmp_path / 'data'}"
    store = open_store(dsn)
    AuditLog(store.backend).append([Trace("CreateHpa", "serviceV2", 1_764_000_000_000) for _ in range(3)])
    store.close()
    assert main(["audit", "verify", "--set", f"store.dsn={dsn}"]) == 0
    assert "3 records checked" in capsys.readouterr().out


def test_readme_example_configuration_is_valid(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    example = readme.split("### Configuration", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    config = load_config(
        _write(tmp_path, example), environ={"INFERSIGHT_ADMIN_KEY": "x" * 32, "POD_NAME": "my-llm-pod-0"}
    )
    assert config.proxy is not None
    assert config.probes[0].kind == "readiness"
    assert config.targets[0].engine == "vllm"


def test_ingest_log_settings_reach_the_log(tmp_path: Path) -> None:
    config = config_from_dict(
        {
            "buffer": {
                "dir": str(tmp_path / "buffer"),
                "ingest_block_samples": 5000,
                "ingest_block_age_s": 0.5,
                "ingest_fsync": True,
            }
        }
    )
    log = ingest_log(config, writer=None)  # type: ignore[arg-type]  # never started: nothing written
    assert (log.max_batch_samples, log.max_batch_age_s, log.queue.fsync) == (5000, 0.5, True)


@pytest.mark.parametrize(("key", "value"), [("ingest_block_samples", 0), ("ingest_block_age_s", 0)])
def test_ingest_log_settings_are_checked(key: str, value: float) -> None:
    with pytest.raises(ConfigError, match=f"buffer.{key}"):
        config_from_dict({"buffer": {key: value}})


def test_audit_digests_are_on_by_default_beside_the_data_folder() -> None:
    from infersight.config import audit_paths

    config = config_from_dict({"store": {"dsn": "chdb:///srv/infersight/data"}})
    assert config.audit.digests
    assert audit_paths(config) == (
        Path("/srv/infersight/data-audit/digests"),
        Path("/srv/infersight/data-audit/digest.key"),
    )
    server = config_from_dict({"store": {"dsn": "clickhouse://h:9000/db"}, "audit": {"key_file": "/k"}})
    assert audit_paths(server) == (Path(".infersight/audit/digests"), Path("/k"))


@pytest.mark.parametrize("setting", ["digest_dir", "key_file"])
def test_audit_files_inside_the_database_folder_are_refused(setting: str) -> None:
    from infersight.config import audit_paths

    config = config_from_dict({"store": {"dsn": "chdb:///srv/data"}, "audit": {setting: "/srv/data/x"}})
    with pytest.raises(ConfigError, match=f"audit.{setting}"):
        audit_paths(config)


@pytest.mark.parametrize(
    ("audit", "named"),
    [
        ({"digest_every_records": 0}, "audit.digest_every_records"),
        ({"digest_every_s": 0}, "audit.digest_every_s"),
        ({"digests": "yes"}, "audit.digests"),
        ({"key": "x"}, "audit.key: unknown key"),
    ],
)
def test_bad_audit_settings_are_named(audit: dict, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        config_from_dict({"audit": audit})


def _laughs(levels: int) -> str:
    """A "billion laughs" value: each anchor a list of nine of the one before (9**levels strings)."""
    parts = ['&a0 ["x","x","x","x","x","x","x","x","x"]']
    parts += [f"&a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels + 1)]
    return "[" + ", ".join(parts) + "]"


@pytest.mark.parametrize(
    "text",
    [
        f"store:\n  dsn: {_laughs(12)}\n",  # 9**12 values in a 1 kB file; printing it took minutes
        f"targets:\n  - url: http://127.0.0.1:8000/metrics\n    labels: {{a: {_laughs(12)}}}\n",
        "store: " + "[" * 20_000 + "]" * 20_000 + "\n",  # past Python's recursion limit in the parser
        "store: {dsn: [" * 3_000 + "]}" * 3_000 + "\n",
    ],
    ids=["aliases-in-a-string-setting", "aliases-in-labels", "nested-lists", "nested-maps"],
)
def test_hostile_configuration_files_are_a_short_clear_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_config(path, [], {})
    assert len(str(raised.value)) < 500
    assert main(["server", "--config", str(path)]) == 2  # the CLI's answer to a configuration error


def test_hostile_rule_files_are_a_config_error() -> None:
    from alerts.rules import from_yaml

    for text in (f"groups: {_laughs(12)}\n", "groups: " + "[" * 20_000 + "]" * 20_000, "groups: [[1]]"):
        with pytest.raises(ConfigError):
            from_yaml(text)
