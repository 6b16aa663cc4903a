"""The SQLite store's tests.

The tests of how a page is read share one history across a query's orders; a query's
every match, once one order sorted and kept them (``_KEPT_SET_ROWS``), serves its other
orders instead of the path a test checks. So every test here runs without it, except
those that ask for it (``every_match_kept``).
"""

from __future__ import annotations

import pytest

from cactus_desk.history.sqlite import store as store_module


@pytest.fixture(autouse=True)
def _no_kept_matches(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if "every_match_kept" not in request.fixturenames:
        monkeypatch.setattr(store_module, "_KEPT_SET_ROWS", 0)


@pytest.fixture
def every_match_kept() -> int:
    """A test with the store's own bound on the matches kept all at once."""
    return store_module._KEPT_SET_ROWS
