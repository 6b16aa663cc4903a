"""The receipt PDF's text copies out as printed."""

from __future__ import annotations

import io

from pypdf import PdfReader
from PySide6.QtWidgets import QApplication

from cactus_desk.reports.receipt import Receipt
from cactus_desk.ui.receipts.receipt import receipt_pdf


def test_ids_with_ff_or_fi_copy_out_of_the_pdf_letter_for_letter(qapp: QApplication) -> None:
    """No ligatures: "ff" drawn as one glyph came out of the PDF as "ﬀ", so a request id
    copied from a receipt did not match the history's."""
    receipt = Receipt(
        title="Payout receipt · cd-20261130-3435ff2e31",
        environment="SANDBOX (test, no real money)",
        payout=[("Request ID", "cd-20261130-3435ff2e31"), ("Invoice", "fi-0042")],
        recipient=[("Name", "Office Affairs")],
        timeline=[],
        people=[],
        printed_at="2026-11-30 17:16:01 UTC",
    )
    reader = PdfReader(io.BytesIO(receipt_pdf(receipt)))
    text = "".join(page.extract_text() for page in reader.pages)
    for value in ("cd-20261130-3435ff2e31", "fi-0042", "Office Affairs"):
        assert value in " ".join(text.split()), value
