"""Checking a batch pauses Python's cycle collector only while it runs."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from cactus_desk.batch import validate as batch_validate
from tests.batch.files import CARD_HEADERS, card_rows, write_csv
from tests.batch.test_validate import checked


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_off_while_rows_are_checked_and_as_before_afterwards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, enabled: bool
) -> None:
    seen: list[bool] = []
    check_rows = batch_validate.check_rows

    def spying(batch: batch_validate.Batch) -> None:
        seen.append(gc.isenabled())
        check_rows(batch)

    monkeypatch.setattr(batch_validate, "check_rows", spying)
    path = write_csv(tmp_path / "pay.csv", CARD_HEADERS, card_rows(3))
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        batch = checked(path)
        after = gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()
    assert batch.ok
    assert seen == [False]
    assert after is enabled
