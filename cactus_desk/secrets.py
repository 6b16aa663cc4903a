"""The site salt in the OS keyring (or in memory for one session); never in a file."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

import keyring
import keyring.errors
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail, null

from cactus_desk.logs import register_secret

SERVICE = "cactus-desk"

T = TypeVar("T")

# Human names by backend module; the class's own name is kept in brackets for bug reports.
_HUMAN_NAMES = {
    "keyring.backends.SecretService": "Secret Service",
    "keyring.backends.libsecret": "Secret Service (libsecret)",
    "keyring.backends.kwallet": "KWallet",
    "keyring.backends.macOS": "macOS Keychain",
    "keyring.backends.Windows": "Windows Credential Manager",
    "keyring.backends.fail": "none",
    "keyring.backends.null": "none, disabled",
    "keyring.backends.chainer": "chained keyrings",
}

_FIX = (
    "Install and unlock a Secret Service keyring (gnome-keyring or KWallet) in your desktop "
    "session; on a server, run one inside dbus-run-session, e.g. "
    "`echo -n PASSWORD | gnome-keyring-daemon --unlock --components=secrets`. "
    "Cactus Desk never writes the salt to a plain file."
)


class NoKeyringError(RuntimeError):
    """There is no usable OS keyring, so a salt cannot be stored."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(
            message or f"No usable OS keyring was found (keyring backend: {backend_name()}). {_FIX}"
        )


class KeyringError(RuntimeError):
    """The keyring exists but failed (locked, D-Bus error, ...). The message holds no secret."""


def _username(profile_id: str) -> str:
    return f"{profile_id}:salt"


def _is_real(backend: KeyringBackend) -> bool:
    if isinstance(backend, fail.Keyring | null.Keyring | chainer.ChainerBackend):
        return False
    # keyrings.alt's plaintext file is a keyring in name only: the salt would sit in a file.
    return "Plaintext" not in type(backend).__name__


def _describe(backend: KeyringBackend) -> str:
    module = type(backend).__module__
    human = _HUMAN_NAMES.get(module, module.rsplit(".", 1)[-1])
    if isinstance(backend, chainer.ChainerBackend):
        inner = ", ".join(_describe(b) for b in backend.backends) or "none"
        return f"{human}: {inner}"
    return f"{human} ({backend.name})"


def backend_name() -> str:
    """Describe the current keyring backend for people, e.g. "Secret Service (SecretService
    Keyring)"."""
    return _describe(keyring.get_keyring())


def keyring_usable() -> bool:
    """True when the current backend can really keep a secret (not fail, null or empty)."""
    backend = keyring.get_keyring()
    if isinstance(backend, chainer.ChainerBackend):
        return any(_is_real(b) for b in backend.backends)
    return _is_real(backend)


def _scrub(text: str, secret: str | None) -> str:
    if secret:
        text = text.replace(secret, "[secret]")
    return text


def _call(action: str, operation: Callable[[KeyringBackend], T], secret: str | None = None) -> T:
    """Run one keyring operation, turning every backend failure into a plain, salt-free error."""
    if not keyring_usable():
        raise NoKeyringError()
    backend = keyring.get_keyring()
    try:
        return operation(backend)
    except keyring.errors.NoKeyringError:
        raise NoKeyringError() from None
    except keyring.errors.KeyringLocked:
        raise KeyringError(
            f"The keyring ({backend_name()}) is locked; unlock it and try again."
        ) from None
    except keyring.errors.PasswordDeleteError:
        raise
    except Exception as exc:
        detail = _scrub(str(exc), secret).strip() or type(exc).__name__
        raise KeyringError(f"The keyring ({backend_name()}) could not {action}: {detail}") from None


class SecretStore:
    """Reads and writes profile salts. Salts kept "for this session" live in this object only."""

    def __init__(self) -> None:
        self._session: dict[str, str] = {}
        self._lock = threading.Lock()

    def get_salt(self, profile_id: str) -> str | None:
        """The session salt if any, else the keyring's; None when neither has one.

        With no usable keyring there is nothing stored, so the answer is the session salt or None.
        """
        with self._lock:
            salt = self._session.get(profile_id)
        if salt is not None:
            return salt
        if not keyring_usable():
            return None
        salt = _call(
            "read the salt", lambda backend: backend.get_password(SERVICE, _username(profile_id))
        )
        register_secret(salt)
        return salt

    def set_salt(self, profile_id: str, salt: str) -> None:
        """Store ``salt`` in the keyring; raises NoKeyringError when there is no usable keyring."""
        if not salt:
            raise ValueError("The salt is empty.")
        register_secret(salt)
        _call(
            "save the salt",
            lambda backend: backend.set_password(SERVICE, _username(profile_id), salt),
            secret=salt,
        )
        with self._lock:
            self._session.pop(profile_id, None)

    def delete_salt(self, profile_id: str) -> None:
        """Forget the salt in this session and in the keyring; a missing one is not an error."""
        with self._lock:
            self._session.pop(profile_id, None)
        if not keyring_usable():
            return
        with contextlib.suppress(keyring.errors.PasswordDeleteError):
            _call(
                "delete the salt",
                lambda backend: backend.delete_password(SERVICE, _username(profile_id)),
            )

    def remember_for_session(self, profile_id: str, salt: str) -> None:
        """Hold ``salt`` in memory only, until this store is gone or the salt is deleted."""
        if not salt:
            raise ValueError("The salt is empty.")
        register_secret(salt)
        with self._lock:
            self._session[profile_id] = salt

    def has_salt(self, profile_id: str) -> bool:
        """True when a salt is available for ``profile_id`` (session or keyring)."""
        return self.get_salt(profile_id) is not None


# -- the team store's database password ------------------------------------------------------

#: The keyring service of team-store passwords, apart from the salts' ``SERVICE``.
STORE_SERVICE = "cactus-desk-store"


def get_store_password(account: str) -> str | None:
    """The database password saved for ``account`` (``user@host:port/db``), or None.

    None as well when there is no usable keyring: libpq may then take ``PGPASSWORD``.
    Raises ``KeyringError`` when the keyring fails.
    """
    if not keyring_usable():
        return None
    password = _call(
        "read the database password",
        lambda backend: backend.get_password(STORE_SERVICE, account),
    )
    if password:
        register_secret(password)
    return password


def set_store_password(account: str, password: str) -> None:
    """Save the database password of ``account`` in the keyring (never in a file).

    Raises ``NoKeyringError`` when there is no usable keyring.
    """
    if not password:
        raise ValueError("The database password is empty.")
    register_secret(password)
    _call(
        "save the database password",
        lambda backend: backend.set_password(STORE_SERVICE, account, password),
        secret=password,
    )
