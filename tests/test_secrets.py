"""The salt lives in the keyring or in memory, and never leaks into messages or logs."""

from __future__ import annotations

import logging
import stat
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import SecretService, chainer, fail, null
from keyring.errors import KeyringLocked

from cactus_desk import secrets
from cactus_desk.logs import (
    LOG_FILE_NAME,
    RedactingFilter,
    redact,
    register_secret,
    setup_logging,
    stop_logging,
)
from cactus_desk.secrets import KeyringError, NoKeyringError, SecretStore
from tests.memory_keyring import MemoryKeyring

SALT = "s3cr3t-salt-value-42"


class BrokenKeyring(KeyringBackend):
    """A backend that fails like a D-Bus error would, echoing what it was given."""

    priority = 1  # type: ignore[assignment]

    def __init__(self, error: Exception | None = None) -> None:
        super().__init__()
        self.error = error

    def get_password(self, service: str, username: str) -> str | None:
        raise self.error or RuntimeError(f"dbus broke reading {username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise self.error or RuntimeError(f"org.freedesktop.DBus.Error: cannot store {password}")

    def delete_password(self, service: str, username: str) -> None:
        raise self.error or RuntimeError("dbus broke deleting")


def test_salt_round_trips_through_the_keyring_under_a_stable_username(
    memory_keyring: MemoryKeyring,
) -> None:
    store = SecretStore()
    store.set_salt("abc123", SALT)
    assert memory_keyring.passwords == {("cactus-desk", "abc123:salt"): SALT}
    assert SecretStore().get_salt("abc123") == SALT
    assert store.has_salt("abc123")
    assert not store.has_salt("other")
    assert store.get_salt("other") is None


def test_session_salt_stays_in_memory_and_wins_over_the_keyring(
    memory_keyring: MemoryKeyring,
) -> None:
    store = SecretStore()
    store.set_salt("p1", "from-keyring")
    store.remember_for_session("p1", "for-this-session")
    store.remember_for_session("sandbox", "sandbox-salt")
    assert store.get_salt("p1") == "for-this-session"
    assert store.get_salt("sandbox") == "sandbox-salt"
    assert ("cactus-desk", "sandbox:salt") not in memory_keyring.passwords
    assert SecretStore().get_salt("sandbox") is None  # another store (a new session) has none


def test_saving_a_salt_replaces_the_session_one(memory_keyring: MemoryKeyring) -> None:
    store = SecretStore()
    store.remember_for_session("p1", "typed-earlier")
    store.set_salt("p1", "saved-now")
    assert store.get_salt("p1") == "saved-now"


def test_delete_salt_forgets_it_everywhere_and_tolerates_a_missing_one(
    memory_keyring: MemoryKeyring,
) -> None:
    store = SecretStore()
    store.set_salt("p1", SALT)
    store.remember_for_session("p1", "session")
    store.delete_salt("p1")
    assert store.get_salt("p1") is None
    assert memory_keyring.passwords == {}
    store.delete_salt("p1")  # nothing left: still fine


def test_an_empty_salt_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        SecretStore().set_salt("p1", "")
    with pytest.raises(ValueError, match="empty"):
        SecretStore().remember_for_session("p1", "")


@pytest.mark.parametrize(
    "backend",
    [fail.Keyring(), null.Keyring()],
    ids=["fail", "null"],
)
def test_fail_and_null_backends_are_no_keyring(backend: KeyringBackend) -> None:
    keyring.set_keyring(backend)
    assert not secrets.keyring_usable()
    store = SecretStore()
    with pytest.raises(NoKeyringError) as caught:
        store.set_salt("p1", SALT)
    message = str(caught.value)
    assert "No usable OS keyring was found" in message
    assert "gnome-keyring" in message and "KWallet" in message
    assert SALT not in message
    # Nothing can be stored, but a salt kept for the session still works.
    assert store.get_salt("p1") is None
    store.remember_for_session("p1", SALT)
    assert store.get_salt("p1") == SALT
    store.delete_salt("p1")
    assert store.get_salt("p1") is None


def test_a_chainer_without_a_real_backend_is_no_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chainer.ChainerBackend, "backends", [fail.Keyring()])
    keyring.set_keyring(chainer.ChainerBackend())
    assert not secrets.keyring_usable()
    monkeypatch.setattr(chainer.ChainerBackend, "backends", [MemoryKeyring()])
    assert secrets.keyring_usable()


def test_the_memory_keyring_counts_as_usable() -> None:
    assert secrets.keyring_usable()


def test_backend_names_are_for_people() -> None:
    keyring.set_keyring(SecretService.Keyring())
    assert secrets.backend_name() == "Secret Service (SecretService Keyring)"
    keyring.set_keyring(fail.Keyring())
    assert secrets.backend_name() == "none (fail Keyring)"
    assert "fail Keyring" in str(NoKeyringError())


def test_backend_failures_become_plain_errors_without_the_salt() -> None:
    keyring.set_keyring(BrokenKeyring())
    store = SecretStore()
    with pytest.raises(KeyringError) as caught:
        store.set_salt("p1", SALT)
    assert "could not save the salt" in str(caught.value)
    assert SALT not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    with pytest.raises(KeyringError, match="could not read the salt"):
        store.get_salt("p1")
    with pytest.raises(KeyringError, match="could not delete the salt"):
        store.delete_salt("p1")


def test_a_locked_keyring_says_so() -> None:
    keyring.set_keyring(BrokenKeyring(KeyringLocked("Failed to unlock the collection!")))
    with pytest.raises(KeyringError, match="is locked; unlock it"):
        SecretStore().get_salt("p1")


# --- logs: the redaction filter keeps card numbers and salts out of the log file ----------


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    path = setup_logging(tmp_path / "logs")
    try:
        yield path
    finally:
        stop_logging()
        assert root.handlers == before
        root.setLevel(level)


def _flush() -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()


def test_log_file_is_private_and_masks_cards_and_registered_secrets(log_file: Path) -> None:
    assert log_file.name == LOG_FILE_NAME
    register_secret("my-site-salt-xyz")
    logger = logging.getLogger("cactus_desk.test")
    logger.info("paying card %s with salt %s", "4111111111111111", "my-site-salt-xyz")
    logger.info("grouped card 4111 1111 1111 1111 and request 12345")
    _flush()
    text = log_file.read_text(encoding="utf-8")
    assert "4111111111111111" not in text and "4111 1111 1111 1111" not in text
    assert text.count("411111******1111") == 2
    assert "my-site-salt-xyz" not in text and "[secret]" in text
    assert "request 12345" in text  # short numbers are left alone
    assert stat.S_IMODE(log_file.stat().st_mode) == 0o600


def test_tracebacks_are_masked_too(log_file: Path) -> None:
    register_secret("salt-inside-an-error")
    try:
        raise RuntimeError("signing failed with salt-inside-an-error for 5500000000000004")
    except RuntimeError:
        logging.getLogger("cactus_desk.test").exception("submit failed")
    _flush()
    text = log_file.read_text(encoding="utf-8")
    assert "Traceback" in text and "RuntimeError" in text
    assert "salt-inside-an-error" not in text
    assert "5500000000000004" not in text and "550000******0004" in text


def test_setting_up_twice_keeps_one_file_handler(log_file: Path, tmp_path: Path) -> None:
    second = setup_logging(tmp_path / "other-logs")
    logging.getLogger("cactus_desk.test").warning("once")
    _flush()
    assert second.read_text(encoding="utf-8").count("once") == 1
    assert "once" not in log_file.read_text(encoding="utf-8")


def test_salts_read_from_the_keyring_are_masked_in_logs(memory_keyring: MemoryKeyring) -> None:
    memory_keyring.passwords[("cactus-desk", "p9:salt")] = "salt-only-in-keyring"
    SecretStore().get_salt("p9")
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "got %s", ("salt-only-in-keyring",), None
    )
    RedactingFilter().filter(record)
    assert record.getMessage() == "got [secret]"
    assert redact("nineteen 1234567890123456789 digits") == "nineteen 123456*********6789 digits"
