"""Issue 11 item 13: the amount field never changes what was typed or pasted."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from tests.ui.conftest import PayoutDriver

# (what the person enters, a fragment of the message shown at the field)
MISTYPED = [
    ("1O00", "not the digit 0"),
    ("1e3", "without an exponent"),
    ("1.2e3", "without an exponent"),
    ("15OO.50", "not the digit 0"),
    ("100 EUR", "in EUR"),
    ("12#50", "“#”"),
]


def _amount_form(driver: PayoutDriver) -> None:
    driver.fill("card", "RUB")
    driver.form.amount_edit.clear()
    driver.activate(driver.form.amount_edit)


@pytest.mark.parametrize(("typed", "fragment"), MISTYPED)
def test_typed_amount_is_kept_and_refused_at_the_field(
    driver: PayoutDriver, qtbot: QtBot, typed: str, fragment: str
) -> None:
    _amount_form(driver)
    form = driver.form
    qtbot.keyClicks(form.amount_edit, typed)
    assert form.amount_edit.text() == typed
    assert form.amount_edit.minor_units() is None
    assert fragment in form.error_text("amount")
    assert form.amount_error.isVisible()
    assert not form.amount_minor_label.isVisible()  # no "= 100 minor units" for "1O00"
    assert not form.send_button.isEnabled()


@pytest.mark.parametrize(("pasted", "fragment"), MISTYPED)
def test_pasted_amount_is_kept_and_refused_at_the_field(
    driver: PayoutDriver, qtbot: QtBot, pasted: str, fragment: str
) -> None:
    _amount_form(driver)
    form = driver.form
    QApplication.clipboard().setText(pasted)
    qtbot.keySequence(form.amount_edit, QKeySequence.StandardKey.Paste)
    assert form.amount_edit.text() == pasted
    assert form.amount_edit.minor_units() is None
    assert fragment in form.error_text("amount")
    assert not form.send_button.isEnabled()


def test_a_long_paste_is_not_cut_short(driver: PayoutDriver, qtbot: QtBot) -> None:
    _amount_form(driver)
    form = driver.form
    pasted = "1" * 40 + ".00"  # a length limit would have kept a smaller, valid-looking number
    QApplication.clipboard().setText(pasted)
    qtbot.keySequence(form.amount_edit, QKeySequence.StandardKey.Paste)
    assert form.amount_edit.text() == pasted
    assert "too large" in form.error_text("amount")


def test_fixing_the_typo_makes_the_amount_valid(driver: PayoutDriver, qtbot: QtBot) -> None:
    _amount_form(driver)
    form = driver.form
    qtbot.keyClicks(form.amount_edit, "1O00")
    assert not form.send_button.isEnabled()
    qtbot.keyClick(form.amount_edit, Qt.Key.Key_Home)
    qtbot.keyClick(form.amount_edit, Qt.Key.Key_Right)
    qtbot.keyClick(form.amount_edit, Qt.Key.Key_Delete)
    qtbot.keyClicks(form.amount_edit, "0")
    assert form.amount_edit.text() == "1000"
    assert form.amount_edit.minor_units() == 100000
    assert form.error_text("amount") == ""
    assert form.send_button.isEnabled()
