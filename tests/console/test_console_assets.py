"""The console as served, without a browser: the page and its assets, what it may load, what it
is told, and what its views hold."""

from __future__ import annotations

import ast
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from console.serve import PACKAGE, STATIC
from console.views import LEVELS, console_settings
from query.api.app import AuthSettings, create_app
from store.open import Store

ADMIN = "console-assets-admin-key"
SVG_NAMESPACE = "http://www.w3.org/2000/svg"  # a name, never fetched
# Table 1-58's parameters, as the service level's panel titles name them.
T1_58 = (
    "Service requests",
    "Service request QPS",
    "Connections",
    "Service request latency",
    "Time to first token",
    "Post-first-token latency",
    "Service token increment",
    "Service input tokens",
    "Output tokens",
    "Used CPU",
    "CPU usage",
    "Used memory",
    "Memory usage",
    "GPU usage",
    "GPU memory",
    "NPU usage",
    "NPU memory",
    "Network throughput",
)
RESOURCES = {"Used CPU", "CPU usage", "Used memory", "Memory usage", "GPU usage", "GPU memory"}
RESOURCES |= {"Used GPU memory", "NPU usage", "NPU memory", "Used NPU memory", "Network throughput"}


@pytest.fixture
def client(chdb_store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(chdb_store, auth=AuthSettings(True, ADMIN))) as client:
        yield client


def own_files() -> list[str]:
    """The console's own page, scripts and styles (the vendored uPlot apart)."""
    paths = [PACKAGE / "page.html", *STATIC.rglob("*")]
    return [str(p) for p in paths if p.is_file() and "vendor" not in p.parts]


def test_the_page_is_open_its_data_is_not(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "connect-src 'self'" in csp
    settings = re.search(r'<script type="application/json" id="settings">(.*?)</script>', page.text)
    assert settings is not None
    assert '"auth":true' in settings.group(1)
    assert client.get("/api/v1/query", params={"query": "up"}).status_code == 401


def test_every_asset_the_page_names_is_served(client: TestClient) -> None:
    page = client.get("/").text
    named = re.findall(r'(?:src|href)="(/console/[^"]+)"', page)
    assert len(named) >= 4, named
    scripts = [p for p in STATIC.rglob("*.js") if "vendor" not in p.parts]
    imports = {m for p in scripts for m in re.findall(r'from "\./([\w.]+)"', p.read_text())}
    named += [f"/console/js/{name}" for name in imports]
    for path in named:
        response = client.get(path)
        assert response.status_code == 200, path
        if path.endswith(".js"):
            assert "javascript" in response.headers["content-type"], path
    assert client.get("/console/../pyproject.toml").status_code == 404
    assert client.get("/console/%2e%2e/serve.py").status_code == 404


def test_nothing_is_loaded_from_elsewhere() -> None:
    """No CDN, no font service, no remote script: not one absolute URL in the console's own files."""
    for path in own_files():
        text = Path(path).read_text(encoding="utf-8").replace(SVG_NAMESPACE, "")
        assert not re.search(r"(?<![\w.])(?:https?:)?//[\w-]+\.[\w.-]+", text), path
    vendored = (STATIC / "vendor" / "uplot" / "uPlot.iife.min.js").read_text()
    # the licence banner names the project; nothing else
    assert re.findall(r"https?://[^\s\"')]+", vendored) == ["https://github.com/leeoniya/uPlot"]


def test_the_vendored_uplot_is_the_one_its_source_note_names() -> None:
    folder = STATIC / "vendor" / "uplot"
    note = (folder / "SOURCE.md").read_text()
    assert "MIT" in (folder / "LICENSE").read_text()
    for name in ("uPlot.iife.min.js", "uPlot.min.css", "LICENSE"):
        digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        assert f"{digest}  {name}" in note, name


def test_the_service_level_shows_table_1_58_and_lower_levels_only_resources() -> None:
    views = console_settings()["views"]
    assert set(views) == set(LEVELS)
    service = [p["title"] for row in views["service"] for p in row["panels"]]
    assert set(T1_58) <= set(service)
    for level in ("deployment", "instance", "pod"):
        titles = {p["title"] for row in views[level] for p in row["panels"]}
        assert titles == RESOURCES, level
    for level, rows in views.items():
        for row in rows:
            for panel in row["panels"]:
                assert panel["queries"], (level, panel["title"])
                assert all("$service_id" in q["expr"] for q in panel["queries"]), (level, panel["title"])


def test_the_console_offers_the_guides_periods_and_spans() -> None:
    settings = console_settings()
    assert settings["periods"] == ["1m", "5m", "15m", "1h"]
    assert settings["spans"][0] == "15m"
    assert settings["spans"][-1] == "15d"
    assert settings["refresh"] == "1m"


def test_the_console_has_no_data_path_of_its_own() -> None:
    """The console's Python serves files and the dashboards' panel definitions; every figure the
    pages show comes through the HTTP APIs, so it imports nothing that reads or writes data."""
    forbidden = ("store", "query", "exporters", "collector", "alerts", "infersight", "simulator")
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not [n for n in names if n.split(".")[0] in forbidden], f"{path.name} imports {names}"
