"""The payout form: method panels, currency-aware amounts, checks at the field, keyboard use."""

from __future__ import annotations

from decimal import Decimal

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QCheckBox, QComboBox, QLineEdit, QWidget
from pytestqt.qtbot import QtBot

from cactus_desk.catalog import load_catalog
from cactus_desk.checks import CHECKS
from cactus_desk.ui.main_window import MainWindow
from cactus_desk.ui.widgets.amount_edit import AmountEdit
from tests.ui.conftest import PayoutDriver


def test_amount_edit_keeps_every_keystroke_and_reads_the_exact_amount(qtbot: QtBot) -> None:
    edit = AmountEdit()
    qtbot.addWidget(edit)
    edit.set_currency("RUB")
    qtbot.keyClicks(edit, "1500.57")
    assert edit.text() == "1500.57"
    assert edit.amount() == Decimal("1500.57")
    assert edit.minor_units() == 150057
    assert edit.error() is None

    edit.clear()
    qtbot.keyClicks(edit, "1a50-0x.5$7")
    assert edit.text() == "1a50-0x.5$7"  # kept as typed, never reduced to 1500.57
    assert edit.amount() is None
    assert "“a”" in (edit.error() or "")


def test_a_fraction_the_currency_cannot_hold_is_refused_not_rewritten(qtbot: QtBot) -> None:
    edit = AmountEdit()
    qtbot.addWidget(edit)
    edit.set_currency("VND")
    qtbot.keyClicks(edit, "1500.50")
    assert edit.text() == "1500.50"  # never silently turned into 150050
    assert edit.minor_units() is None
    assert "whole number" in (edit.error() or "")

    edit.set_currency("RUB")
    edit.setText("10.555")
    assert edit.minor_units() is None
    assert edit.error()


def test_an_ambiguous_grouping_gets_a_message_instead_of_a_guess(qtbot: QtBot) -> None:
    edit = AmountEdit()
    qtbot.addWidget(edit)
    edit.set_currency("USD")
    qtbot.keyClicks(edit, "1,500")
    assert edit.minor_units() is None
    assert "1500" in (edit.error() or "")


@pytest.mark.parametrize(
    ("pasted", "code", "minor"),
    [
        ("1,500.50", "RUB", 150050),
        ("1.500,50", "RUB", 150050),
        ("1,500,000", "RUB", 150000000),
        ("1 500,50", "RUB", 150050),
        ("1\u00a0500.50 RUB", "RUB", 150050),
        ("RUB 1 500.50", "RUB", 150050),
        ("1.500.000", "VND", 1500000),
    ],
)
def test_pasted_thousands_separators_are_not_read_as_the_decimal_point(
    qtbot: QtBot, pasted: str, code: str, minor: int
) -> None:
    edit = AmountEdit()
    qtbot.addWidget(edit)
    edit.set_currency(code)
    edit.setText(pasted)
    assert edit.minor_units() == minor


def test_amount_shows_the_exact_minor_units_that_will_be_sent(
    window: MainWindow, qtbot: QtBot
) -> None:
    form = window.form
    form.set_currency("RUB")
    qtbot.keyClicks(form.amount_edit, "1500.50")
    assert "= 150050 minor units (kopecks)" in form.amount_minor_label.text()

    form.set_currency("VND")
    form.amount_edit.clear()
    qtbot.keyClicks(form.amount_edit, "25000")
    assert form.amount_minor_label.text().startswith("= 25000 minor units")


def test_the_method_panel_swaps_with_the_method_and_adapts_to_the_currency(
    window: MainWindow,
) -> None:
    form = window.form
    form.set_currency("AZN")
    assert form.set_method("card")
    assert form.stack.currentWidget() is form.panels["card"]
    card = form.panels["card"]
    assert card.findChild(QLineEdit, "field_expiry_date") is not None
    assert form.field("bank_option").isVisibleTo(form)  # FIN ID / VOEN exists only for AZN

    form.set_currency("RUB")
    assert not form.field("bank_option").isVisibleTo(form)
    assert "bank_option" not in form.panel().values()

    assert form.set_method("sbp")
    assert form.stack.currentWidget() is form.panels["sbp"]
    assert form.field("phone_number").isVisibleTo(form)
    # The stack sizes to the page on show: the short SBP panel leaves no card-sized gap.
    assert form.stack.sizeHint().height() == form.panels["sbp"].sizeHint().height()


def test_a_panel_built_on_first_choice_shows_the_fields_of_the_chosen_currency(
    window: MainWindow,
) -> None:
    form = window.form
    catalog = load_catalog()
    assert list(form.panels) == [form.method()]  # only the panel on show is built at start
    form.set_currency("AZN")
    offered = [m.wire for m in catalog.methods_for("AZN", form.current_profile().extensions)]
    assert len(offered) > 1
    for wire in offered:
        assert form.set_method(wire)
        panel = form.panel()
        assert form.stack.currentWidget() is panel and form.panels[wire] is panel
        shown = [spec.wire for spec in catalog.fields_for(wire, "AZN")]
        assert [spec.wire for spec in panel.visible_fields()] == shown
        for spec in panel.method.fields:
            assert form.field(spec.wire).isVisibleTo(form) == (spec.wire in shown), spec.wire
        assert form.stack.sizeHint().height() == panel.sizeHint().height()
    # A currency change reaches every panel built so far, the hidden ones too.
    form.set_currency("RUB")
    for wire in offered:
        built = form.panels[wire]
        assert built.visible_fields() == list(catalog.fields_for(wire, "RUB")), wire


def test_a_method_not_offered_for_the_currency_is_disabled_with_the_reason(
    window: MainWindow,
) -> None:
    form = window.form
    form.set_currency("USDT")
    combo = form.method_combo
    index = combo.findData("card")
    assert not combo.model().item(index).isEnabled()
    assert "Not offered for USDT" in combo.itemData(index, Qt.ItemDataRole.ToolTipRole)
    assert not form.set_method("card")
    assert form.method() == "binance"  # the one method USDT has was chosen for the person


def test_an_extension_is_disabled_until_the_profile_enables_it(window: MainWindow) -> None:
    form = window.form
    window.set_sandbox_extensions([])
    form.set_currency("USD")
    index = form.method_combo.findData("skrill")
    assert not form.method_combo.model().item(index).isEnabled()
    assert "not enabled for Sandbox" in form.method_combo.itemData(
        index, Qt.ItemDataRole.ToolTipRole
    )
    assert not form.set_method("skrill")

    window.set_sandbox_extensions(["skrill"])
    assert form.set_method("skrill")


# One bad value per field check: (method, currency, field, what the person types).
BAD_FIELD_INPUT = [
    ("card", "RUB", "card_number", "4111111111111112"),
    ("card", "RUB", "card_holder", "12345"),
    ("card", "RUB", "bank_name", "x" * 256),
    ("card", "RUB", "expiry date", "13/30"),
    ("sbp", "RUB", "phone_number", "12ab"),
    ("localbanks", "RUB", "account_number", "abc"),
    ("skrill", "USD", "skrill_account", "not-an-email"),
    ("wise", "USD", "wise_tag", "nope"),
    ("papara", "USD", "papara_account", "12"),
    ("PIX", "USD", "pix_transfer_key", "xyz"),
    ("cash", "RUB", "time", "2023-13-01 10:22"),
    ("cash", "RUB", "time", "2023-05-01 10:22"),
    ("PIX", "USD", "pix_transfer_key", "123.456.789-00"),
    ("cash", "RUB", "verification_code", "12"),
]


@pytest.mark.parametrize(("method", "currency", "wire", "bad"), BAD_FIELD_INPUT)
def test_a_bad_field_value_is_refused_at_the_field(
    driver: PayoutDriver, qtbot: QtBot, method: str, currency: str, wire: str, bad: str
) -> None:
    driver.fill(method, currency)
    form = driver.form
    widget = form.field(wire)
    assert isinstance(widget, QLineEdit)
    widget.clear()
    qtbot.keyClicks(widget, bad)

    check = load_catalog().method(method).field(wire).check
    expected = CHECKS[check](bad)
    assert expected, "the bad value must really be bad"
    assert form.error_text(wire) == expected
    error_label = form.panel().findChild(QWidget, f"{widget.objectName()}_error")
    assert error_label is not None and error_label.isVisible()
    assert "border" in widget.styleSheet()
    assert not form.send_button.isEnabled()

    widget.clear()
    spec = load_catalog().method(method).field(wire)
    # The docs' example pickup time has passed, and a past time is refused: type a later one.
    qtbot.keyClicks(widget, "2099-05-01 10:22" if spec.check == "datetime" else spec.example)
    assert form.error_text(wire) == ""
    assert form.send_button.isEnabled()


@pytest.mark.parametrize(
    ("key", "bad", "fragment"),
    [
        ("site_login", "x" * 129, "Too long"),
        ("amount", "0", "more than zero"),
        ("request_id", "bad id!", "Use only letters"),
    ],
)
def test_bad_payout_details_are_refused_at_their_field(
    driver: PayoutDriver, qtbot: QtBot, key: str, bad: str, fragment: str
) -> None:
    driver.fill("card", "RUB")
    form = driver.form
    edit = {
        "site_login": form.site_login_edit,
        "amount": form.amount_edit,
        "request_id": form.request_id_edit,
    }[key]
    edit.clear()
    qtbot.keyClicks(edit, bad)
    assert fragment in form.error_text(key)
    assert not form.send_button.isEnabled()


def test_a_required_field_left_empty_is_named_and_shown_when_sending_is_tried(
    driver: PayoutDriver, qtbot: QtBot
) -> None:
    driver.fill("sbp", "RUB")
    form = driver.form
    form.field("phone_holder").setText("")
    assert not form.send_button.isEnabled()
    assert "Phone holder" in form.hint_label.text()
    assert form.error_text("phone_holder") == ""  # untouched: not red yet

    driver.activate(form.site_login_edit)
    qtbot.keyClick(form.site_login_edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert form.confirm_dialog() is None
    assert form.error_text("phone_holder") == "Phone holder is required."


def test_cash_needs_as_soon_as_possible_or_a_time(driver: PayoutDriver, qtbot: QtBot) -> None:
    driver.fill("cash", "RUB")
    form = driver.form
    asap = form.field("asap")
    assert isinstance(asap, QCheckBox)
    asap.click()  # untick it
    assert not asap.isChecked()
    assert "time" in form.errors()
    assert not form.send_button.isEnabled()
    qtbot.keyClicks(form.field("time"), "2030-05-01 10:22")
    assert form.send_button.isEnabled()


def test_the_form_warns_but_does_not_block_above_the_available_balance(
    driver: PayoutDriver,
) -> None:
    driver.fill("card", "RUB", amount="20.00")
    form = driver.form
    form.set_balances({"RUB": 1000})
    assert form.amount_warning.isVisible()
    assert "10.00 RUB" in form.amount_warning.text()
    assert form.send_button.isEnabled()
    form.set_balances({"RUB": 5000})
    assert not form.amount_warning.isVisible()


def test_the_balance_from_the_status_bar_reaches_the_form(window: MainWindow, qtbot: QtBot) -> None:
    qtbot.waitUntil(lambda: bool(window.balance_widget.balances()))
    assert window.form._balances == window.balance_widget.balances()


def test_the_status_bar_leads_with_the_balance_of_the_currency_being_paid(
    window: MainWindow, qtbot: QtBot
) -> None:
    qtbot.waitUntil(lambda: bool(window.balance_widget.balances()))
    form = window.form
    assert window.balance_widget.text().startswith(f"Balance: {form.currency()} ")
    form.currency_combo.setCurrentIndex(form.currency_combo.findData("EUR"))
    assert window.balance_widget.text().startswith("Balance: EUR ")


def test_new_id_puts_a_fresh_request_id(window: MainWindow, qtbot: QtBot) -> None:
    form = window.form
    first = form.request_id_edit.text()
    qtbot.mouseClick(form.new_id_button, Qt.MouseButton.LeftButton)
    assert form.request_id_edit.text() not in ("", first)


def test_every_input_has_an_accessible_name_and_a_tooltip_with_an_example(
    window: MainWindow,
) -> None:
    form = window.form
    inputs: list[QWidget] = [
        form.profile_combo,
        form.currency_combo,
        form.method_combo,
        form.site_login_edit,
        form.amount_edit,
        form.request_id_edit,
        form.new_id_button,
    ]
    # Every method's panel, each built as when its method is first chosen.
    panels = [form.panel_for(method.wire) for method in load_catalog().methods]
    for panel in panels:
        inputs += [panel.field_input(spec.wire) for spec in panel.method.fields]
    for widget in inputs:
        assert widget.accessibleName(), widget.objectName()
        assert widget.toolTip(), widget.objectName()
    for panel in panels:
        for spec in panel.method.fields:
            widget = panel.field_input(spec.wire)
            assert widget.objectName() == spec.object_name
            if isinstance(widget, QLineEdit):
                assert widget.placeholderText() == spec.example
                assert f"Example: {spec.example}" in widget.toolTip()


def test_the_form_is_usable_from_the_keyboard_in_order(driver: PayoutDriver, qtbot: QtBot) -> None:
    driver.fill("sbp", "RUB")
    form = driver.form
    driver.activate(form.profile_combo)
    expected = [
        form.currency_combo,
        form.method_combo,
        form.site_login_edit,
        form.amount_edit,
        form.request_id_edit,
        form.new_id_button,
        form.field("phone_number"),
        form.field("phone_holder"),
        form.field("bank_name"),
        form.send_button,
    ]
    for widget in expected:
        qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Tab)
        assert QApplication.focusWidget() is widget, widget.objectName()

    qtbot.keyClick(form.field("bank_name"), Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert form.confirm_dialog() is not None
    form.confirm_dialog().reject()


def test_the_profile_combo_names_the_environment(window: MainWindow) -> None:
    combo = window.findChild(QComboBox, "profileCombo")
    assert combo is window.form.profile_combo
    assert combo.currentText() == "Sandbox · sandbox"
    assert "SANDBOX" in window.form.environment_banner.text()
