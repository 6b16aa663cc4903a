"""The last line of defence: an unexpected error is logged, explained, and the app carries on.

``install_exception_hook`` replaces ``sys.excepthook`` (errors in Qt slots and timers land
there) and ``threading.excepthook`` (plain Python threads). The traceback goes to the log
through ``crash.format_for_log``, which masks the salt and card numbers; the person gets a
non-blocking dialog that says where the log is. A worker thread's error is handed to the GUI
thread by a queued signal, because only the GUI thread may build widgets.
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from cactus_desk import APP_NAME
from cactus_desk.crash import format_for_log

log = logging.getLogger("cactus_desk.crash")

# Only the last line of the report is shown, clipped: the log holds the rest.
MAX_SHOWN = 240


def _summary(report: str) -> str:
    lines = [line for line in report.splitlines() if line.strip()]
    last = lines[-1].strip() if lines else "Unknown error"
    return last if len(last) <= MAX_SHOWN else last[: MAX_SHOWN - 1] + "…"


class ExceptionHook(QObject):
    """Catches every unhandled exception while installed; see the module docstring."""

    _caught = Signal(str)  # the redacted summary, emitted from any thread

    def __init__(self, log_path: Path | None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.log_path = log_path
        self.count = 0
        self._dialog: QMessageBox | None = None
        self._previous_sys = sys.excepthook
        self._previous_threading = threading.excepthook
        self._installed = False
        self._caught.connect(self._show, Qt.ConnectionType.QueuedConnection)

    def install(self) -> ExceptionHook:
        """Take over ``sys.excepthook`` and ``threading.excepthook``; return self."""
        if not self._installed:
            self._previous_sys = sys.excepthook
            self._previous_threading = threading.excepthook
            sys.excepthook = self.handle
            threading.excepthook = self._handle_thread
            self._installed = True
        return self

    def uninstall(self) -> None:
        """Put the previous hooks back (if this hook is still the one installed)."""
        if not self._installed:
            return
        self._installed = False
        if sys.excepthook == self.handle:
            sys.excepthook = self._previous_sys
        if threading.excepthook == self._handle_thread:
            threading.excepthook = self._previous_threading

    def dialog(self) -> QMessageBox | None:
        """The "Something went wrong" dialog while it is open."""
        return self._dialog

    def handle(
        self,
        exc_type: type[BaseException],
        value: BaseException,
        tb: TracebackType | None,
    ) -> None:
        """Log the error and ask the GUI thread to tell the person. Any thread."""
        if issubclass(exc_type, KeyboardInterrupt | SystemExit):
            self._previous_sys(exc_type, value, tb)
            return
        report = format_for_log((exc_type, value, tb))
        try:
            log.error("%s", report)
        except Exception:  # a broken log must not hide the error itself
            print(report, file=sys.stderr)
        if self.log_path is None:
            print(report, file=sys.stderr)
        self._caught.emit(_summary(report))

    def _handle_thread(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None:
            return
        self.handle(args.exc_type, args.exc_value, args.exc_traceback)

    def _message(self, summary: str) -> str:
        where = (
            f"The details were written to the log at {self.log_path}."
            if self.log_path is not None
            else "The details were written to the terminal's error output."
        )
        again = f" It happened {self.count} times so far." if self.count > 1 else ""
        return (
            f"Something went wrong inside Cactus Desk: {summary}\n\n"
            "Cactus Desk is still running. If a payout was being sent, check its state in the "
            "history before sending it again.\n\n"
            f"{where}{again}"
        )

    def _show(self, summary: str) -> None:  # GUI thread
        self.count += 1
        if self._dialog is not None:  # one dialog, however many errors: no cascade of windows
            self._dialog.setText(self._message(summary))
            return
        parent = self.parent()
        dialog = QMessageBox(parent if isinstance(parent, QWidget) else None)
        dialog.setObjectName("crashDialog")
        dialog.setIcon(QMessageBox.Icon.Warning)
        dialog.setWindowTitle(f"{APP_NAME}: something went wrong")
        dialog.setTextFormat(Qt.TextFormat.PlainText)
        dialog.setText(self._message(summary))
        dialog.setStandardButtons(QMessageBox.StandardButton.Ok)
        dialog.setWindowModality(Qt.WindowModality.NonModal)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.finished.connect(self._closed)
        self._dialog = dialog
        dialog.show()  # not open(): that would make it window-modal and block the window

    def _closed(self, _result: int) -> None:
        self._dialog = None


def install_exception_hook(parent: QObject, log_path: Path | None) -> ExceptionHook:
    """Install an ``ExceptionHook`` owned by ``parent`` (the window or the application).

    With a window as ``parent`` the dialog is shown over it. Call ``uninstall()`` to undo.
    """
    return ExceptionHook(log_path, parent).install()
