""" "Import callbacks…": apply a file of the gateway's callbacks (JSON lines or CSV) in bulk.

For a console that cannot share the receiver's history file. Each callback is verified with
the chosen profile's salt and applied off the GUI thread; the report lists how many were
applied, duplicate, late or conflicting, and every rejected line with its reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cactus_desk.callbacks.reconcile import ImportFileError, ImportReport, import_file
from cactus_desk.history.port import HistoryStore
from cactus_desk.profiles import Profile
from cactus_desk.secrets import KeyringError, NoKeyringError
from cactus_desk.ui import style
from cactus_desk.ui.workers import Runner

SaltProvider = Callable[[Profile], Callable[[], str | None]]


class ImportCallbacksError(Exception):
    """The import could not run (no salt, unreadable file); the message says why."""


def run_import(
    store: HistoryStore, path: Path, profile: Profile, read_salt: Callable[[], str | None]
) -> ImportReport:
    """Read the salt and import ``path`` for ``profile``. Worker thread."""
    try:
        salt = read_salt()
    except (NoKeyringError, KeyringError) as exc:
        raise ImportCallbacksError(str(exc)) from None
    if not salt:
        raise ImportCallbacksError(
            f"There is no salt for profile {profile.name!r} in the keyring: edit the profile "
            "and enter it again."
        )
    try:
        return import_file(
            store, path, salt, merchant_id=profile.merchant_id, site_id=profile.site_id
        )
    except ImportFileError as exc:
        raise ImportCallbacksError(str(exc)) from None


def report_text(report: ImportReport) -> str:
    """The report as the dialog shows it."""
    lines = report.lines()
    if not report.rejected:
        lines.append("No callback was rejected.")
    return "\n".join(lines)


class ImportCallbacksDialog(QDialog):
    """Choose a file and the profile whose salt verifies it; import; show the report.

    Emits ``imported(report)`` after a run that read the file, ``failed(message)`` otherwise.
    """

    imported = Signal(object)  # ImportReport
    failed = Signal(str)

    def __init__(
        self,
        store: HistoryStore,
        profiles: list[Profile],
        salt_provider: SaltProvider,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("importCallbacksDialog")
        self.setWindowTitle("Import callbacks")
        self._store = store
        self._profiles = {profile.id: profile for profile in profiles}
        self._salt_provider = salt_provider
        self._runner = Runner(self)
        self._report: ImportReport | None = None

        intro = QLabel(
            "Apply callbacks saved from the gateway (JSON lines, or CSV with a header row, "
            "signature included). Each one is verified with the profile's salt; duplicates and "
            "late ones change nothing."
        )
        intro.setWordWrap(True)
        self._path = QLineEdit(self)
        self._path.setObjectName("importPathEdit")
        self._path.setAccessibleName("Callbacks file")
        self._path.setPlaceholderText("callbacks.jsonl or callbacks.csv")
        self._browse = QPushButton("Choose…", self)
        self._browse.setObjectName("importBrowseButton")
        self._browse.clicked.connect(self.choose_file)
        path_row = QHBoxLayout()
        path_row.setContentsMargins(0, 0, 0, 0)
        path_row.addWidget(self._path, 1)
        path_row.addWidget(self._browse)
        path_holder = QWidget()
        path_holder.setLayout(path_row)

        self._profile = QComboBox(self)
        self._profile.setObjectName("importProfileCombo")
        self._profile.setAccessibleName("Profile whose salt verifies the callbacks")
        for profile in profiles:
            tag = "LIVE" if profile.is_live else "SANDBOX"
            self._profile.addItem(f"{tag} · {profile.name} (site {profile.site_id})", profile.id)

        self._error = style.error_label(self)
        self._error.setObjectName("importError")
        self._report_view = QPlainTextEdit(self)
        self._report_view.setObjectName("importReport")
        self._report_view.setReadOnly(True)
        self._report_view.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self._report_view.setPlaceholderText("The report appears here.")
        self._report_view.setAccessibleName("Import report")

        self._import = QPushButton("Import", self)
        self._import.setObjectName("importStartButton")
        self._import.setDefault(True)
        self._import.clicked.connect(lambda: self.start_import())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.addButton(self._import, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)

        form = QFormLayout()
        form.setLabelAlignment(style.FORM_LABEL_ALIGNMENT)
        form.addRow("File", path_holder)
        form.addRow("Verify with", self._profile)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self._error)
        layout.addWidget(self._report_view, 1)
        layout.addWidget(buttons)
        if not profiles:
            self._show_error("There is no profile: add one first, its salt verifies callbacks.")
            self._import.setEnabled(False)
        self.resize(600, 420)
        style.flat_scroll_bars(self)

    # -- public ---------------------------------------------------------------------------

    @property
    def report(self) -> ImportReport | None:
        """The last run's report."""
        return self._report

    def report_text(self) -> str:
        """The report on show."""
        return self._report_view.toPlainText()

    def error_text(self) -> str:
        """The error on show ("" when none)."""
        return self._error.text()

    def is_importing(self) -> bool:
        """True while an import runs."""
        return self._runner.busy()

    def select_profile(self, profile_id: str) -> bool:
        """Verify with ``profile_id``'s salt; False when that profile is not offered."""
        index = self._profile.findData(profile_id)
        if index >= 0:
            self._profile.setCurrentIndex(index)
        return index >= 0

    def choose_file(self) -> None:
        """Ask for the file (non-blocking) and import it once chosen."""
        dialog = QFileDialog(self, "Import callbacks")
        dialog.setObjectName("importFileDialog")
        dialog.setFileMode(QFileDialog.FileMode.ExistingFile)
        dialog.setNameFilters(
            ["Callbacks (*.jsonl *.ndjson *.json *.csv)", "All files (*)"],
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(self.start_import)
        dialog.open()

    def start_import(self, path: str | os.PathLike[str] | None = None) -> None:
        """Import ``path`` (or the one typed in) with the chosen profile's salt, off the GUI
        thread; the report is shown when it is done."""
        if path is not None:
            self._path.setText(str(path))
        text = self._path.text().strip()
        self._show_error("")
        if not text:
            self._show_error("Choose the file of callbacks to import.")
            return
        target = Path(text).expanduser()
        if not target.is_file():
            self._show_error(f"There is no file {target}.")
            return
        profile = self._profiles.get(self._profile.currentData())
        if profile is None:
            self._show_error("Choose the profile whose salt verifies the callbacks.")
            return
        store, read_salt = self._store, self._salt_provider(profile)
        self._import.setEnabled(False)
        self._report_view.setPlainText(f"Importing {target.name}…")
        self._runner.run(
            lambda: run_import(store, target, profile, read_salt),
            self._done,
            self._failed,
        )

    def reject(self) -> None:
        """Close, except while an import runs: its report must have somewhere to go."""
        if self.is_importing():
            self._show_error("The import is still running; close this window when it is done.")
            return
        super().reject()

    # -- results (GUI thread) -------------------------------------------------------------

    def _done(self, report: ImportReport) -> None:
        self._import.setEnabled(True)
        self._report = report
        self._report_view.setPlainText(report_text(report))
        self.imported.emit(report)

    def _failed(self, error: BaseException) -> None:
        self._import.setEnabled(True)
        self._report_view.clear()
        if isinstance(error, ImportCallbacksError):
            message = str(error)
        else:
            message = f"The import stopped: {error}"
        self._show_error(message)
        self.failed.emit(message)

    def _show_error(self, message: str) -> None:
        style.show_field_error(self._path, self._error, message or None)
