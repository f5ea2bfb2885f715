"""The command line explains itself: a version, a description and an example for each command,
no reStructuredText markup in any help, and each command lists only the flags it uses."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from infersight.cli import _parser, main

SUBCOMMANDS = ("demo", "run", "server", "sidecar", "query", "simulator", "audit", "dashboards", "rules")


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = _parser()
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def _help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 0
    return capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    out = _help(["--version"], capsys)
    assert out.startswith("infersight ")
    assert out.split()[1][0].isdigit() or out.split()[1] == "unknown"


def test_every_command_is_listed_and_documented(capsys: pytest.CaptureFixture[str]) -> None:
    assert set(_subparsers()) == set(SUBCOMMANDS)
    top = _help(["--help"], capsys)
    for name in SUBCOMMANDS:
        assert name in top
    assert "``" not in top


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_command_help_has_a_description_and_an_example(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = _help([name, "--help"], capsys)
    assert "``" not in out
    assert ":class:" not in out
    assert "example" in out.lower()
    assert f"infersight {name}" in out  # the example is a command line of this command
    description = _subparsers()[name].description or ""
    assert len(description) > 40


@pytest.mark.parametrize(
    ("name", "present", "absent"),
    [
        ("demo", {"--listen", "--data", "--duration", "--keep-data", "--config"}, {"--out", "--server"}),
        ("run", {"--listen", "--data", "--config", "--set"}, {"--duration", "--out", "--server"}),
        ("server", {"--listen", "--data", "--config"}, {"--duration", "--out", "--server"}),
        ("sidecar", {"--config", "--set"}, {"--listen", "--data", "--duration", "--out"}),
        (
            "query",
            {"--server", "--key", "--time", "--start", "--end", "--step"},
            {"--config", "--data", "--listen"},
        ),
        ("simulator", {"--port", "--host", "--ttft-median-ms"}, {"--config", "--data", "--listen"}),
        ("audit", {"--server", "--key", "--data", "--config", "--from", "--to"}, {"--listen", "--duration"}),
        ("dashboards", {"--out", "--config"}, {"--listen", "--data", "--duration"}),
        ("rules", {"--out", "--config"}, {"--listen", "--data", "--duration"}),
    ],
)
def test_flags_only_where_they_apply(name: str, present: set[str], absent: set[str]) -> None:
    flags = {option for action in _subparsers()[name]._actions for option in action.option_strings}
    assert present <= flags
    assert not absent & flags


def test_audit_verify_refuses_both_a_server_and_a_folder(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["audit", "verify", "--server", "http://127.0.0.1:1", "--data", str(tmp_path / "d")])
    assert code == 2
    assert "--server" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_audit_verify_never_creates_a_store(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    for folder in (tmp_path / "missing", tmp_path / "empty"):
        if folder.name == "empty":
            folder.mkdir()
        code = main(["audit", "verify", "--data", str(folder)])
        err = capsys.readouterr().err
        assert code == 2
        assert len(err.splitlines()) == 1
        assert "holds no store" in err
        assert "--server" in err
    assert not (tmp_path / "missing").exists()
    assert list((tmp_path / "empty").iterdir()) == []


def test_audit_verify_without_a_server_says_what_to_do(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.infersight.cli_processes import free_port

    code = main(["audit", "verify", "--server", f"http://127.0.0.1:{free_port()}"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.splitlines()) == 1
    assert "cannot reach" in err
    assert "--data" in err


def test_query_without_a_server_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.infersight.cli_processes import free_port

    assert main(["query", "up", "--server", f"http://127.0.0.1:{free_port()}"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert "cannot reach" in err


@pytest.mark.integration
def test_audit_verify_and_query_with_auth_on(tmp_path: Path) -> None:
    from tests.infersight.cli_processes import EXAMPLES, Process, free_port, run_cli

    port, admin = free_port(), "admin-key-" + "x" * 20
    server = f"http://127.0.0.1:{port}"
    # examples/server.yaml reads the admin key from the environment; auth turned on by flag.
    args = ["server", "--config", str(EXAMPLES / "server.yaml"), "--listen", f"127.0.0.1:{port}"]
    env = {"INFERSIGHT_ADMIN_KEY": admin, "INFERSIGHT_DATA": str(tmp_path / "data")}
    proc = Process([*args, "--set", "auth.enabled=true"], tmp_path, "server", **env)
    try:
        proc.wait_http(f"{server}/-/ready")
        refused = run_cli(["audit", "verify", "--server", server], tmp_path)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert len(refused.stderr.splitlines()) == 1
        assert "refused" in refused.stderr
        verified = run_cli(["audit", "verify", "--server", server, "--key", admin], tmp_path)
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert verified.stdout.startswith("audit trail intact")
        queried = run_cli(["query", "vector(1)", "--server", server], tmp_path, INFERSIGHT_KEY=admin)
        assert queried.returncode == 0, queried.stderr
        assert queried.stdout.splitlines()[-1].split() == ["1"]
    finally:
        assert proc.stop() == 0, proc.output()
