"""Help › User guide: the bundled guide for a clerk (``resources/guide``) in a browser
window, opened at the part for the current tab (F1)."""

from __future__ import annotations

from PySide6.QtCore import QUrl
from PySide6.QtWidgets import QDialog, QTextBrowser, QVBoxLayout, QWidget

from cactus_desk.resources import resource_path
from cactus_desk.ui import style
from cactus_desk.ui.workers import Runner

GUIDE = "guide/guide.html"
SECTIONS = ("payout", "recipients", "history", "totals", "receipts", "alerts", "keys")


def _read_guide() -> str:  # worker thread
    return resource_path(GUIDE).read_text(encoding="utf-8")


class HelpDialog(QDialog):
    """The user guide; ``show_section(name)`` scrolls to one part."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("helpDialog")
        self.setWindowTitle("Cactus Desk — User guide")
        self.resize(760, 720)
        self.browser = QTextBrowser(self)
        self.browser.setObjectName("helpBrowser")
        self.browser.setOpenExternalLinks(False)
        self.browser.setSearchPaths([str(resource_path("guide"))])
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        self._runner = Runner(self)
        self._section = "payout"
        self._loaded = False
        self._runner.run(_read_guide, self._read, self._failed)
        style.flat_scroll_bars(self)

    def loaded(self) -> bool:
        """True once the guide is on show."""
        return self._loaded

    def section(self) -> str:
        """The part last asked for."""
        return self._section

    def show_section(self, name: str) -> None:
        """Scroll to the part ``name`` (one of ``SECTIONS``) once the guide is in."""
        self._section = name if name in SECTIONS else "payout"
        if self._loaded:
            self.browser.scrollToAnchor(self._section)

    def _read(self, html: str) -> None:
        self.browser.document().setBaseUrl(QUrl.fromLocalFile(str(resource_path("guide")) + "/"))
        self.browser.setHtml(html)
        self._loaded = True
        self.browser.scrollToAnchor(self._section)

    def _failed(self, error: BaseException) -> None:
        self.browser.setPlainText(f"The user guide could not be read: {error}")
