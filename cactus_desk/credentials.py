"""Secrets handed to a service by systemd (``LoadCredential=`` / ``LoadCredentialEncrypted=``).

On a headless server there is no Secret Service session for the OS keyring. systemd can
instead decrypt a credential (``systemd-creds encrypt``: sealed with the host's key or TPM)
into a private, memory-only folder that only the service can read, named by
``$CREDENTIALS_DIRECTORY``. The receiver reads its salt and database password there; they
never sit in the unit, the environment file, the environment or a log.
"""

from __future__ import annotations

import os
import re
import stat
import unicodedata
from pathlib import Path

from cactus_desk.logs import register_secret

ENV_CREDENTIALS = "CREDENTIALS_DIRECTORY"
#: The credential with the site salt of the profile the receiver serves.
SALT_CREDENTIAL = "cactus-desk-salt"
#: The credential with the team store's database password.
STORE_PASSWORD_CREDENTIAL = "cactus-desk-store-password"
MAX_CREDENTIAL_BYTES = 4096
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class CredentialError(RuntimeError):
    """A credential exists but cannot be used; the message never holds its content."""


def credentials_dir() -> Path | None:
    """The folder systemd put this service's credentials in, or None outside such a service."""
    value = os.environ.get(ENV_CREDENTIALS, "").strip()
    return Path(value) if value else None


def read_credential(name: str) -> str | None:
    """The secret in credential ``name`` (one line, surrounding whitespace removed), or None
    when there is no credentials folder or no such credential in it.

    Raises ``CredentialError`` for one that is not a regular file, too large, not UTF-8
    text, empty or more than one line. The value is registered with the log scrubber.
    """
    if not _NAME.match(name):
        raise ValueError(f"{name!r} is not a credential name")
    folder = credentials_dir()
    if folder is None:
        return None
    path = folder / name
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CredentialError(
            f"The credential {name!r} cannot be read: {exc.strerror or type(exc).__name__}"
        ) from None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise CredentialError(f"The credential {name!r} is not a file.")
        raw = b""
        while len(raw) <= MAX_CREDENTIAL_BYTES:
            chunk = os.read(descriptor, MAX_CREDENTIAL_BYTES + 1 - len(raw))
            if not chunk:
                break
            raw += chunk
    finally:
        os.close(descriptor)
    if len(raw) > MAX_CREDENTIAL_BYTES:
        raise CredentialError(
            f"The credential {name!r} is larger than {MAX_CREDENTIAL_BYTES} bytes."
        )
    try:
        value = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise CredentialError(f"The credential {name!r} is not UTF-8 text.") from None
    if not value:
        raise CredentialError(f"The credential {name!r} is empty.")
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise CredentialError(f"The credential {name!r} must be a single line.")
    register_secret(value)
    return value
