"""Laying out a receipt (``reports.receipt``) with QTextDocument: a PDF via QPdfWriter, or a
printer chosen in QPrintDialog (QtPrintSupport ships with PySide6-Essentials).

The PDF is drawn into memory on the GUI thread (one page, a few milliseconds); writing the
file is left to a worker.
"""

from __future__ import annotations

from html import escape

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMarginsF, Qt
from PySide6.QtGui import QFont, QPageLayout, QPageSize, QPdfWriter, QTextDocument
from PySide6.QtWidgets import QDialog, QWidget

from cactus_desk.reports.receipt import Receipt


def receipt_html(receipt: Receipt) -> str:
    """The receipt as simple HTML for QTextDocument."""

    def table(rows: list[tuple[str, str]]) -> str:
        cells = "".join(
            f"<tr><td style='color:#555;padding-right:12px'>{escape(k)}</td>"
            f"<td>{escape(v)}</td></tr>"
            for k, v in rows
        )
        return f"<table cellspacing='0' cellpadding='3'>{cells}</table>"

    return (
        "<html><body style='font-size:10pt'>"
        f"<h2>{escape(receipt.title)}</h2>"
        f"<p><b>{escape(receipt.environment)}</b> · Cactus Desk</p>"
        f"<h3>Payout</h3>{table(receipt.payout)}"
        f"<h3>Recipient (card numbers masked)</h3>{table(receipt.recipient)}"
        f"<h3>Timeline</h3>{table(receipt.timeline)}"
        f"<h3>People</h3>{table(receipt.people)}"
        f"<p style='color:#777'>Printed {escape(receipt.printed_at)}.</p>"
        "</body></html>"
    )


def _document(receipt: Receipt) -> QTextDocument:
    document = QTextDocument()
    font = QFont("sans-serif")
    font.setStyleHint(QFont.StyleHint.SansSerif)
    # No ligatures: "ff" in a request id would be one glyph, and copied from the PDF as "ﬀ".
    for tag in ("liga", "clig", "dlig"):
        font.setFeature(QFont.Tag(tag), 0)
    document.setDefaultFont(font)
    document.setHtml(receipt_html(receipt))
    return document


def receipt_pdf(receipt: Receipt) -> bytes:
    """The receipt as the bytes of an A4 PDF. GUI thread."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QPdfWriter(buffer)
    writer.setTitle(receipt.title)
    writer.setCreator("Cactus Desk")
    writer.setPageLayout(
        QPageLayout(
            QPageSize(QPageSize.PageSizeId.A4),
            QPageLayout.Orientation.Portrait,
            QMarginsF(18, 18, 18, 18),
        )
    )
    writer.setResolution(300)
    document = _document(receipt)
    document.print_(writer)
    del writer  # ends the PDF
    buffer.close()
    return bytes(data.data())


def print_receipt(receipt: Receipt, parent: QWidget) -> QWidget:
    """Open the print dialog (non-blocking) and print the receipt on the printer chosen."""
    from PySide6.QtPrintSupport import QPrintDialog, QPrinter

    printer = QPrinter(QPrinter.PrinterMode.HighResolution)
    printer.setDocName(receipt.title)
    dialog = QPrintDialog(printer, parent)
    dialog.setObjectName("printReceiptDialog")
    document = _document(receipt)
    # The printer and the document live as long as the dialog that uses them.
    dialog._keep = (printer, document)  # type: ignore[attr-defined]

    def finished(result: int) -> None:
        if result == QDialog.DialogCode.Accepted:
            document.print_(printer)
        dialog.deleteLater()

    dialog.finished.connect(finished)
    # QPrintDialog.open() wants a receiver in PySide6: shown window-modal instead.
    dialog.setWindowModality(Qt.WindowModality.WindowModal)
    dialog.show()
    return dialog
