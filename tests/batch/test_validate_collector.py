"""Checking a batch pauses Python's cycle collector only while it runs."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from cactus_desk.batch import validate as batch_validate
from cactus_desk.heap import settle_heap
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


def test_a_checked_batch_goes_to_the_oldest_generation_without_a_young_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_csv(tmp_path / "pay.csv", CARD_HEADERS, card_rows(50))
    passes: list[int] = []
    checking: list[bool] = []
    check_rows = batch_validate.check_rows

    def spying(batch: batch_validate.Batch) -> None:
        checking.append(True)  # the file is read: from here every pass would see the rows
        check_rows(batch)

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and checking:
            passes.append(info["generation"])

    monkeypatch.setattr(batch_validate, "check_rows", spying)
    was = gc.isenabled()
    gc.enable()
    gc.callbacks.append(count)
    try:
        batch = checked(path)
        young = gc.get_count()[0]
        oldest = {id(obj) for obj in gc.get_objects(generation=2)}
    finally:
        gc.callbacks.remove(count)
        (gc.enable if was else gc.disable)()
    assert batch.ok
    assert passes == []  # no collection ran over the rows once they were made
    assert young < 50  # and none is due: the rows are not counted as young
    assert all(id(row) in oldest and id(row.payout) in oldest for row in batch.rows)


def test_a_settled_heap_stays_settled_through_a_batch_check(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "pay.csv", CARD_HEADERS, card_rows(5))
    was = gc.isenabled()
    gc.enable()
    settled = settle_heap()
    try:
        batch = checked(path)
        after = gc.get_freeze_count()
    finally:
        gc.unfreeze()
        (gc.enable if was else gc.disable)()
    assert batch.ok
    assert settled > 0
    assert after == settled  # nothing put back into the passes, and the batch not frozen
