"""Where the captured resource outputs live (copies of shared/testdata/captured, see SOURCE.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

TESTDATA = Path(__file__).parent / "testdata"


@pytest.fixture
def testdata() -> Path:
    return TESTDATA
