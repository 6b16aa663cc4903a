"""On start: a batch that stopped before every row was recorded (a kill, crash or cancel) is
named with its file and the rows never sent, and the file can be opened again to resume.

Full card numbers are never stored, so only the file itself can resume the batch: it must
be the same file (its SHA-256 is the batch's), and the batch then sends only rows never
recorded; rows left in doubt are never resent automatically. A team batch that was approved
is resumed from the Approvals tab instead (what was approved is what is sent, never the
file), and on a team only the batches this login began sending are named: another person's
may be sending at their desk right now.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog, QMessageBox

from cactus_desk.batch.reading import file_sha256
from cactus_desk.batch.summary import BatchSummary, interrupted_batches
from cactus_desk.history.port import HistoryStore
from cactus_desk.ui.workers import Runner

if TYPE_CHECKING:
    from cactus_desk.approvals_desk import TeamApprovals
    from cactus_desk.ui.batch.dialog import BatchDialog
    from cactus_desk.ui.main_window import MainWindow

log = logging.getLogger(__name__)

NOTICE = "interruptedBatchNotice"
MISMATCH = "batchFileMismatch"
SHOW_APPROVALS = "Show in Approvals"


@dataclass(frozen=True)
class Interrupted:
    """The interrupted batches to name, and which of them are approved team batches (by
    batch id, the approval request's id)."""

    summaries: list[BatchSummary]
    approved: dict[str, int] = field(default_factory=dict)


def find_interrupted(store: HistoryStore, port: TeamApprovals | None) -> Interrupted:
    """This desk's interrupted batches (worker thread): on a team, those its login began,
    with the approval request of each approved one."""
    signed_in_as = getattr(store, "signed_in_as", None)
    login = signed_in_as() if port is not None and callable(signed_in_as) else ""
    found = interrupted_batches(store, login=login)
    approved: dict[str, int] = {}
    if found and port is not None:
        try:
            views = port.requests()
        except Exception as exc:  # the batches are still named; the tab says what is wrong
            log.warning("the approvals could not be read for the interrupted batches: %s", exc)
            views = []
        approved = {
            view.request.batch_id: view.request.id for view in views if view.request.batch_id
        }
    return Interrupted(found, approved)


def _rows(count: int) -> str:
    return f"{count} row" + ("" if count == 1 else "s")


def notice_text(summary: BatchSummary, profile_name: str, approval_id: int | None = None) -> str:
    """What the clerk is told about one interrupted batch (``approval_id``: the approval
    request of an approved team batch, resumed from the Approvals tab)."""
    entry = summary.entry
    name = entry.file_name or "a file"
    text = (
        f"The batch from {name} (profile {profile_name}, batch {entry.batch_id}) "
        f"was interrupted: {summary.never_sent} of its {entry.row_count} rows were never sent."
    )
    if approval_id is not None:
        text += (
            f" It was approved as request {approval_id}: send the rest from the Approvals tab "
            "(select it, then Send approved), not from the file."
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
    port = window.approvals_port
    runner.run(
        lambda: find_interrupted(store, port),
        lambda found: _tell(window, found),
        lambda error: None,  # a history that cannot be read is reported by the window
    )
    return runner


def _tell(window: MainWindow, found: Interrupted) -> None:
    if not found.summaries:
        return
    names = {profile.id: profile.name for profile in window.all_profiles()}
    texts = [
        notice_text(
            s,
            names.get(s.entry.profile_id, s.entry.profile_id),
            found.approved.get(s.entry.batch_id),
        )
        for s in found.summaries
    ]
    from_files = [s for s in found.summaries if s.entry.batch_id not in found.approved]
    approved = [s for s in found.summaries if s.entry.batch_id in found.approved]
    box = QMessageBox(window)
    box.setObjectName(NOTICE)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle("Interrupted batch")
    box.setText("\n\n".join(texts))
    advice = []
    if from_files:
        newest = from_files[0]
        advice.append(
            f"Open {newest.entry.file_name} again to send the rows never sent: the file is "
            "needed because full card numbers are never stored, and it must be the same file."
        )
        again = box.addButton("Open the file again…", QMessageBox.ButtonRole.AcceptRole)
        again.clicked.connect(lambda: _choose(window, newest))
    if approved:
        advice.append("Rows already recorded are never sent again, those in doubt included.")
        request_id = found.approved[approved[0].entry.batch_id]
        show = box.addButton(SHOW_APPROVALS, QMessageBox.ButtonRole.ActionRole)
        show.clicked.connect(lambda: window.show_approval_request(request_id))
    box.setInformativeText(" ".join(advice))
    box.addButton("Later", QMessageBox.ButtonRole.RejectRole)
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
