"""The package as a user installs it: ``python -m build`` gives a wheel with no deprecation warning,
the wheel installs into a fresh virtual environment and its ``infersight`` runs a short demo from a
folder outside the source tree — so everything read at run time (the schema SQL) is in the wheel.

No network is needed to install: the fresh environment gets the wheel alone (``--no-deps``) and
sees the dependencies already installed for the tests through a ``.pth`` line, which adds their
folder to ``sys.path`` without running the source tree's editable-install hook in it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from tests.infersight.cli_processes import REPO, free_port

# The packages pyproject.toml ships, read from it so that a new top-level package is copied too.
PACKAGES = tuple(
    include.rstrip("*")
    for include in tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"][
        "find"
    ]["include"]
)


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
    return done


def _source_copy(to: Path) -> Path:
    """What a clone holds of the package, so the build leaves nothing in the shared checkout."""
    to.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, to / name)
    for package in PACKAGES:
        shutil.copytree(REPO / package, to / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return to


def _build_args() -> list[str]:
    """Build isolated (setuptools from the index, as pip does) unless this one is recent enough."""
    args = [sys.executable, "-m", "build", "--wheel"]
    try:
        import setuptools

        if int(setuptools.__version__.split(".")[0]) >= 77:
            args.append("--no-isolation")
    except ImportError:
        pass
    return args


@pytest.mark.slow
@pytest.mark.integration
def test_wheel_installs_and_runs_the_demo_outside_the_source_tree(tmp_path: Path) -> None:
    if importlib.util.find_spec("build") is None:
        pytest.fail("the `build` package is missing: pip install build (it is in the dev extra)")
    source = _source_copy(tmp_path / "src")
    built = _run([*_build_args(), "--outdir", str(tmp_path / "dist"), str(source)], tmp_path)
    output = built.stdout + built.stderr
    assert "deprecat" not in output.lower(), output[-3000:]
    (wheel,) = (tmp_path / "dist").glob("infersight-*.whl")

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path)
    python = venv / "bin" / "python"
    _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)],
        tmp_path,
    )
    site = Path(
        _run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path
        ).stdout.strip()
    )
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "test-deps.pth").write_text("".join(f"{path}\n" for path in sorted(deps)))

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("INFERSIGHT_")}
    program = str(venv / "bin" / "infersight")
    version = _run([program, "--version"], elsewhere, env)
    assert version.stdout.startswith("infersight 0."), version.stdout
    where = _run(
        [str(python), "-c", "import store.schema, infersight.cli; print(store.schema.__file__)"],
        elsewhere,
        env,
    )
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout  # the wheel's, not the checkout's

    demo = _run(
        [program, "demo", "--duration", "5", "--interval", "1s", "--listen", f"127.0.0.1:{free_port()}"],
        elsewhere,
        env,
    )
    assert "infersight demo:" in demo.stdout, demo.stdout + demo.stderr[-3000:]
    assert "intact" in demo.stdout, demo.stdout
    assert (elsewhere / "data" / "demo" / "metadata").is_dir()
    assert (elsewhere / "dashboards" / "json" / "service.json").is_file()
    # The installed package carries the generated dashboards and rules for users without a checkout.
    assert list(site.glob("dashboards/json/*.json"))
    assert list(site.glob("alerts/rules/*.yml"))
    # ... and the browser console's page, scripts and vendored uPlot, served at / by every server.
    assert (site / "console" / "page.html").is_file()
    assert list(site.glob("console/static/js/*.js"))
    assert (site / "console" / "static" / "vendor" / "uplot" / "uPlot.iife.min.js").is_file()
