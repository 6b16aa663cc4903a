"""Render the clerk's screens to PNG: the recipient picker, the History's filters with totals
and chart, and a receipt page (``python -m cactus_desk.ui.screenshots_clerk OUTDIR``).

Like ``screenshots``, everything runs against the embedded sandbox in a throw-away folder.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QRectF, QSizeF
from PySide6.QtGui import QColor, QImage, QPainter, QTextDocument
from PySide6.QtWidgets import QApplication

from cactus_desk.app import build_main_window
from cactus_desk.catalog import load_catalog
from cactus_desk.reports.receipt import build_receipt
from cactus_desk.ui.main_window import HISTORY_TAB, PAYOUT_TAB, MainWindow
from cactus_desk.ui.receipts.receipt import receipt_html
from cactus_desk.ui.screenshots import HISTORY_SIZE, WINDOW_SIZE, _fill, _finalized, _save, _send
from cactus_desk.ui.screenshots import _settle as settle


def _receipt_png(window: MainWindow, path: Path) -> Path:
    panel = window.history_panel
    details = panel.shown_details
    if details is None:
        raise RuntimeError("no payout selected for the receipt")
    document = QTextDocument()
    document.setHtml(receipt_html(build_receipt(details)))
    width = 794  # A4 at 96 dpi
    document.setPageSize(QSizeF(width - 80, 10_000))
    image = QImage(width, 1123, QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    painter.translate(40, 40)
    document.drawContents(painter, QRectF(0, 0, width - 80, 1043))
    painter.end()
    if not image.save(str(path)):
        raise OSError(f"could not write {path}")
    return path


def render(outdir: Path) -> list[Path]:
    """Render the clerk's screens into ``outdir``; return the files written."""
    outdir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="cactus-desk-shots-") as data:
        window = build_main_window(
            ["--sandbox", "--data-dir", data, "--finalize-after", "0.3", "--read-timeout", "1"]
        )
        assert isinstance(window, MainWindow)
        try:
            window.resize(*WINDOW_SIZE)
            window.show()
            settle(lambda: window.history_opening() is False)
            window.tabs.setCurrentIndex(PAYOUT_TAB)
            recipients = window.recipients
            for label, method, currency, login in (
                ("Alice — Sber card", "card", "RUB", "alice"),
                ("Bob — SBP phone", "sbp", "RUB", "bob"),
                ("Carol — EUR bank", "localbanks", "EUR", "carol"),
            ):
                _fill(window, method, currency, "100.00", login)
                recipients.save_current(label)
                settle(lambda: not recipients.busy())
            window.form.clear_recipient()
            recipients.pick("Alice — Sber card")
            window.form.amount_edit.setText("1500.50")
            written.append(_save(window, outdir / "recipient-picker.png"))

            for method, currency, amount, login in (
                ("card", "RUB", "1500.50", "alice"),
                ("sbp", "RUB", "1200.00", "bob"),
                ("card", "RUB", "500.13", "dave"),  # declined by the sandbox
                ("card", "USD", "250.00", "alice"),
                ("localbanks", "EUR", "99.90", "carol"),
                ("sbp", "RUB", "730.00", "erin"),
            ):
                _send(window, method, currency, amount, login)
            window.resize(*HISTORY_SIZE)
            window.tabs.setCurrentIndex(HISTORY_TAB)
            panel = window.history_panel
            settle(lambda: _finalized(window), timeout=20)
            bar = panel.filters_bar
            bar.dates_combo.setCurrentIndex(bar.dates_combo.findData("this month"))
            panel.refresh()
            panel.show_totals(True)
            settle(lambda: not panel.totals_panel.busy() and panel.is_idle())
            rows = panel.model.rowCount()
            if rows:
                panel.view.selectRow(rows - 1)
            settle(lambda: panel.shown_details is not None)
            written.append(_save(window, outdir / "history-filters-totals.png"))
            written.append(_receipt_png(window, outdir / "receipt.png"))
        finally:
            window.shutdown()
            window.deleteLater()
    return written


def main(argv: list[str] | None = None) -> int:
    """Entry point: render into the folder named by the only argument."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m cactus_desk.ui.screenshots_clerk OUTDIR", file=sys.stderr)
        return 2
    load_catalog()
    app = QApplication.instance() or QApplication(["cactus-desk-screenshots"])
    for path in render(Path(args[0])):
        print(path)
    del app
    return 0


if __name__ == "__main__":
    sys.exit(main())
