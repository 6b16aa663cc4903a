"""Issue 11 item 19, the payout form's part: the confirm dialog repeats the balance warning,
a disabled Send looks disabled, messages do not move the form, untouched fields stay quiet,
the checks agree, separators are dropped on the wire, and switching profile forgets what
belonged to the other one."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QCheckBox, QLabel, QLineEdit, QWidget
from pytestqt.qtbot import QtBot

from cactus_desk.profiles import Profile
from cactus_desk.ui.main_window import MINIMUM_SIZE, MainWindow
from tests.ui.conftest import PayoutDriver


def _live_profile(window: MainWindow) -> Profile:
    assert window.sandbox is not None
    profile = Profile(
        name="Acme live",
        base_url=window.sandbox.base_url,
        merchant_id=window.sandbox.merchant_id,
        site_id=window.sandbox.site_id,
        environment="live",
    )
    window.profiles.add(profile)
    window.secrets.set_salt(profile.id, window.sandbox.salt)
    window.reload_profiles(profile.id)
    return profile


def _balance_loaded(driver: PayoutDriver) -> None:
    """Wait for the status bar's own fetch, so it cannot overwrite the balance a test sets."""
    driver.qtbot.waitUntil(lambda: bool(driver.window.balance_widget.balances()))


def test_the_confirm_dialog_repeats_the_over_balance_warning(driver: PayoutDriver) -> None:
    _balance_loaded(driver)
    driver.fill("card", "RUB", amount="20.00")
    driver.form.set_balances({"RUB": 1000})
    dialog = driver.open_confirm()
    warning = dialog.findChild(QLabel, "confirmBalanceWarning")
    assert warning is not None and warning.isVisible()
    assert warning.text() == driver.form.amount_warning.text()
    assert "10.00 RUB" in warning.text()
    assert dialog.send_button().isEnabled()  # a warning, not a block
    dialog.reject()

    driver.form.set_balances({"RUB": 5000})
    dialog = driver.open_confirm()
    assert dialog.findChild(QLabel, "confirmBalanceWarning") is None
    dialog.reject()


def _background(widget: QWidget) -> QColor:
    image: QImage = widget.grab().toImage()
    return image.pixelColor(QPoint(6, image.height() // 2))


def test_a_disabled_send_looks_disabled(driver: PayoutDriver, qtbot: QtBot) -> None:
    driver.fill("card", "RUB")
    send = driver.form.send_button
    assert send.isEnabled()
    enabled = _background(send)
    driver.form.site_login_edit.clear()
    assert not send.isEnabled()
    disabled = _background(send)
    # Not a subtle shade: the filled button turns into a grey one.
    assert abs(enabled.hueF() - disabled.hueF()) > 0.1 or disabled.saturationF() < 0.1
    assert enabled.saturationF() > 0.5
    assert abs(enabled.lightnessF() - disabled.lightnessF()) > 0.2


def _positions(form: QWidget, widgets: list[QWidget]) -> list[int]:
    return [w.mapTo(form, QPoint(0, 0)).y() for w in widgets]


def test_messages_appear_without_moving_the_form(driver: PayoutDriver, qtbot: QtBot) -> None:
    form = driver.form
    _balance_loaded(driver)
    driver.fill("card", "RUB")
    anchors: list[QWidget] = [
        form.amount_edit,
        form.request_id_edit,
        form.field("card_holder"),
        form.field("bank_name"),
        form.send_button,
    ]
    qtbot.wait(50)
    before = _positions(form, anchors)
    for edit, bad in (
        (form.site_login_edit, ""),
        (form.amount_edit, "1O00"),
        (form.field("card_number"), "4242"),
        (form.field("card_holder"), "12345"),
    ):
        assert isinstance(edit, QLineEdit)
        edit.clear()
        qtbot.keyClicks(edit, bad or "x")
        if not bad:
            qtbot.keyClick(edit, Qt.Key.Key_Backspace)
    form.set_balances({"RUB": 1})
    qtbot.wait(50)
    assert form.error_text("site_login") and form.error_text("amount")
    assert form.error_text("card_number") and form.error_text("card_holder")
    assert "check:" in form.hint_label.text()
    assert _positions(form, anchors) == before

    form.field("card_holder").setText("John Wick")
    driver.fill("card", "RUB", amount="2000.00")
    assert form.amount_warning.isVisible()  # the minor units and the warning, two lines
    qtbot.wait(50)
    assert _positions(form, anchors) == before


def test_untouched_fields_stay_quiet_until_edited_or_send_is_tried(
    driver: PayoutDriver, qtbot: QtBot
) -> None:
    form = driver.form
    form.set_currency("RUB")
    assert form.set_method("card")
    assert "card_number" in form.errors()
    assert form.error_text("card_number") == form.error_text("site_login") == ""
    form.request_send()  # a try shows everything missing
    assert form.error_text("card_number") == "Card number is required."

    request_id = driver.send("card", "RUB")
    assert driver.record(request_id).request_id == request_id
    # A new payout starts untouched: emptying a field for the next one is not an error yet.
    form.field("card_number").setText("")
    form.site_login_edit.setText("")
    assert form.error_text("card_number") == form.error_text("site_login") == ""
    assert not form.send_button.isEnabled()
    qtbot.keyClicks(form.field("card_number"), "4")
    qtbot.keyClick(form.field("card_number"), Qt.Key.Key_Backspace)
    assert form.error_text("card_number") == "Card number is required."


def test_a_past_cash_pickup_time_is_refused_at_the_field(
    driver: PayoutDriver, qtbot: QtBot
) -> None:
    driver.fill("cash", "RUB")
    form = driver.form
    asap = form.field("asap")
    assert isinstance(asap, QCheckBox)
    asap.click()
    qtbot.keyClicks(form.field("time"), "2024-05-01 10:22")
    assert form.error_text("time").startswith("This time has passed")
    assert not form.send_button.isEnabled()


def test_punctuated_cpf_and_separated_numbers_go_on_the_wire_as_digits(
    driver: PayoutDriver, qtbot: QtBot
) -> None:
    window = driver.window
    window.set_sandbox_extensions(["PIX"])
    driver.fill("PIX", "USD")
    form = driver.form
    for wire, typed in (
        ("phone_number", "+55 (11) 99999-8888"),
        ("pix_transfer_key", "123.456.789-09"),
    ):
        edit = form.field(wire)
        assert isinstance(edit, QLineEdit)
        edit.clear()
        qtbot.keyClicks(edit, typed)
        assert form.error_text(wire) == ""
    dialog = driver.open_confirm()
    shown = dict(dialog.details.recipient)
    assert shown["Phone number"] == "5511999998888"
    assert shown["PIX key"] == "12345678909"
    dialog.reject()

    key = form.field("pix_transfer_key")
    key.clear()
    qtbot.keyClicks(key, "123.456.789-00")
    assert "CPF has a typo" in form.error_text("pix_transfer_key")

    driver.fill("card", "RUB")
    card = form.field("card_number")
    card.clear()
    qtbot.keyClicks(card, "4242-4242-4242-4242")
    assert form.error_text("card_number") == ""
    request_id = form.request_id_edit.text()
    driver.confirm(driver.open_confirm())
    driver.wait_done()
    assert driver.record(request_id).request["additional_fields"]["card_number"] == (
        "424242******4242"
    )
    assert window.sandbox is not None
    invoice = window.sandbox.invoices[-1]
    assert invoice["additional_fields"]["card_number"].replace("*", "").isdigit()


def test_switching_profile_clears_the_result_and_live_clears_the_recipient(
    driver: PayoutDriver, qtbot: QtBot
) -> None:
    window, form = driver.window, driver.form
    driver.send("card", "RUB")
    assert form.banner.isVisible()
    sandbox_id = form.current_profile().id
    driver.fill("card", "RUB", site_login="test-user")
    form.request_send()  # touch everything: cleared fields must still not show as missing

    _live_profile(window)
    assert form.current_profile().is_live
    assert not form.banner.isVisible() and form.banner.kind() == ""
    assert form.site_login_edit.text() == ""
    assert all(value in ("", False) for value in form.panel().values().values())
    assert form.error_text("site_login") == form.error_text("card_number") == ""
    assert form.amount_edit.text() == "1500.50"  # not a recipient detail

    # Back to the sandbox: nothing of the LIVE form is carried into the test one.
    qtbot.keyClicks(form.site_login_edit, "real-customer")
    form.select_profile(sandbox_id)
    assert form.site_login_edit.text() == "real-customer"  # only sandbox -> LIVE clears


def test_the_window_has_a_minimum_size_that_fits_the_form(window: MainWindow) -> None:
    window.resize(200, 150)
    assert (window.width(), window.height()) >= MINIMUM_SIZE
    assert window.minimumWidth() >= MINIMUM_SIZE[0]
    assert window.minimumHeight() >= MINIMUM_SIZE[1]
    window.resize(*MINIMUM_SIZE)
    form = window.form
    assert form.width() >= form.minimumSizeHint().width()
