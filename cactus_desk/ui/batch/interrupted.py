"""On start: a batch that stopped before every row was recorded (a kill, crash or cancel) is
named with its file and the rows never sent, and the file can be opened again to resume.

Full card numbers are never stored, so only the file itself can resume the batch: it must
be the same file (its SHA-256 is the batch's), and the batch then sends only rows never
recorded; rows left in doubt are never resent automatically.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog, QMessageBox

from cactus_desk.batch.reading import file_sha256
from cactus_desk.batch.summary import BatchSummary, interrupted_batches
from cactus_desk.history.port import HistoryStore
from cactus_desk.ui.workers import Runner

if TYPE_CHECKING:
    from cactus_desk.ui.batch.dialog import BatchDialog
    from cactus_desk.ui.main_window import MainWindow

NOTICE = "interruptedBatchNotice"
MISMATCH = "batchFileMismatch"


def _rows(count: int) -> str:
    return f"{count} row" + ("" if count == 1 else "s")


def notice_text(summary: BatchSummary, profile_name: str) -> str:
    """What the clerk is told about one interrupted batch."""
    entry = summary.entry
    name = entry.file_name or "a file"
    text = (
        f"The batch from {name} (profile {profile_name}, batch {entry.batch_id}) "
        f"was interrupted: {summary.never_sent} of its {entry.row_count} rows were never sent."
    )
    if summary.in_doubt:
        text += (
            f" {_rows(summary.in_doubt)} {'is' if summary.in_doubt == 1 else 'are'} in doubt "
            "(unknown): never resent automatically; check them in the History tab."
        )
    return text


def notice_interrupted_batches(window: MainWindow, store: HistoryStore) -> Runner:
    """Look for interrupted batches on a worker; tell the clerk when there are any."""
    runner = Runner(window)
    runner.run(
        lambda: interrupted_batches(store),
        lambda found: _tell(window, found),
        lambda error: None,  # a history that cannot be read is reported by the window
    )
    return runner


def _tell(window: MainWindow, found: list[BatchSummary]) -> None:
    if not found:
        return
    names = {profile.id: profile.name for profile in window.all_profiles()}
    texts = [notice_text(s, names.get(s.entry.profile_id, s.entry.profile_id)) for s in found]
    newest = found[0]
    box = QMessageBox(window)
    box.setObjectName(NOTICE)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Interrupted batch")
    box.setText("\n\n".join(texts))
    box.setInformativeText(
        f"Open {newest.entry.file_name} again to send the rows never sent: the file is needed "
        "because full card numbers are never stored, and it must be the same file."
    )
    again = box.addButton("Open the file again…", QMessageBox.ButtonRole.AcceptRole)
    box.addButton("Later", QMessageBox.ButtonRole.RejectRole)
    again.clicked.connect(lambda: _choose(window, newest))
    box.open()


def _choose(window: MainWindow, summary: BatchSummary) -> None:
    name, _ = QFileDialog.getOpenFileName(
        window,
        f"Open {summary.entry.file_name} again",
        str(Path.home() / summary.entry.file_name),
        "Batch files (*.xlsx *.xls *.ods *.csv);;All files (*)",
    )
    if name:
        resume_from(window, summary, Path(name))


def resume_from(
    window: MainWindow,
    summary: BatchSummary,
    path: Path,
    on_opened: Callable[[BatchDialog], None] | None = None,
) -> Runner:
    """Check ``path`` is the batch's file (SHA-256, on a worker) and open it to resume with
    the batch's profile; a different file is refused with a message."""
    runner = Runner(window)

    def opened(digest: str) -> None:
        if digest != summary.entry.file_sha256:
            box = QMessageBox(window)
            box.setObjectName(MISMATCH)
            box.setIcon(QMessageBox.Icon.Warning)
            box.setWindowTitle("Not the batch's file")
            box.setText(
                f"{path.name} is not the file of batch {summary.entry.batch_id} (its SHA-256 "
                f"differs): choose {summary.entry.file_name} as it was imported. Nothing was sent."
            )
            box.open()
            return
        from cactus_desk.ui.batch.menu import open_batch

        dialog: BatchDialog | None = open_batch(window, path, summary.entry.profile_id)
        if dialog is not None and on_opened is not None:
            on_opened(dialog)

    def failed(error: BaseException) -> None:
        box = QMessageBox(window)
        box.setObjectName(MISMATCH)
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("The file could not be read")
        box.setText(f"{path.name} could not be read: {error}")
        box.open()

    runner.run(lambda: file_sha256(path.read_bytes()), opened, failed)
    return runner
