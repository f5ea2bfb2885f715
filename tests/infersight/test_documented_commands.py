"""Every ``infersight`` command in a ``sh`` block of README.md and docs/ exists as written: each is
parsed by the real argparse parser (every flag and value it names must be accepted), and the short
ones run for real — ``--help``, ``dashboards``, ``rules``, and ``query`` / ``audit verify`` against
a real server (``INFERSIGHT_SERVER`` points them at it, as the README says). Long-running ones
(``demo``, ``run``, ``server``, ``sidecar``, ``simulator``) are started by test_examples.py and
test_demo_cli.py. ``make`` lines must name a target of the Makefile."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from infersight.cli import _parser
from tests.infersight.cli_processes import REPO, Process, free_port, run_cli

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUN_FOR_REAL = {"dashboards", "rules", "query", "audit", "--help", "--version"}
SH_BLOCK = re.compile(r"```(?:sh|bash|shell)\n(.*?)```", re.S)


def _commands(program: str) -> list[tuple[str, list[str]]]:
    """(where, argv after the program) for each line of a sh block that starts with ``program``."""
    found = []
    for page in PAGES:
        for block in SH_BLOCK.findall(page.read_text()):
            for line in block.splitlines():
                words = shlex.split(line, comments=True)
                if words and Path(words[0]).name == program:
                    found.append((f"{page.name}: {line.strip()}", words[1:]))
    return found


COMMANDS = _commands("infersight")
MAKES = _commands("make")


def test_the_pages_have_commands() -> None:
    # A change of block syntax that hid every command would make the tests below pass vacuously.
    assert len(COMMANDS) >= 10
    assert {argv[0] for _, argv in COMMANDS} >= {"demo", "run", "server", "sidecar", "query", "audit"}
    assert MAKES


@pytest.mark.parametrize(("where", "argv"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_documented_command_parses(where: str, argv: list[str]) -> None:
    if argv in (["--help"], ["--version"]):
        return  # argparse's own actions: they exit; run for real below
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:
        raise AssertionError(f"{where}: argparse refused it (exit {exit_.code})") from None
    if getattr(args, "config", None):
        assert (REPO / args.config).is_file(), f"{where}: no file {args.config}"


@pytest.mark.parametrize(("where", "argv"), MAKES, ids=[w for w, _ in MAKES])
def test_documented_make_target_exists(where: str, argv: list[str]) -> None:
    targets = set(re.findall(r"^([a-z][a-z-]*):", (REPO / "Makefile").read_text(), re.M))
    for word in argv:
        if "=" not in word:
            assert word in targets, f"{where}: no target {word}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("server")
    port = free_port()
    args = ["server", "--data", str(folder / "data"), "--listen", f"127.0.0.1:{port}"]
    proc = Process(args, folder, "server")
    url = f"http://127.0.0.1:{port}"
    try:
        proc.wait_http(f"{url}/-/ready")
        yield url
    finally:
        assert proc.stop() == 0, proc.output()


@pytest.mark.integration
def test_short_documented_commands_run(server: str, tmp_path: Path) -> None:
    ran = 0
    for where, argv in COMMANDS:
        if argv[0] not in RUN_FOR_REAL:
            continue
        done = run_cli(argv, tmp_path, timeout_s=300, INFERSIGHT_SERVER=server)
        assert done.returncode == 0, f"{where}: exit {done.returncode}\n{done.stdout}{done.stderr}"
        assert done.stdout.strip(), where
        if argv[0] == "dashboards":
            assert (tmp_path / "dashboards" / "json" / "service.json").is_file()
        ran += 1
    assert ran >= 5
