"""The Profiles list flags a LIVE profile whose salt is missing; the no-keyring notice."""

from __future__ import annotations

import threading
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail
from keyring.errors import KeyringLocked
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QMessageBox, QPushButton
from pytestqt.qtbot import QtBot

from cactus_desk.profiles import Profile, ProfileStore
from cactus_desk.secrets import SecretStore
from cactus_desk.ui.profiles.editor import ProfileDialog
from cactus_desk.ui.profiles.manager import ProfileManagerDialog
from tests.memory_keyring import MemoryKeyring

WAIT_MS = 10_000


def _profile(name: str, environment: str = "live") -> Profile:
    return Profile(
        name=name,
        base_url="https://pay.example.com",
        merchant_id="m_demo",
        site_id=7,
        environment=environment,  # type: ignore[arg-type]
    )


class WatchedKeyring(MemoryKeyring):
    """Records which threads read it; ``locked`` makes every read fail as a locked one does."""

    def __init__(self) -> None:
        super().__init__()
        self.readers: list[threading.Thread] = []
        self.locked = False

    def get_password(self, service: str, username: str) -> str | None:
        self.readers.append(threading.current_thread())
        if self.locked:
            raise KeyringLocked("Failed to unlock the collection!")
        return super().get_password(service, username)


@pytest.fixture
def watched() -> WatchedKeyring:
    backend = WatchedKeyring()
    keyring.set_keyring(backend)
    return backend


def _manager(qtbot: QtBot, profiles: ProfileStore, secrets: SecretStore) -> ProfileManagerDialog:
    manager = ProfileManagerDialog(profiles, secrets)
    qtbot.addWidget(manager)
    manager.open()
    qtbot.waitUntil(lambda: not manager.salt_check_pending(), timeout=WAIT_MS)
    return manager


def test_the_list_flags_a_live_profile_whose_salt_is_missing(
    qtbot: QtBot, data_home: Path, watched: WatchedKeyring
) -> None:
    profiles, secrets = ProfileStore(data_home), SecretStore()
    ready, bare, test = _profile("Main desk"), _profile("Old desk"), _profile("Test", "sandbox")
    for profile in (ready, bare, test):
        profiles.add(profile)
    secrets.set_salt(ready.id, "a-salt")

    manager = _manager(qtbot, profiles, secrets)
    assert manager.salt_flags() == {bare.id: "No salt saved"}
    assert watched.readers and threading.main_thread() not in watched.readers
    flags = [f for f in manager.findChildren(QLabel, "profileSaltFlag") if f.isVisibleTo(manager)]
    assert len(flags) == 1 and "enter the salt" in flags[0].toolTip()
    [item] = [
        manager.profile_list.item(row)
        for row in range(manager.profile_list.count())
        if manager.profile_list.item(row).data(Qt.ItemDataRole.UserRole) == bare.id
    ]
    assert "No salt saved" in item.data(Qt.ItemDataRole.AccessibleTextRole)

    # Once its salt is entered, the flag goes at the next look.
    secrets.set_salt(bare.id, "another-salt")
    manager.reload()
    qtbot.waitUntil(lambda: not manager.salt_check_pending(), timeout=WAIT_MS)
    assert manager.salt_flags() == {}


def test_a_locked_keyring_flags_the_salt_as_unreadable(
    qtbot: QtBot, data_home: Path, watched: WatchedKeyring
) -> None:
    profiles = ProfileStore(data_home)
    live = _profile("Main desk")
    profiles.add(live)
    watched.locked = True
    manager = _manager(qtbot, profiles, SecretStore())
    assert manager.salt_flags() == {live.id: "Salt unreadable"}


def test_without_a_keyring_every_live_profile_is_flagged(qtbot: QtBot, data_home: Path) -> None:
    profiles = ProfileStore(data_home)
    live = _profile("Main desk")
    profiles.add(live)
    profiles.add(_profile("Test", "sandbox"))
    keyring.set_keyring(fail.Keyring())
    manager = _manager(qtbot, profiles, SecretStore())
    assert manager.salt_flags() == {live.id: "Salt not available"}


def test_the_no_keyring_notice_fits_and_keeps_the_admin_detail_behind_details(
    qtbot: QtBot, data_home: Path
) -> None:
    keyring.set_keyring(fail.Keyring())
    dialog = ProfileDialog(ProfileStore(data_home), SecretStore())
    qtbot.addWidget(dialog)
    dialog.open()
    qtbot.waitUntil(dialog.keyring_checked, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: dialog.height() >= dialog.layout().totalMinimumSize().height())
    label = dialog.keyring_label
    text = label.text()
    assert text.startswith("Your computer's password store isn't available")
    for admin_word in ("gnome-keyring", "dbus", "backend", "Secret Service", "keyring"):
        assert admin_word not in text
    # Every line of it is on screen: the label is as tall as its text needs at its width.
    qtbot.waitUntil(lambda: label.height() >= label.heightForWidth(label.width()))
    assert label.geometry().bottom() < dialog.session_check.geometry().top() + 30
    assert dialog.rect().contains(dialog.session_check.geometry())

    details = dialog.findChild(QPushButton, "profileKeyringDetailsButton")
    assert details is not None and details.isVisibleTo(dialog)
    details.click()
    box = dialog.findChild(QMessageBox, "keyringDetailsBox")
    assert box is not None and box.isVisible()
    assert "gnome-keyring" in box.informativeText()
    assert "none" in box.informativeText()  # the backend found
    box.close()


def test_with_a_keyring_there_is_no_details_button(qtbot: QtBot, data_home: Path) -> None:
    dialog = ProfileDialog(ProfileStore(data_home), SecretStore())
    qtbot.addWidget(dialog)
    dialog.open()
    qtbot.waitUntil(dialog.keyring_checked, timeout=WAIT_MS)
    details = dialog.findChild(QPushButton, "profileKeyringDetailsButton")
    assert details is not None and not details.isVisibleTo(dialog)
