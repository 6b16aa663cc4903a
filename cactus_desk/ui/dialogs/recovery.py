"""Opening the history at start without stalling the window, and recovering when it is damaged.

Start-up opens the history cheaply on the GUI thread when its schema is current: connecting
and reading the schema version touch a few pages, whatever the size. The slow part, the
integrity check (seconds on a big file) and the daily backup, runs afterwards on a worker
(the port's ``check_integrity``); a damage found there takes the history down and brings up the same
dialog as damage found on opening. A history that needs a migration, or that SQLite cannot
read at all, goes through the full ``history.open_history`` (check, backup, migrate), because a
migration must not run before its backup; that happens once per upgrade.

``CorruptHistoryDialog`` explains where the damaged file was kept and offers the newest
backup, or an empty history, explicitly; nothing is ever replaced silently.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from cactus_desk import APP_NAME
from cactus_desk.payouts.states import State
from cactus_desk.ui import style
from cactus_desk.ui.workers import Runner

if TYPE_CHECKING:
    # The history's types load with the damage dialog: the banner, part of the window's
    # start, does not need them.
    from cactus_desk.history.port import HistoryStore
    from cactus_desk.history.types import CorruptHistoryError, MissingHistoryError

log = logging.getLogger(__name__)


def _missing_text(error: MissingHistoryError, data_dir: Path) -> str:
    found = "\n".join(f"• {item}" for item in error.evidence)
    return (
        f"The payout history file is missing from:\n{data_dir}\n\n"
        f"This folder had a history before:\n{found}\n\n"
        "Cactus Desk did not start a new, empty history in its place, because payouts and "
        "callbacks would then be recorded against nothing. Nothing was deleted or replaced. "
        "Choose how to continue."
    )


def interrupted_text(states: list[State]) -> str:
    """The notice after recovery: how many payouts were interrupted and what became of them."""
    not_sent = states.count(State.NOT_SENT)
    unknown = states.count(State.UNKNOWN)
    count = len(states)
    parts = []
    if not_sent:
        parts.append(f"{not_sent} not sent")
    if unknown:
        parts.append(f"{unknown} UNKNOWN")
    other = count - not_sent - unknown
    if other:
        parts.append(f"{other} settled meanwhile")
    head = "1 payout was" if count == 1 else f"{count} payouts were"
    advice = (
        " The gateway may have the UNKNOWN ones: do not send them again before checking with "
        "Cactus or waiting for their callbacks."
        if unknown
        else " Nothing left for those: send them again if they are still due."
    )
    return (
        f"{head} interrupted when Cactus Desk last stopped: {', '.join(parts)}. "
        f"Check them in the history.{advice}"
    )


class RecoveryBanner(QFrame):
    """A strip above the tabs with news from start-up (interrupted payouts); hidden when empty.

    ``showRequested`` asks the window to show the payouts concerned in the history.
    """

    showRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("recoveryBanner")
        self.setAccessibleName("Start-up notice")
        self.setStyleSheet(
            f"#recoveryBanner {{ background: {style.UNKNOWN_BG}; border: 1px solid "
            f"{style.UNKNOWN_FG}; border-radius: 4px; }} #recoveryBanner QLabel "
            f"{{ color: {style.UNKNOWN_FG}; }}"
        )
        self._text = QLabel()
        self._text.setObjectName("recoveryBannerText")
        self._text.setTextFormat(Qt.TextFormat.PlainText)
        self._text.setWordWrap(True)
        self._text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.show_button = QPushButton("Show in history")
        self.show_button.setObjectName("recoveryShowButton")
        self.show_button.clicked.connect(self.showRequested)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Hide this notice")
        close.setAccessibleName("Hide notice")
        close.clicked.connect(self.clear)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self._text, 1)
        layout.addWidget(self.show_button, 0, Qt.AlignmentFlag.AlignTop)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.setVisible(False)

    def text(self) -> str:
        """The notice shown ('' when hidden)."""
        parent = self.parentWidget()
        shown = self.isVisibleTo(parent) if parent is not None else self.isVisible()
        return self._text.text() if shown else ""

    def show_message(self, text: str, *, show_button: bool = True) -> None:
        """Show ``text``; the "Show in history" button only when there is something to show."""
        self._text.setText(text)
        self.setAccessibleDescription(text)
        self.show_button.setVisible(show_button)
        self.setVisible(True)

    def clear(self) -> None:
        """Hide the notice."""
        self._text.clear()
        self.setVisible(False)


class CorruptHistoryDialog(QDialog):
    """Says the history was damaged and kept aside; restores the newest backup or starts empty.

    Non-blocking (``open()``). The slow work (checking and copying a backup) runs on a
    worker; ``historyReady(store, message)`` carries the history now in place.
    """

    historyReady = Signal(object, str)  # HistoryStore, what was done

    def __init__(
        self, error: CorruptHistoryError, data_dir: Path, parent: QWidget | None = None
    ) -> None:
        from cactus_desk.history.types import MissingHistoryError

        super().__init__(parent)
        self.setObjectName("corruptHistoryDialog")
        self.setWindowTitle(f"{APP_NAME}: the payout history is damaged")
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.error = error
        self.data_dir = Path(data_dir)
        self._runner = Runner(self)
        self._busy = False

        missing = isinstance(error, MissingHistoryError)
        if missing:
            self.setWindowTitle(f"{APP_NAME}: the payout history is missing")
        title = QLabel(
            "The payout history is missing" if missing else "The payout history is damaged"
        )
        title.setStyleSheet("font-size: 13pt; font-weight: bold;")
        explanation = QLabel(
            _missing_text(error, self.data_dir)
            if isinstance(error, MissingHistoryError)
            else f"SQLite reported: {error.problem}\n\n"
            f"Cactus Desk kept the damaged file aside, unchanged, at:\n{error.kept_path}\n\n"
            "Nothing was deleted and nothing was replaced. Choose how to continue."
        )
        explanation.setObjectName("corruptHistoryText")
        explanation.setTextFormat(Qt.TextFormat.PlainText)
        explanation.setWordWrap(True)
        explanation.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.restore_button = QPushButton("Restore the newest backup")
        self.restore_button.setObjectName("restoreBackupButton")
        backup = error.backup_path
        if backup is not None:
            offer = QLabel(
                f"The newest backup is {backup.name}. Restoring it brings back the payouts "
                "recorded up to then; payouts sent after it are missing from it, so check "
                "those with Cactus (merchant cabinet or callbacks)."
            )
            self.restore_button.clicked.connect(self.restore)
        else:
            offer = QLabel("There is no backup of the history to restore.")
            self.restore_button.setEnabled(False)
        offer.setObjectName("corruptHistoryOffer")
        offer.setTextFormat(Qt.TextFormat.PlainText)
        offer.setWordWrap(True)

        self.empty_check = QCheckBox(
            "I understand: start a new, empty history (the files kept aside and the backups "
            "stay where they are)"
            if missing
            else "I understand: start a new, empty history (the damaged file stays where it "
            "was kept)"
        )
        self.empty_check.setObjectName("startEmptyCheck")
        self.empty_button = QPushButton("Start with an empty history")
        self.empty_button.setObjectName("startEmptyButton")
        self.empty_button.setEnabled(False)
        self.empty_check.toggled.connect(self._refresh_buttons)
        self.empty_button.clicked.connect(self.start_empty)
        self.quit_button = QPushButton(f"Quit {APP_NAME}")
        self.quit_button.setObjectName("corruptQuitButton")
        self.quit_button.clicked.connect(self.reject)

        self.status = QLabel()
        self.status.setObjectName("corruptHistoryStatus")
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setWordWrap(True)

        buttons = QHBoxLayout()
        buttons.addWidget(self.quit_button)
        buttons.addStretch(1)
        buttons.addWidget(self.empty_button)
        buttons.addWidget(self.restore_button)
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(explanation)
        layout.addWidget(offer)
        layout.addWidget(self.empty_check)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self.setMinimumWidth(560)
        if backup is not None:
            self.restore_button.setDefault(True)

    def is_busy(self) -> bool:
        """True while a backup is being restored or a new history created."""
        return self._busy

    def restore(self) -> None:
        """Restore the newest backup (on a worker)."""
        backup = self.error.backup_path
        if backup is None or self._busy:
            return
        data_dir = self.data_dir

        def work() -> HistoryStore:
            from cactus_desk.history import restore_and_open

            return restore_and_open(data_dir, backup)

        self._start(
            f"Checking and restoring {backup.name}…",
            work,
            f"The history was restored from the backup {backup.name}. Payouts sent after that "
            "backup are not in it: check them with Cactus.",
        )

    def start_empty(self) -> None:
        """Start a new, empty history; only once the person ticked the checkbox."""
        if not self.empty_check.isChecked() or self._busy:
            return
        data_dir, kept = self.data_dir, self.error.kept_path
        where = f"; the damaged one is kept as {kept}" if kept is not None else ""
        from cactus_desk.history import start_new_history

        self._start(
            "Creating a new history…",
            lambda: start_new_history(data_dir),
            f"A new, empty history was started{where}.",
        )

    def reject(self) -> None:
        if not self._busy:  # a restore in progress finishes first
            super().reject()

    def _start(self, progress: str, work: object, done_message: str) -> None:
        self._busy = True
        self._set_status(progress)
        self._refresh_buttons()
        self._runner.run(
            work,  # type: ignore[arg-type]
            lambda store: self._done(store, done_message),
            self._failed,
        )

    def _done(self, store: HistoryStore, message: str) -> None:
        self._busy = False
        log.warning("%s", message)
        self.historyReady.emit(store, message)
        self.accept()

    def _failed(self, error: BaseException) -> None:
        from cactus_desk.history.types import BackupError, HistoryOpenError

        self._busy = False
        if isinstance(error, BackupError | HistoryOpenError):
            text = str(error)
        else:
            text = f"It did not work ({type(error).__name__}: {error})."
        self._set_status(text, error=True)
        self._refresh_buttons()

    def _set_status(self, text: str, *, error: bool = False) -> None:
        self.status.setText(text)
        colour = style.ERROR_FG if error else style.MUTED_FG
        self.status.setStyleSheet(f"QLabel {{ color: {colour}; }}")

    def _refresh_buttons(self) -> None:
        idle = not self._busy
        self.restore_button.setEnabled(idle and self.error.backup_path is not None)
        self.empty_check.setEnabled(idle)
        self.empty_button.setEnabled(idle and self.empty_check.isChecked())
        self.quit_button.setEnabled(idle)
