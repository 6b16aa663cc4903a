"""Issue 11 item 4 in the window: a profile's decimals in the form, the confirm dialog, the
history and the profile dialog; the first LIVE payout in an undocumented currency confirms
the integer on the wire, once per profile."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QCheckBox, QLabel
from pytestqt.qtbot import QtBot

from cactus_desk.payouts.states import State
from cactus_desk.profiles import Profile, ProfileStore
from cactus_desk.sandbox import Fault
from cactus_desk.secrets import SecretStore
from cactus_desk.ui.history.model import Column
from cactus_desk.ui.main_window import MainWindow
from cactus_desk.ui.profiles.editor import ProfileDialog
from tests.ui.conftest import PayoutDriver


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
    window.secrets.set_salt(profile.id, window.sandbox.salt)
    window.reload_profiles(profile.id)
    return profile


def test_the_first_live_idr_payout_needs_the_integer_confirmed_then_never_again(
    driver: PayoutDriver, qtbot: QtBot
) -> None:
    window, form = driver.window, driver.form
    profile = _live_profile(window, decimals={"IDR": 0})
    driver.fill("card", "IDR", amount="15000")
    assert form.amount_minor_label.text() == (
        "= 15000 minor units will be sent (IDR with 0 decimals)"
    )
    dialog = driver.open_confirm()
    units = dialog.findChild(QCheckBox, "unitsConfirmCheck")
    assert units is not None
    assert units.text().startswith("I confirm 15000 minor units go on the wire")
    assert not dialog.send_button().isEnabled()
    dialog.accept()  # whatever presses "Send payout", nothing goes unticked
    assert dialog.isVisible()
    assert window.sandbox is not None and window.sandbox.requests_received == 0

    units.click()
    assert dialog.send_button().isEnabled()
    driver.confirm(dialog)
    driver.wait_done()
    assert form.banner.kind() == "accepted"
    assert window.sandbox.invoices[-1]["amount"] == 15000
    saved = ProfileStore(window.data_dir).get_by_id(profile.id)
    assert saved.units_confirmed == {"IDR": 0}

    driver.fill("card", "IDR", amount="20000")
    again = driver.open_confirm()
    assert again.findChild(QCheckBox, "unitsConfirmCheck") is None
    assert again.send_button().isEnabled()
    again.reject()

    # Another undocumented currency on the same profile still asks.
    driver.fill("card", "VND", amount="20000")
    vnd = driver.open_confirm()
    assert vnd.findChild(QCheckBox, "unitsConfirmCheck") is not None
    vnd.reject()


def test_a_cancelled_confirmation_is_not_remembered(driver: PayoutDriver) -> None:
    window = driver.window
    profile = _live_profile(window)
    driver.fill("card", "IDR", amount="150.50")
    dialog = driver.open_confirm()
    units = dialog.findChild(QCheckBox, "unitsConfirmCheck")
    assert units is not None and "15050 minor units" in units.text()
    units.click()
    dialog.reject()
    assert ProfileStore(window.data_dir).get_by_id(profile.id).units_confirmed == {}


def test_a_sandbox_payout_in_idr_asks_nothing(driver: PayoutDriver) -> None:
    driver.fill("card", "IDR", amount="150.50")
    dialog = driver.open_confirm()
    assert dialog.findChild(QCheckBox, "unitsConfirmCheck") is None
    assert dialog.details.amount_minor == 15050
    dialog.reject()


def test_the_history_shows_amounts_with_the_profile_s_decimals(
    driver: PayoutDriver, qtbot: QtBot
) -> None:
    window = driver.window
    _live_profile(window, decimals={"IDR": 0}, units_confirmed={"IDR": 0})
    request_id = driver.send("card", "IDR", amount="15000")
    assert driver.record(request_id).state is State.ACCEPTED
    panel = window.history_panel
    panel.refresh()
    assert panel.wait_until_idle()  # the rows are read on workers
    row = panel.model.row_of_request(request_id)
    assert row is not None
    index = panel.model.index(row, Column.AMOUNT)
    assert index.data() == "15 000"  # not "150.00", as the usual two decimals would read it


def test_the_profile_dialog_edits_the_decimals_and_keeps_the_confirmations(
    qtbot: QtBot, data_home: Path
) -> None:
    store = ProfileStore(data_home)
    profile = store.add(
        Profile(
            name="Acme live",
            base_url="https://gw.example.com",
            merchant_id="m",
            site_id=3,
            units_confirmed={"VND": 0},
        )
    )
    dialog = ProfileDialog(store, SecretStore(), None, profile=profile)
    qtbot.addWidget(dialog)
    dialog.open()
    qtbot.waitUntil(dialog.keyring_checked, timeout=10_000)
    assert dialog.decimal_spins["IDR"].value() == 2
    assert "does not document" in dialog.decimal_spins["IDR"].toolTip()
    dialog.decimal_spins["IDR"].setValue(0)
    dialog.decimal_spins["USDT"].setValue(6)
    dialog.save()
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=10_000)
    saved = store.get_by_id(profile.id)
    assert saved.decimals == {"IDR": 0, "USDT": 6}
    assert saved.units_confirmed == {"VND": 0}


def test_the_resend_dialog_reads_the_amount_with_the_profile_s_decimals(
    driver: PayoutDriver,
) -> None:
    window = driver.window
    assert window.sandbox is not None
    _live_profile(window, decimals={"IDR": 0}, units_confirmed={"IDR": 0})
    window.sandbox.set_fault(Fault.BAD_SIGNATURE, times=1)
    request_id = driver.send("card", "IDR", amount="15000")
    record = driver.record(request_id)
    assert record.state is State.UNKNOWN
    dialog = window.open_resend(record.id)
    assert dialog is not None
    texts = [label.text() for label in dialog.findChildren(QLabel)]
    assert "15 000 IDR" in texts  # not "150.00 IDR"
    dialog.reject()
