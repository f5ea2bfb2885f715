"""The demo as a new user runs it twice: each run starts from an empty ``data/demo`` (its events and
audit records are its own) unless ``--keep-data``; a folder the demo did not make is never wiped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from infersight.config import load_config
from infersight.demo import DEMO_MARKER, DemoDataError, prepare_data_folder
from tests.infersight.cli_processes import free_port, run_cli


def _config(data: Path):
    return load_config(None, [f"store.dsn=chdb://{data}"], environ={})


def test_a_demo_folder_is_emptied_with_its_audit_folder(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    assert prepare_data_folder(_config(data)) == data
    (data / "old-part").write_text("x")
    (tmp_path / "demo-audit" / "digests").mkdir(parents=True)
    (tmp_path / "demo-audit" / "digests" / "1.json").write_text("{}")
    (tmp_path / "demo-audit" / "digest.key").write_text("k")
    prepare_data_folder(_config(data))
    assert sorted(p.name for p in data.iterdir()) == [DEMO_MARKER]
    assert not (tmp_path / "demo-audit" / "digests").exists()
    assert not (tmp_path / "demo-audit" / "digest.key").exists()


def test_keep_data_adds_to_it(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    prepare_data_folder(_config(data))
    (data / "old-part").write_text("x")
    prepare_data_folder(_config(data), keep=True)
    assert (data / "old-part").exists()


def test_a_folder_the_demo_did_not_make_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "mine"
    data.mkdir()
    (data / "precious").write_text("x")
    with pytest.raises(DemoDataError, match="--keep-data"):
        prepare_data_folder(_config(data))
    assert (data / "precious").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(DemoDataError, match="not a data folder"):
        prepare_data_folder(_config(tmp_path / "file"))


def _audit_records(stdout: str) -> int:
    match = re.search(r"chain verified: (\d+) records, intact", stdout)
    assert match, stdout
    return int(match.group(1))


@pytest.mark.integration
def test_running_the_demo_twice_starts_afresh(tmp_path: Path) -> None:
    def demo(*extra: str) -> str:
        args = ["demo", "--duration", "3", "--interval", "1s", "--listen", f"127.0.0.1:{free_port()}", *extra]
        done = run_cli(args, tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr[-3000:]
        return done.stdout

    first = _audit_records(demo())
    assert (tmp_path / "data" / "demo" / DEMO_MARKER).is_file()  # data/demo, not the store default
    assert not (tmp_path / "data" / "infersight").exists()
    second = demo()
    assert _audit_records(second) == first
    assert "unless --keep-data" in second
    assert _audit_records(demo("--keep-data")) > first  # the last run's records and its own
