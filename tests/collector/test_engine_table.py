"""docs/engines.md's mapping table is the adapters' tables, generated: the page must match the code."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.engines import ENGINE_MAPS
from collector.engines.mapping import EngineMap
from collector.engines.table import BEGIN, COLUMNS, DOC, END, ROWS, main, render, rewritten, sources


def test_the_page_matches_the_code() -> None:
    assert main(["--check"]) == 0, "docs/engines.md is stale: run python -m collector.engines.table"
    assert render() in DOC.read_text()


def test_every_derived_series_has_a_row_and_every_engine_a_column() -> None:
    rows = {series for series, _ in ROWS}
    for engine, table in ENGINE_MAPS.items():
        assert set(sources(table)) <= rows, engine
    assert set(COLUMNS) == set(ENGINE_MAPS) - {"generic"}


def test_a_changed_table_makes_the_page_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = tmp_path / "engines.md"
    page.write_text(DOC.read_text())
    assert main(["--check", "--doc", str(page)]) == 0
    monkeypatch.setitem(ENGINE_MAPS, "tgi", EngineMap())  # TGI maps nothing any more
    assert main(["--check", "--doc", str(page)]) == 1
    assert main(["--doc", str(page)]) == 0  # regenerated
    assert main(["--check", "--doc", str(page)]) == 0
    assert "`tgi_request_duration`" not in page.read_text()


def test_a_page_without_markers_is_refused() -> None:
    with pytest.raises(ValueError, match="markers"):
        rewritten("# no table here\n")
    assert rewritten(f"a\n{BEGIN}\nold\n{END}\nb\n").startswith("a\n" + BEGIN)
