"""A payout's receipt from the History tab of the real window: a PDF whose text holds the
amount, the ids and the masked card, never the full number; and the print dialog."""

from __future__ import annotations

from pathlib import Path

from pypdf import PdfReader
from PySide6.QtWidgets import QDialog, QFileDialog
from pytestqt.qtbot import QtBot

from cactus_desk.ui.history.panel import HistoryPanel
from cactus_desk.ui.main_window import HISTORY_TAB, MainWindow
from tests.ui.conftest import PayoutDriver

WAIT_MS = 10_000
FULL_CARD = "4242424242424242"


def _select(window: MainWindow, qtbot: QtBot, request_id: str) -> HistoryPanel:
    window.tabs.setCurrentIndex(HISTORY_TAB)
    panel = window.history_panel
    panel.refresh()
    assert panel.wait_until_idle()
    qtbot.waitUntil(lambda: panel.select_request(request_id), timeout=WAIT_MS)
    qtbot.waitUntil(panel.receipt_button.isVisible, timeout=WAIT_MS)
    return panel


def test_the_receipt_pdf_holds_amount_ids_and_the_masked_card_only(
    window: MainWindow, driver: PayoutDriver, qtbot: QtBot, tmp_path: Path
) -> None:
    window.start_sandbox()
    qtbot.waitUntil(lambda: window.history_opening() is False, timeout=WAIT_MS)
    sent = driver.send("card", "RUB", amount="1500.50", site_login="alice")
    record = driver.record(sent)
    assert record.invoice_id
    panel = _select(window, qtbot, sent)
    panel.receipt_button.click()
    dialog = window.findChild(QFileDialog, "receiptSaveDialog")
    assert dialog is not None
    target = tmp_path / "receipt.pdf"
    with qtbot.waitSignal(panel.receipts.saved, timeout=WAIT_MS):
        dialog.selectFile(str(target))
        dialog.accept()
    assert target.read_bytes().startswith(b"%PDF")
    text = "".join(page.extract_text() for page in PdfReader(target).pages)
    flat = " ".join(text.split())
    assert "150050 minor units" in flat
    assert "1 500.50 RUB" in flat or "1500.50 RUB" in flat
    assert sent in flat and record.invoice_id in flat
    assert "424242******4242" in flat
    assert FULL_CARD not in flat.replace(" ", "")
    assert "Card number" in flat and "alice" in flat
    assert "SANDBOX" in flat


def test_print_opens_the_print_dialog(
    window: MainWindow, driver: PayoutDriver, qtbot: QtBot
) -> None:
    window.start_sandbox()
    qtbot.waitUntil(lambda: window.history_opening() is False, timeout=WAIT_MS)
    sent = driver.send("sbp", amount="7.00", site_login="dave")
    panel = _select(window, qtbot, sent)
    panel.print_button.click()
    dialog = window.findChild(QDialog, "printReceiptDialog")
    assert dialog is not None and dialog.isVisible()
    dialog.reject()
