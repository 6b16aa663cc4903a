"""The profile dialogs: fields, field errors, the keyring, and a real connection test."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail
from keyring.errors import KeyringLocked
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QCheckBox, QLabel, QMessageBox
from pytestqt.qtbot import QtBot

from cactus_desk.profiles import Profile, ProfileStore
from cactus_desk.sandbox import SandboxGateway
from cactus_desk.secrets import SERVICE, SecretStore
from cactus_desk.ui.profiles.editor import ProfileDialog
from cactus_desk.ui.profiles.manager import ProfileManagerDialog
from tests.memory_keyring import MemoryKeyring

WAIT_MS = 10_000
SALT = "s3cr3t-salt-value"


@pytest.fixture
def profiles(data_home: Path) -> ProfileStore:
    return ProfileStore(data_home)


@pytest.fixture
def secrets() -> SecretStore:
    return SecretStore()


@pytest.fixture
def gateway() -> Iterator[SandboxGateway]:
    with SandboxGateway() as gw:
        yield gw


def _dialog(
    qtbot: QtBot, profiles: ProfileStore, secrets: SecretStore, **kw: object
) -> ProfileDialog:
    dialog = ProfileDialog(profiles, secrets, None, **kw)  # type: ignore[arg-type]
    qtbot.addWidget(dialog)
    dialog.open()
    qtbot.waitUntil(dialog.keyring_checked, timeout=WAIT_MS)
    return dialog


def _fill(
    qtbot: QtBot,
    dialog: ProfileDialog,
    *,
    name: str = "Main desk",
    url: str = "https://cactusgino.com",
    merchant: str = "m_demo",
    site: str = "7",
    salt: str = SALT,
    environment: str = "live",
) -> None:
    for edit, text in (
        (dialog.name_edit, name),
        (dialog.base_url_edit, url),
        (dialog.merchant_edit, merchant),
        (dialog.site_edit, site),
        (dialog.salt_edit, salt),
    ):
        edit.clear()
        qtbot.keyClicks(edit, text)
    dialog.environment_combo.setCurrentIndex(dialog.environment_combo.findData(environment))


def _saved_file(data_home: Path) -> str:
    return (data_home / "profiles.json").read_text(encoding="utf-8")


def test_adding_a_profile_puts_the_salt_in_the_keyring_only(
    qtbot: QtBot,
    profiles: ProfileStore,
    secrets: SecretStore,
    memory_keyring: MemoryKeyring,
    data_home: Path,
) -> None:
    dialog = _dialog(qtbot, profiles, secrets)
    assert dialog.salt_edit.echoMode() == dialog.salt_edit.EchoMode.Password
    _fill(qtbot, dialog, environment="sandbox")
    dialog.findChild(QCheckBox, "extension_wise").setChecked(True)

    with qtbot.waitSignal(dialog.profileSaved) as signal:
        dialog.save_button.click()

    profile = profiles.get("Main desk")
    assert signal.args == [profile.id]
    assert profile.environment == "sandbox"
    assert profile.extensions == ["wise"]
    assert (profile.base_url, profile.merchant_id, profile.site_id) == (
        "https://cactusgino.com",
        "m_demo",
        7,
    )
    assert memory_keyring.passwords == {(SERVICE, f"{profile.id}:salt"): SALT}
    assert SALT not in _saved_file(data_home)
    assert dialog.salt_edit.text() == ""
    assert not dialog.isVisible()


def test_the_extension_methods_are_offered(
    qtbot: QtBot, profiles: ProfileStore, secrets: SecretStore
) -> None:
    dialog = _dialog(qtbot, profiles, secrets)
    boxes = {box.objectName() for box in dialog.findChildren(QCheckBox)}
    assert {"extension_skrill", "extension_wise", "extension_papara", "extension_PIX"} <= boxes
    assert "extension_card" not in boxes


def test_bad_fields_get_their_own_messages_and_nothing_is_saved(
    qtbot: QtBot, profiles: ProfileStore, secrets: SecretStore, data_home: Path
) -> None:
    dialog = _dialog(qtbot, profiles, secrets)
    _fill(qtbot, dialog, name="  ", url="http://gateway.example", merchant="", site="7a", salt="")

    dialog.save_button.click()

    errors = dialog.errors()
    assert errors["name"] == "The profile name is empty"
    assert "https://" in errors["base_url"]
    assert errors["merchant_id"] == "The merchant ID is empty"
    assert errors["site_id"] == "The site ID is a whole number, e.g. 101"
    assert errors["salt"] == "Enter the site salt from Cactus"
    assert dialog.findChild(QLabel, "profileError_site_id").isVisible()
    assert dialog.isVisible()
    assert not (data_home / "profiles.json").exists()

    _fill(qtbot, dialog, site="0")
    dialog.save_button.click()
    assert dialog.errors() == {"site_id": "The site ID must be 1 or more"}
    assert not dialog.findChild(QLabel, "profileError_name").isVisible()


def test_a_duplicate_name_is_refused_at_the_name_field(
    qtbot: QtBot, profiles: ProfileStore, secrets: SecretStore, memory_keyring: MemoryKeyring
) -> None:
    profiles.add(
        Profile(name="Main desk", base_url="https://a.example", merchant_id="m", site_id=1)
    )
    dialog = _dialog(qtbot, profiles, secrets)
    _fill(qtbot, dialog, name="main DESK")
    dialog.save_button.click()
    assert "already exists" in dialog.errors()["name"]
    assert len(profiles.all()) == 1
    assert memory_keyring.passwords == {}


def test_editing_with_an_empty_salt_keeps_the_stored_one(
    qtbot: QtBot, profiles: ProfileStore, secrets: SecretStore, memory_keyring: MemoryKeyring
) -> None:
    original = profiles.add(
        Profile(name="Main desk", base_url="https://a.example", merchant_id="m", site_id=1)
    )
    secrets.set_salt(original.id, SALT)
    dialog = _dialog(qtbot, profiles, secrets, profile=original)
    assert dialog.salt_edit.text() == ""  # never prefilled
    assert dialog.salt_edit.placeholderText() == "Leave empty to keep the stored salt"
    assert dialog.name_edit.text() == "Main desk"

    dialog.name_edit.clear()
    qtbot.keyClicks(dialog.name_edit, "Renamed desk")
    with qtbot.waitSignal(dialog.profileSaved):
        dialog.save_button.click()

    assert profiles.get_by_id(original.id).name == "Renamed desk"
    assert secrets.get_salt(original.id) == SALT

    again = _dialog(qtbot, profiles, secrets, profile=profiles.get_by_id(original.id))
    qtbot.keyClicks(again.salt_edit, "a-new-salt")
    with qtbot.waitSignal(again.profileSaved):
        again.save_button.click()
    assert memory_keyring.passwords == {(SERVICE, f"{original.id}:salt"): "a-new-salt"}


def test_test_connection_against_the_sandbox(
    qtbot: QtBot, profiles: ProfileStore, secrets: SecretStore, gateway: SandboxGateway
) -> None:
    dialog = _dialog(qtbot, profiles, secrets)
    _fill(
        qtbot,
        dialog,
        url=gateway.base_url,
        merchant=gateway.merchant_id,
        site=str(gateway.site_id),
        salt=gateway.salt,
        environment="sandbox",
    )
    dialog.test_button.click()
    qtbot.waitUntil(lambda: dialog.test_result.text().startswith("Connected"), timeout=WAIT_MS)
    assert dialog.test_result.text() == "Connected: 8 balances"
    assert profiles.all() == []  # testing saves nothing

    dialog.salt_edit.clear()
    qtbot.keyClicks(dialog.salt_edit, "wrong-salt")
    dialog.test_button.click()
    qtbot.waitUntil(
        lambda: dialog.test_result.text().startswith("Connection failed"), timeout=WAIT_MS
    )
    assert "signature" in dialog.test_result.text().lower()
    assert "wrong-salt" not in dialog.test_result.text()
    assert dialog.test_button.isEnabled()


def test_test_connection_uses_the_stored_salt_when_editing(
    qtbot: QtBot, profiles: ProfileStore, secrets: SecretStore, gateway: SandboxGateway
) -> None:
    profile = profiles.add(
        Profile(
            name="Sandbox",
            base_url=gateway.base_url,
            merchant_id=gateway.merchant_id,
            site_id=gateway.site_id,
            environment="sandbox",
        )
    )
    secrets.set_salt(profile.id, gateway.salt)
    dialog = _dialog(qtbot, profiles, secrets, profile=profile)
    dialog.test_button.click()
    qtbot.waitUntil(lambda: not dialog.test_busy(), timeout=WAIT_MS)
    assert dialog.test_result.text() == "Connected: 8 balances"


def test_an_unreachable_gateway_is_reported_plainly(
    qtbot: QtBot, profiles: ProfileStore, secrets: SecretStore
) -> None:
    with SandboxGateway() as gone:
        url = gone.base_url
    dialog = _dialog(qtbot, profiles, secrets)
    _fill(qtbot, dialog, url=url, environment="sandbox")
    dialog.test_button.click()
    qtbot.waitUntil(
        lambda: dialog.test_result.text().startswith("Connection failed"), timeout=WAIT_MS
    )
    assert "Could not reach the gateway" in dialog.test_result.text()


def test_without_a_keyring_the_salt_is_kept_for_the_session_only(
    qtbot: QtBot, profiles: ProfileStore, secrets: SecretStore, data_home: Path
) -> None:
    keyring.set_keyring(fail.Keyring())
    dialog = _dialog(qtbot, profiles, secrets)
    assert "password store isn't available" in dialog.keyring_label.text()
    session = dialog.findChild(QCheckBox, "profileSessionOnlyCheck")
    assert session.isVisibleTo(dialog)

    _fill(qtbot, dialog)  # a LIVE profile
    dialog.save_button.click()
    assert "never writes it to a file (least of all a live one)" in dialog.errors()["salt"]
    assert profiles.all() == []

    session.setChecked(True)
    with qtbot.waitSignal(dialog.profileSaved) as signal:
        dialog.save_button.click()
    assert secrets.get_salt(signal.args[0]) == SALT
    assert SALT not in _saved_file(data_home)
    assert list(data_home.rglob("*")) == [data_home / "profiles.json"]


def test_with_a_keyring_the_backend_is_named_and_no_session_option_shown(
    qtbot: QtBot, profiles: ProfileStore, secrets: SecretStore
) -> None:
    dialog = _dialog(qtbot, profiles, secrets)
    assert dialog.keyring_label.text().startswith("Salts are kept in: ")
    assert not dialog.session_check.isVisibleTo(dialog)


def test_the_banner_follows_the_environment(
    qtbot: QtBot, profiles: ProfileStore, secrets: SecretStore
) -> None:
    dialog = _dialog(qtbot, profiles, secrets)
    banner = dialog.findChild(QLabel, "environmentBanner")
    assert banner.text().startswith("LIVE")
    dialog.environment_combo.setCurrentIndex(dialog.environment_combo.findData("sandbox"))
    assert banner.text().startswith("SANDBOX")


def _manager(qtbot: QtBot, profiles: ProfileStore, secrets: SecretStore) -> ProfileManagerDialog:
    manager = ProfileManagerDialog(profiles, secrets)
    qtbot.addWidget(manager)
    manager.open()
    return manager


def test_the_manager_lists_profiles_with_live_and_sandbox_badges(
    qtbot: QtBot, profiles: ProfileStore, secrets: SecretStore
) -> None:
    profiles.add(Profile(name="Main", base_url="https://a.example", merchant_id="m", site_id=1))
    profiles.add(
        Profile(
            name="Test",
            base_url="http://127.0.0.1:9",
            merchant_id="t",
            site_id=2,
            environment="sandbox",
        )
    )
    manager = _manager(qtbot, profiles, secrets)
    badges = [
        manager.profile_list.itemWidget(manager.profile_list.item(row))
        .findChild(QLabel, "environmentBadge")
        .text()
        for row in range(manager.profile_list.count())
    ]
    assert badges == ["LIVE", "SANDBOX"]


def test_the_manager_adds_and_removes_a_profile_with_its_salt(
    qtbot: QtBot, profiles: ProfileStore, secrets: SecretStore, memory_keyring: MemoryKeyring
) -> None:
    manager = _manager(qtbot, profiles, secrets)
    assert not manager.remove_button.isEnabled()
    manager.add_button.click()
    editor = manager.editor
    assert editor is not None
    qtbot.waitUntil(editor.keyring_checked, timeout=WAIT_MS)
    _fill(qtbot, editor)
    with qtbot.waitSignal(manager.profilesChanged):
        editor.save_button.click()
    profile = profiles.get("Main desk")
    assert manager.selected_id() == profile.id
    assert memory_keyring.passwords

    manager.remove_button.click()
    box = manager.confirmation
    assert box is not None
    assert "LIVE" in box.text()
    box.button(QMessageBox.StandardButton.No).click()
    assert profiles.all() == [profile]

    manager.remove_button.click()
    with qtbot.waitSignal(manager.profilesChanged):
        manager.confirmation.button(QMessageBox.StandardButton.Yes).click()
    assert profiles.all() == []
    qtbot.waitUntil(lambda: not manager.salt_work_pending(), timeout=WAIT_MS)
    assert memory_keyring.passwords == {}
    assert not manager.error_label.isVisible()
    assert not manager.remove_button.isEnabled()


def test_each_field_has_an_accessible_name_and_its_mnemonic_focuses_it(
    qtbot: QtBot, profiles: ProfileStore, secrets: SecretStore
) -> None:
    dialog = _dialog(qtbot, profiles, secrets)
    qtbot.waitExposed(dialog)
    dialog.activateWindow()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is dialog.name_edit)
    fields = [
        (Qt.Key.Key_U, dialog.base_url_edit, "Gateway URL"),
        (Qt.Key.Key_M, dialog.merchant_edit, "Merchant ID"),
        (Qt.Key.Key_S, dialog.site_edit, "Site ID"),
        (Qt.Key.Key_A, dialog.salt_edit, "Site salt"),
        (Qt.Key.Key_E, dialog.environment_combo, "Environment"),
        (Qt.Key.Key_N, dialog.name_edit, "Name"),
    ]
    for key, widget, name in fields:
        assert widget.accessibleName() == name
        qtbot.keyClick(QApplication.focusWidget() or dialog, key, Qt.KeyboardModifier.AltModifier)
        assert QApplication.focusWidget() is widget, name


class SlowKeyring(MemoryKeyring):
    """A keyring that holds every write until released, like a Secret Service asking to be
    unlocked; ``refuse`` makes the write fail instead."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()
        self.refuse = False

    def set_password(self, service: str, username: str, password: str) -> None:
        self.release.wait(WAIT_MS / 1000)
        if self.refuse:
            raise KeyringLocked("Failed to unlock the collection!")
        super().set_password(service, username, password)


def test_a_slow_keyring_never_freezes_the_dialog_and_cancel_waits_for_it(
    qtbot: QtBot, profiles: ProfileStore, secrets: SecretStore
) -> None:
    slow = SlowKeyring()
    keyring.set_keyring(slow)
    dialog = _dialog(qtbot, profiles, secrets)
    _fill(qtbot, dialog)
    dialog.save_button.click()  # returns at once: the keyring is asked on a worker thread

    assert dialog.test_result.text() == "Saving the salt in the keyring…"
    assert not dialog.save_button.isEnabled()
    ticks: list[int] = []
    timer = QTimer(dialog)
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(5)
    qtbot.waitUntil(lambda: len(ticks) >= 5, timeout=WAIT_MS)  # the event loop runs on
    dialog.reject()  # Cancel, Escape: refused while the salt is on its way
    assert dialog.isVisible()

    with qtbot.waitSignal(dialog.profileSaved):
        slow.release.set()
    assert slow.passwords == {(SERVICE, f"{profiles.get('Main desk').id}:salt"): SALT}
    assert not dialog.isVisible()


def test_a_keyring_that_refuses_the_salt_leaves_no_profile_behind(
    qtbot: QtBot, profiles: ProfileStore, secrets: SecretStore
) -> None:
    slow = SlowKeyring()
    slow.refuse = True
    slow.release.set()
    keyring.set_keyring(slow)
    dialog = _dialog(qtbot, profiles, secrets)
    _fill(qtbot, dialog)
    dialog.save_button.click()
    qtbot.waitUntil(lambda: "salt" in dialog.errors(), timeout=WAIT_MS)

    assert dialog.errors()["salt"].startswith("The profile was not saved:")
    assert "unlock" in dialog.errors()["salt"]
    assert SALT not in dialog.errors()["salt"]
    assert profiles.all() == []
    assert dialog.isVisible() and dialog.save_button.isEnabled()
