"""One tiny generated history shared by the tests of the benchmark code."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.generate import build

ROWS = 3000


@pytest.fixture(scope="session")
def tiny_history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated history of ``ROWS`` records (built once per test session; do not write)."""
    return build(tmp_path_factory.mktemp("bench") / "history.sqlite3", ROWS)
