"""The batch screens for ``ui/screenshots.py``: the grid with errors, the progress mid-batch
(paused) and the finished batch with its report buttons, all on the embedded sandbox."""

from __future__ import annotations

import csv
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QApplication, QWidget

from cactus_desk.sandbox import Fault
from cactus_desk.ui.batch.dialog import BatchDialog
from cactus_desk.ui.main_window import MainWindow

CARD = "4242424242424242"
HEADERS = ["site_login", "amount", "currency", "method", "card_number", "card_holder"]


def _settle(until: Callable[[], bool] = lambda: True, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    for _ in range(5):
        QApplication.processEvents()
    while not until():
        if time.monotonic() > deadline:
            raise TimeoutError("the batch dialog did not settle in time")
        QApplication.processEvents()
        time.sleep(0.01)


def _save(widget: QWidget, path: Path) -> Path:
    _settle()
    if not widget.grab().save(str(path)):
        raise OSError(f"could not write {path}")
    return path


def _rows() -> list[list[str]]:
    rows = [
        [f"client{n:03d}", f"{100 + n * 7}.50", "RUB", "card", CARD, "Ivan Petrov"]
        for n in range(24)
    ]
    rows[2][1] = "12,5O"  # a letter O typed for a zero
    rows[5][4] = "4.24242E+15"  # a card number a spreadsheet shortened
    rows[9][0] = ""
    rows[13][4] = "4242424242424241"  # fails the Luhn check
    return rows


def render_batch(window: MainWindow, outdir: Path) -> list[Path]:
    """Render the batch screens into ``outdir``; return the files written."""
    written: list[Path] = []
    sandbox = window.sandbox
    assert sandbox is not None
    with tempfile.TemporaryDirectory(prefix="cactus-desk-batch-") as folder:
        path = Path(folder) / "march-payouts.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(HEADERS)
            writer.writerows(_rows())
        dialog = window.open_batch(path)
        assert isinstance(dialog, BatchDialog)
        dialog.resize(1100, 640)
        _settle(lambda: dialog.batch is not None)
        written.append(_save(dialog, outdir / "batch-grid.png"))

        # Fixed in place, as a person would.
        batch = dialog.batch
        assert batch is not None
        for row, column, value in (
            (2, "amount", "125.00"),
            (5, "card_number", CARD),
            (9, "site_login", "client009"),
            (13, "card_number", CARD),
        ):
            dialog.edit_cell(row, column, value)
            _settle(lambda: not dialog.checking())
        _settle(dialog.send_button.isEnabled)
        sandbox.set_fault(Fault.LATENCY, delay=0.15)
        dialog.start_sending()
        _settle(lambda: dialog.progress_bar.value() >= 9)
        dialog.toggle_pause()
        _settle(lambda: dialog.progress_bar.value() >= 9)
        written.append(_save(dialog, outdir / "batch-progress.png"))
        sandbox.clear_fault()
        sandbox.set_fault(Fault.REJECT, times=1, message="Recipient bank is not available")
        dialog.toggle_pause()
        _settle(lambda: dialog.outcome is not None)
        sandbox.clear_fault()
        written.append(_save(dialog, outdir / "batch-report.png"))
        dialog.close()
    return written
