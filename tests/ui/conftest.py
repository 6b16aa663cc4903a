"""Shared UI fixtures: a running sandbox gateway, and the real main window on the sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QCheckBox, QWidget
from pytestqt.qtbot import QtBot

from cactus_desk.app import build_main_window
from cactus_desk.catalog import load_catalog
from cactus_desk.history.types import PayoutRecord
from cactus_desk.sandbox import SandboxGateway
from cactus_desk.ui.main_window import MainWindow
from cactus_desk.ui.payout.confirm_dialog import ConfirmDialog

#: Seconds the window's sandbox profile waits for an answer: short, so NO_ANSWER is quick.
READ_TIMEOUT = "2.5"


@pytest.fixture
def sandbox() -> Iterator[SandboxGateway]:
    """A sandbox gateway running on a free loopback port for one test."""
    with SandboxGateway() as gateway:
        yield gateway


@pytest.fixture
def window(qtbot: QtBot, data_home: Path) -> Iterator[MainWindow]:
    """The main window as ``cactus-desk --sandbox`` opens it, on a private data dir."""
    built = build_main_window(
        ["--sandbox", "--data-dir", str(data_home), "--read-timeout", READ_TIMEOUT]
    )
    assert isinstance(built, MainWindow)
    qtbot.addWidget(built)
    built.show()
    qtbot.waitExposed(built)
    yield built
    built.shutdown()


class PayoutDriver:
    """Fills and sends the window's payout form the way a person would."""

    def __init__(self, window: MainWindow, qtbot: QtBot) -> None:
        self.window = window
        self.form = window.form
        self.qtbot = qtbot

    def fill(
        self,
        method: str = "card",
        currency: str | None = None,
        *,
        amount: str = "1500.50",
        site_login: str = "alice",
    ) -> None:
        """Choose ``method`` (in its first currency unless given) and fill the required fields
        with the catalog's examples."""
        spec = load_catalog().method(method)
        self.form.set_currency(currency or spec.currencies[0])
        assert self.form.set_method(method), f"{method} cannot be chosen"
        self.form.site_login_edit.setText(site_login)
        self.form.amount_edit.setText(amount)
        for field in self.form.panel().visible_fields():
            widget = self.form.field(field.wire)
            if isinstance(widget, QCheckBox):
                # The cash rule wants "as soon as possible" or a time.
                widget.setChecked(field.wire == "asap")
            elif field.required:
                widget.setText(field.example)
        assert self.form.errors() == {}, self.form.errors()

    def activate(self, focus: QWidget) -> None:
        """Make the window active with ``focus`` focused, so keyboard shortcuts reach it."""
        self.window.activateWindow()
        focus.setFocus()
        self.qtbot.waitUntil(lambda: QApplication.focusWidget() is focus)

    def open_confirm(self) -> ConfirmDialog:
        """Click Send and return the confirm dialog it opens."""
        assert self.form.send_button.isEnabled(), self.form.errors()
        self.qtbot.mouseClick(self.form.send_button, Qt.MouseButton.LeftButton)
        dialog = self.form.confirm_dialog()
        assert dialog is not None
        self.qtbot.waitExposed(dialog)
        return dialog

    def confirm(self, dialog: ConfirmDialog) -> None:
        """Press "Send payout" in the confirm dialog."""
        self.qtbot.mouseClick(dialog.send_button(), Qt.MouseButton.LeftButton)

    def wait_done(self, timeout_ms: int = 10_000) -> None:
        """Wait until nothing is in flight and the banner shows the outcome."""
        self.qtbot.waitUntil(
            lambda: not self.window.send_controller.is_sending() and self.form.banner.kind() != "",
            timeout=timeout_ms,
        )

    def send(self, method: str = "card", currency: str | None = None, **fill: str) -> str:
        """Fill, confirm, wait for the outcome; return the request id sent."""
        self.fill(method, currency, **fill)
        request_id = self.form.request_id_edit.text()
        self.confirm(self.open_confirm())
        self.wait_done()
        return request_id

    def record(self, request_id: str) -> PayoutRecord:
        """The history record of ``request_id``."""
        rows = [r for r in self.window.history.iter_records() if r.request_id == request_id]
        assert len(rows) == 1, rows
        return rows[0]


@pytest.fixture
def driver(window: MainWindow, qtbot: QtBot) -> PayoutDriver:
    """Drives the ``window`` fixture's payout form."""
    return PayoutDriver(window, qtbot)
