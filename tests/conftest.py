"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from store.open import Store, open_store


@pytest.fixture(scope="session")
def testdata_dir() -> Path:
    """Conformance suites and captured real outputs, kept in the repository (see testdata/README.md)."""
    return Path(__file__).resolve().parent / "testdata"


@pytest.fixture
def chdb_store(tmp_path: Path) -> Iterator[Store]:
    """A fresh embedded store in its own data folder."""
    store = open_store(f"chdb://{tmp_path / 'data'}")
    yield store
    store.close()
