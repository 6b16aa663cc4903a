"""The window and shared profiles: a list refreshed on focus, stale edits refused, no salt."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from cactus_desk.payouts.states import State
from cactus_desk.profiles import Profile, ProfileStore
from cactus_desk.secrets import SecretStore
from cactus_desk.ui.main_window import MainWindow
from cactus_desk.ui.profiles.editor import ProfileDialog
from tests.ui.conftest import PayoutDriver

WAIT_MS = 10_000


def _shop(window: MainWindow, **changes: object) -> Profile:
    assert window.sandbox is not None
    values: dict[str, object] = {
        "name": "Acme live",
        "base_url": window.sandbox.base_url,
        "merchant_id": window.sandbox.merchant_id,
        "site_id": window.sandbox.site_id,
        "environment": "live",
    }
    values.update(changes)
    return Profile.model_validate(values)


def _gain_focus(window: MainWindow, qtbot: QtBot) -> None:
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=WAIT_MS)
    QApplication.sendEvent(window, QEvent(QEvent.Type.ActivationChange))


def test_the_window_picks_up_a_profile_added_elsewhere_when_it_gains_focus(
    window: MainWindow, qtbot: QtBot, data_home: Path
) -> None:
    names = [profile.name for profile in window.form.profiles()]
    elsewhere = ProfileStore(data_home)  # another desk, or a command on this computer
    added = elsewhere.add(_shop(window))
    assert [profile.name for profile in window.form.profiles()] == names  # not read yet

    _gain_focus(window, qtbot)
    qtbot.waitUntil(lambda: added in window.form.profiles(), timeout=WAIT_MS)
    selected = window.form.current_profile()

    # A change of its decimals elsewhere reaches the form the same way; the selection stays.
    elsewhere.update(elsewhere.get_by_id(added.id).model_copy(update={"decimals": {"RUB": 0}}))
    _gain_focus(window, qtbot)
    qtbot.waitUntil(
        lambda: any(p.decimals == {"RUB": 0} for p in window.form.profiles()), timeout=WAIT_MS
    )
    assert window.form.current_profile() is not None
    assert window.form.current_profile().id == selected.id  # type: ignore[union-attr]


def test_a_stale_edit_in_the_profile_dialog_is_refused_with_a_clear_message(
    window: MainWindow, qtbot: QtBot, data_home: Path
) -> None:
    store = window.profiles
    original = store.add(_shop(window))
    dialog = ProfileDialog(store, SecretStore(), window, profile=original)
    qtbot.addWidget(dialog)
    dialog.open()
    qtbot.waitUntil(dialog.keyring_checked, timeout=WAIT_MS)
    # Meanwhile someone else changes the profile.
    other = ProfileStore(data_home)
    other.update(other.get_by_id(original.id).model_copy(update={"site_id": 555}))

    dialog.merchant_edit.clear()
    qtbot.keyClicks(dialog.merchant_edit, "changed-here")
    dialog.save_button.click()
    qtbot.waitUntil(dialog.form_error.isVisible, timeout=WAIT_MS)
    assert "'Acme live' was changed after you opened it" in dialog.form_error.text()
    assert dialog.isVisible()
    kept = store.get_by_id(original.id)
    assert (kept.site_id, kept.merchant_id) == (555, original.merchant_id)


def test_send_without_this_desks_salt_says_how_to_save_it(driver: PayoutDriver) -> None:
    window = driver.window
    profile = window.profiles.add(_shop(window))
    window.reload_profiles(profile.id)
    request_id = driver.send("card", "RUB")

    assert driver.record(request_id).state is State.NOT_SENT
    text = driver.form.banner.text()
    assert "No site salt on this desk for profile 'Acme live'" in text
    assert "cactus-desk profile set-salt 'Acme live' --salt-stdin" in text
    assert window.sandbox is not None and window.sandbox.requests_received == 0
