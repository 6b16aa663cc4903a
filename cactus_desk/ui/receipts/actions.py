"""The History tab's receipt buttons: save a payout's receipt as PDF, or print it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QFileDialog, QWidget

from cactus_desk.history.types import PayoutDetails
from cactus_desk.reports.receipt import build_receipt
from cactus_desk.ui.receipts.receipt import print_receipt, receipt_pdf
from cactus_desk.ui.workers import Runner


class ReceiptActions(QObject):
    """Saves (on a worker) and prints receipts for the payout on show."""

    saved = Signal(str)  # the path written
    failed = Signal(str)  # a plain message

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self._parent = parent
        self._runner = Runner(self)

    def choose_path(self, details: PayoutDetails, decimals: Mapping[str, int] | None) -> None:
        """Ask where to save the receipt of ``details`` (non-blocking), then save it."""
        dialog = QFileDialog(self._parent, "Save receipt")
        dialog.setObjectName("receiptSaveDialog")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setDefaultSuffix("pdf")
        dialog.setNameFilter("PDF files (*.pdf)")
        dialog.selectFile(f"receipt-{details.record.request_id}.pdf")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.fileSelected.connect(lambda path: self.save(details, decimals, path))
        dialog.open()

    def save(self, details: PayoutDetails, decimals: Mapping[str, int] | None, path: str) -> None:
        """Lay out the receipt now and write it to ``path`` on a worker."""
        data = receipt_pdf(build_receipt(details, decimals))
        target = Path(path)

        def write() -> None:  # worker thread
            target.write_bytes(data)

        self._runner.run(
            write,
            lambda _none: self.saved.emit(str(target)),
            lambda error: self.failed.emit(f"The receipt could not be saved: {error}"),
        )

    def print_(self, details: PayoutDetails, decimals: Mapping[str, int] | None) -> QWidget:
        """Open the print dialog for the receipt of ``details``."""
        return print_receipt(build_receipt(details, decimals), self._parent)

    def busy(self) -> bool:
        """True while a receipt is being written."""
        return self._runner.busy()
