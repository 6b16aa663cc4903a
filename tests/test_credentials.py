"""Reading a systemd credential: the secret or None, and errors that never hold the secret."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cactus_desk.credentials import (
    ENV_CREDENTIALS,
    MAX_CREDENTIAL_BYTES,
    CredentialError,
    read_credential,
)
from cactus_desk.logs import redact

SECRET = "credential-secret-41c9"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "credentials"
    path.mkdir(mode=0o700)
    monkeypatch.setenv(ENV_CREDENTIALS, str(path))
    return path


def test_outside_a_service_or_without_the_credential_there_is_none(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert read_credential("cactus-desk-salt") is None
    (folder / "cactus-desk-salt").write_text(SECRET)
    monkeypatch.delenv(ENV_CREDENTIALS)
    assert read_credential("cactus-desk-salt") is None


def test_the_secret_is_read_trimmed_and_masked_in_logs_from_then_on(folder: Path) -> None:
    (folder / "cactus-desk-salt").write_bytes(SECRET.encode() + b"\n")
    assert read_credential("cactus-desk-salt") == SECRET
    assert SECRET not in redact(f"a line holding {SECRET}")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b" \n", "is empty"),
        (SECRET.encode() + b"\nsecond-line", "must be a single line"),
        (b"\xff\xfe" + SECRET.encode(), "is not UTF-8 text"),
        (SECRET.encode() * (MAX_CREDENTIAL_BYTES // len(SECRET) + 1), "is larger than"),
    ],
)
def test_an_unusable_credential_is_a_plain_error_without_its_content(
    folder: Path, content: bytes, message: str
) -> None:
    (folder / "cactus-desk-salt").write_bytes(content)
    with pytest.raises(CredentialError) as caught:
        read_credential("cactus-desk-salt")
    assert message in str(caught.value) and "'cactus-desk-salt'" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_a_folder_or_a_symlink_is_not_a_credential(folder: Path, tmp_path: Path) -> None:
    (folder / "cactus-desk-salt").mkdir()
    with pytest.raises(CredentialError, match="is not a file"):
        read_credential("cactus-desk-salt")
    outside = tmp_path / "elsewhere"
    outside.write_text(SECRET)
    os.symlink(outside, folder / "cactus-desk-store-password")
    with pytest.raises(CredentialError, match="cannot be read") as caught:
        read_credential("cactus-desk-store-password")
    assert SECRET not in str(caught.value)


def test_a_name_that_could_leave_the_folder_is_refused(folder: Path) -> None:
    with pytest.raises(ValueError, match="is not a credential name"):
        read_credential("../etc/passwd")
