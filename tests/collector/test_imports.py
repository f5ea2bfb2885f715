"""The collector imports only itself and model/ from the project (DESIGN: data flows one way)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("exporters", "store", "query", "alerts", "dashboards", "infersight", "simulator")


@pytest.mark.parametrize(
    "path", sorted((ROOT / "collector").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_collector_module_imports_no_later_stage(path: Path) -> None:
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"
