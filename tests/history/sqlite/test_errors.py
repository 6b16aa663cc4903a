"""The SQLite adapter raises the port's errors, never sqlite3's, for what the file does."""

from __future__ import annotations

import sqlite3

import pytest

from cactus_desk.history.port import HistoryStore
from cactus_desk.history.types import HistoryUnavailableError
from tests.payouts.conftest import make_attempt


def test_a_database_error_reaches_callers_as_history_unavailable(store: HistoryStore) -> None:
    record_id = store.create_attempt(make_attempt())
    with sqlite3.connect(store.location) as raw:
        raw.execute("DROP TABLE resends")
    with pytest.raises(HistoryUnavailableError, match="no such table") as caught:
        store.resend_history(record_id)
    assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    assert not isinstance(caught.value, sqlite3.Error)


def test_a_duplicate_request_id_is_told_by_the_constraint_not_the_message(
    store: HistoryStore,
) -> None:
    from cactus_desk.history.types import DuplicateRequestIdError

    first = store.create_attempt(make_attempt())
    with pytest.raises(DuplicateRequestIdError) as caught:
        store.create_attempt(make_attempt())
    assert caught.value.existing_id == first
