"""Sending from the real window to the in-process sandbox: confirm, progress, outcomes."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton, QDialogButtonBox, QLabel, QLineEdit
from pytestqt.qtbot import QtBot

from cactus_desk.catalog import load_catalog
from cactus_desk.history.types import HistoryUnavailableError
from cactus_desk.payouts.states import State
from cactus_desk.profiles import Profile
from cactus_desk.sandbox import Fault
from cactus_desk.ui.main_window import MainWindow
from cactus_desk.ui.payout.confirm_dialog import ConfirmDialog
from tests.ui.conftest import PayoutDriver

METHODS = [method.wire for method in load_catalog().methods]
UNKNOWN_ADVICE = "Do not send it again"


@pytest.mark.parametrize("method", METHODS)
def test_a_payout_by_every_method_ends_accepted(driver: PayoutDriver, method: str) -> None:
    request_id = driver.send(method)

    record = driver.record(request_id)
    assert record.state is State.ACCEPTED
    assert record.method == method
    assert record.amount_minor == 150050
    banner = driver.form.banner
    assert banner.kind() == "accepted"
    assert f"invoice {record.invoice_id}" in banner.text()
    assert "Processing (3)" in banner.text()
    # Accepted: the form is ready for the next payout with a fresh id.
    assert driver.form.request_id_edit.text() not in ("", request_id)


def test_the_card_number_is_masked_in_the_confirm_dialog_and_the_history(
    driver: PayoutDriver,
) -> None:
    driver.fill("card", "RUB")
    driver.form.field("card_number").setText("4111 1111 1111 1111")
    dialog = driver.open_confirm()
    shown = " ".join(label.text() for label in dialog.findChildren(QLabel))
    assert "411111******1111" in shown
    assert "4111111111111111" not in shown
    assert "1 500.50 RUB" in shown
    assert "150050 minor units (kopecks)" in shown
    assert "SANDBOX" in shown
    ok = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
    assert ok.text() == "Send payout"

    request_id = driver.form.request_id_edit.text()
    driver.confirm(dialog)
    driver.wait_done()
    record = driver.record(request_id)
    assert record.request["additional_fields"]["card_number"] == "411111******1111"
    # The gateway got the real number: the sandbox accepted a Luhn-valid card.
    assert record.state is State.ACCEPTED


def test_the_confirm_dialog_shows_text_fields_as_sent_and_flags_as_yes_or_no(
    driver: PayoutDriver,
) -> None:
    driver.fill("cash", "RUB")
    driver.form.field("username").setText("true")  # a login that happens to read "true"
    dialog = driver.open_confirm()
    rows = dict(dialog.details.recipient)
    assert rows["Username"] == "true"
    assert rows["As soon as possible"] == "Yes"
    dialog.reject()


FAULT_OUTCOMES = [
    (Fault.NO_ANSWER, State.UNKNOWN, "unknown"),
    (Fault.RESET, State.UNKNOWN, "unknown"),
    (Fault.HTTP_500_HTML, State.UNKNOWN, "unknown"),
    (Fault.INVALID_JSON, State.UNKNOWN, "unknown"),
    (Fault.BAD_SIGNATURE, State.UNKNOWN, "unknown"),
    (Fault.ECHO_MISMATCH, State.UNKNOWN, "unknown"),
    (Fault.REJECT, State.REJECTED, "rejected"),
    # The documented error shape names no request_id, so it proves nothing.
    (Fault.REFUSE_WITHOUT_ID, State.REFUSED_UNVERIFIED, "refused_unverified"),
]


@pytest.mark.parametrize(("fault", "state", "kind"), FAULT_OUTCOMES)
def test_each_sandbox_fault_ends_in_the_right_state(
    driver: PayoutDriver, fault: Fault, state: State, kind: str
) -> None:
    assert driver.window.sandbox is not None
    driver.window.sandbox.set_fault(fault, message="Insufficient funds on the site")
    request_id = driver.send("sbp", "RUB")

    assert driver.record(request_id).state is state
    banner = driver.form.banner
    assert banner.kind() == kind
    assert request_id in banner.text()
    form = driver.form
    if state is State.UNKNOWN:
        assert banner.text().count(UNKNOWN_ADVICE) == 1  # said once, not twice over
        # The id stays, with a warning at it, and Send is off: no accidental resend.
        assert form.request_id_edit.text() == request_id
        assert "outcome is unknown" in form.error_text("request_id")
        assert not form.send_button.isEnabled()
    elif state is State.REJECTED:
        # Signed and echoing the request_id: the refusal proves nothing was paid.
        assert "Insufficient funds on the site" in banner.text()
        assert "Nothing was paid" in banner.text()
        assert form.send_button.isEnabled()
    else:
        # Possibly paid: the gateway's words are shown, never "Nothing was paid".
        assert "Insufficient funds on the site" in banner.text()
        assert "Nothing was paid" not in banner.text()
        assert banner.title() == "Refused, unverified:"
        assert form.request_id_edit.text() == request_id
        assert "refusal could not be verified" in form.error_text("request_id")
        assert not form.send_button.isEnabled()


def test_progress_counts_seconds_and_the_window_stays_responsive(
    driver: PayoutDriver, qtbot: QtBot
) -> None:
    window = driver.window
    assert window.sandbox is not None
    window.sandbox.set_fault(Fault.LATENCY, delay=1.8)
    driver.fill("card", "RUB")
    driver.confirm(driver.open_confirm())

    assert not driver.form.send_button.isEnabled()
    qtbot.waitUntil(lambda: "… 1 s" in driver.form.progress_text(), timeout=3000)
    assert driver.form.progress.isVisible()
    # While the answer is awaited the history can be searched.
    window.tabs.setCurrentIndex(1)
    search = window.history_panel.findChild(QLineEdit, "historyFilterEdit")
    qtbot.keyClicks(search, "cd-")
    assert search.text() == "cd-"
    assert window.send_controller.is_sending()

    driver.wait_done()
    assert driver.form.banner.kind() == "accepted"
    assert driver.form.progress_text() == ""
    assert not driver.form.progress.isVisible()


def test_ctrl_return_opens_the_confirm_dialog(driver: PayoutDriver, qtbot: QtBot) -> None:
    driver.fill("card", "RUB")
    driver.activate(driver.form.amount_edit)
    qtbot.keyClick(driver.form.amount_edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    dialog = driver.form.confirm_dialog()
    assert dialog is not None and dialog.objectName() == "confirmDialog"
    qtbot.waitExposed(dialog)
    dialog.reject()


def test_cancel_in_the_confirm_dialog_sends_nothing(driver: PayoutDriver, qtbot: QtBot) -> None:
    sandbox = driver.window.sandbox
    assert sandbox is not None
    before = sandbox.requests_received
    driver.fill("card", "RUB")
    dialog = driver.open_confirm()
    cancel = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Cancel)
    qtbot.mouseClick(cancel, Qt.MouseButton.LeftButton)

    qtbot.waitUntil(lambda: driver.form.confirm_dialog() is None)
    assert sandbox.requests_received == before
    assert driver.window.history.count() == 0
    assert driver.form.send_button.isEnabled()


def test_a_double_click_sends_once(driver: PayoutDriver, qtbot: QtBot) -> None:
    sandbox = driver.window.sandbox
    assert sandbox is not None
    sandbox.set_fault(Fault.LATENCY, delay=0.5)
    driver.fill("card", "RUB")
    # A double click is two clicks in a row: the second must not open a second dialog...
    for _ in range(2):
        qtbot.mouseClick(driver.form.send_button, Qt.MouseButton.LeftButton)
    dialog = driver.form.confirm_dialog()
    assert dialog is not None
    assert len(driver.form.findChildren(ConfirmDialog)) == 1
    # ...and two clicks on "Send payout", or a second accept, must not send twice.
    ok: QAbstractButton = dialog.send_button()
    for _ in range(2):
        qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    dialog.accept()
    # Send is off the moment the payout is confirmed, and a second dialog cannot open.
    assert not driver.form.send_button.isEnabled()
    assert driver.form.request_send() is None

    driver.wait_done()
    assert sandbox.requests_received == 1
    assert driver.window.history.count() == 1


def test_the_salt_never_reaches_a_widget(driver: PayoutDriver) -> None:
    sandbox = driver.window.sandbox
    assert sandbox is not None
    sandbox.set_fault(Fault.BAD_SIGNATURE)
    driver.send("card", "RUB")
    texts = [w.text() for w in driver.window.findChildren(QLabel)]
    texts += [w.text() for w in driver.window.findChildren(QLineEdit)]
    texts += [w.toolTip() for w in driver.window.findChildren(QLabel)]
    assert all(sandbox.salt not in text for text in texts)


def _live_profile(window: MainWindow, **changes: object) -> Profile:
    assert window.sandbox is not None
    profile = Profile(
        name="Acme live",
        base_url=window.sandbox.base_url,
        merchant_id=window.sandbox.merchant_id,
        site_id=window.sandbox.site_id,
        environment="live",
        **changes,
    )
    window.profiles.add(profile)
    window.reload_profiles(profile.id)
    return profile


def test_a_live_profile_is_unmistakable_in_the_form_and_the_confirm_dialog(
    driver: PayoutDriver,
) -> None:
    profile = _live_profile(driver.window)
    driver.window.secrets.set_salt(profile.id, driver.window.sandbox.salt)
    assert driver.form.current_profile() == profile
    assert driver.form.environment_banner.text().startswith("LIVE")
    driver.fill("card", "RUB")
    dialog = driver.open_confirm()
    banner = dialog.findChild(QLabel, "environmentBanner")
    assert banner.text() == "LIVE: this sends real money"
    assert "#b71c1c" in banner.styleSheet()
    # With real money Enter does not send by reflex.
    assert not dialog.send_button().isDefault()
    dialog.reject()


def test_a_profile_without_a_salt_is_not_sent(driver: PayoutDriver) -> None:
    _live_profile(driver.window)
    sandbox = driver.window.sandbox
    assert sandbox is not None
    request_id = driver.send("card", "RUB")

    assert driver.record(request_id).state is State.NOT_SENT
    assert driver.form.banner.kind() == "error"
    assert driver.form.banner.title() == "Not sent:"
    assert driver.form.banner.text().startswith("No site salt")  # not "Not sent: Not sent: …"
    assert sandbox.requests_received == 0


def test_the_history_shows_the_payout_after_it_is_sent(driver: PayoutDriver, qtbot: QtBot) -> None:
    panel = driver.window.history_panel
    request_id = driver.send("sbp", "RUB")
    assert panel.select_request(request_id)


def test_an_outcome_that_could_not_be_saved_is_not_called_not_sent(
    driver: PayoutDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object) -> None:
        raise HistoryUnavailableError("disk I/O error")

    monkeypatch.setattr(driver.window.history, "record_outcome", broken)
    driver.send("card", "RUB")

    banner = driver.form.banner
    assert banner.kind() == "warning"
    assert banner.title() != "Not sent:"
    assert "accepted it as invoice" in banner.text()


def test_a_history_that_cannot_record_the_attempt_says_not_sent(
    driver: PayoutDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*_args: object) -> int:
        raise HistoryUnavailableError("database or disk is full")

    monkeypatch.setattr(driver.window.history, "create_attempt", full)
    request_id = driver.send("card", "RUB")

    banner = driver.form.banner
    assert banner.title() == "Not sent:"
    assert "history could not be written (database or disk is full)" in banner.text()
    assert driver.window.sandbox.invoices == []
    assert driver.form.request_id_edit.text() == request_id  # unused: free to send again
