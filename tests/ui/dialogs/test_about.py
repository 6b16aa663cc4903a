"""Help > About: the name, versions, icon and license a person (or support) needs."""

from __future__ import annotations

import platform

import PySide6
from PySide6.QtCore import Qt, qVersion
from PySide6.QtGui import QAction, QGuiApplication
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

import cactus_desk
from cactus_desk.ui.dialogs.about import AboutDialog, details_text
from cactus_desk.ui.main_window import MainWindow


def make_dialog(qtbot: QtBot) -> AboutDialog:
    dialog = AboutDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def shown_text(dialog: AboutDialog) -> str:
    return "\n".join(label.text() for label in dialog.findChildren(QLabel))


def test_about_shows_name_versions_and_license(qtbot: QtBot) -> None:
    dialog = make_dialog(qtbot)
    assert dialog.windowTitle() == "About Cactus Desk"
    text = shown_text(dialog)
    assert cactus_desk.APP_NAME in text
    assert "payout" in text.lower()
    assert dialog.value("Version") == cactus_desk.__version__
    assert dialog.value("Qt") == qVersion()
    assert dialog.value("PySide6") == PySide6.__version__
    assert dialog.value("Python") == platform.python_version()
    assert dialog.value("License") == "MIT"


def test_about_shows_the_app_icon(qtbot: QtBot) -> None:
    dialog = make_dialog(qtbot)
    pixmap = dialog.icon_label().pixmap()
    assert not pixmap.isNull()
    image = pixmap.toImage()
    assert image.pixelColor(0, 0).alpha() == 0  # rounded corner
    centre = image.pixelColor(image.width() // 2, image.height() // 2)
    assert centre.alpha() == 255 and centre.green() > centre.red()


def test_copy_details_puts_the_versions_on_the_clipboard(qtbot: QtBot) -> None:
    dialog = make_dialog(qtbot)
    QGuiApplication.clipboard().clear()
    qtbot.mouseClick(dialog.copy_button(), Qt.MouseButton.LeftButton)
    copied = QGuiApplication.clipboard().text()
    assert copied == details_text()
    assert f"Version: {cactus_desk.__version__}" in copied
    assert f"Qt: {qVersion()}" in copied
    assert "License: MIT" in copied


def test_close_button_closes_the_dialog(qtbot: QtBot) -> None:
    dialog = make_dialog(qtbot)
    with qtbot.waitSignal(dialog.rejected, timeout=2000):
        qtbot.mouseClick(dialog.close_button(), Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()


def test_help_about_in_the_main_window_opens_it(window: MainWindow, qtbot: QtBot) -> None:
    action = window.findChild(QAction, "aboutAction")
    assert action is not None
    action.trigger()
    qtbot.waitUntil(lambda: window.findChild(AboutDialog) is not None, timeout=2000)
    dialog = window.findChild(AboutDialog)
    assert dialog.isVisible()
    assert dialog.value("Version") == cactus_desk.__version__
    dialog.close()
