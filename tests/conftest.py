"""Fixtures shared by every test folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from store.open import Store, open_store


def _shared_dir() -> Path:
    env = os.environ.get("INFERSIGHT_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The project's shared folder (conformance suites, captured outputs, the guide)."""
    path = _shared_dir()
    if not path.is_dir():
        pytest.fail(f"shared folder not found at {path}; set INFERSIGHT_SHARED")
    return path


@pytest.fixture
def chdb_store(tmp_path: Path) -> Iterator[Store]:
    """A fresh embedded store in its own data folder."""
    store = open_store(f"chdb://{tmp_path / 'data'}")
    yield store
    store.close()
