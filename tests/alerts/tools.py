"""Locating Debian's Prometheus tools: missing is a skip on a laptop and a failure in CI."""

from __future__ import annotations

import os
import shutil

import pytest


def require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        message = f"{binary} not installed (tools/system-deps.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path
