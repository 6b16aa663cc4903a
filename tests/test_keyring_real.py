"""The salt really goes through the Secret Service (gnome-keyring), from the API and the CLI.

Runs inside ``dbus-run-session`` with an unlocked gnome-keyring (see ``.ci/run``). Elsewhere it
skips, except in CI (``CI=true``), where an unreachable Secret Service is a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backends import SecretService

from cactus_desk import secrets
from cactus_desk.secrets import SERVICE, SecretStore

pytestmark = pytest.mark.keyring_real

REPO = Path(__file__).resolve().parent.parent


def _unavailable(reason: str) -> None:
    message = f"The Secret Service is not reachable: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture
def secret_service() -> Iterator[SecretService.Keyring]:
    """The real Secret Service backend, proven to work with a round trip."""
    try:
        import secretstorage  # noqa: F401 - keyring needs it for the Secret Service on Linux
    except ImportError as exc:
        _unavailable(f"the secretstorage package cannot be imported ({exc})")
    try:
        SecretService.Keyring.priority  # noqa: B018 - raises when no daemon answers on D-Bus
        backend = SecretService.Keyring()
        probe = f"probe-{uuid.uuid4().hex}"
        backend.set_password(SERVICE, probe, "probe")
        backend.delete_password(SERVICE, probe)
    except Exception as exc:
        _unavailable(f"{type(exc).__name__}: {exc}")
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


def test_secret_store_keeps_the_salt_in_the_secret_service(
    secret_service: SecretService.Keyring,
) -> None:
    profile_id = uuid.uuid4().hex
    salt = f"real-salt-{uuid.uuid4().hex}"
    assert secrets.keyring_usable()
    assert secrets.backend_name() == "Secret Service (SecretService Keyring)"
    try:
        SecretStore().set_salt(profile_id, salt)
        assert secret_service.get_password(SERVICE, f"{profile_id}:salt") == salt
        fresh = SecretStore()  # nothing in its session memory: it must ask the daemon
        assert fresh.get_salt(profile_id) == salt
        assert fresh.has_salt(profile_id)
        fresh.delete_salt(profile_id)
        assert secret_service.get_password(SERVICE, f"{profile_id}:salt") is None
        assert not SecretStore().has_salt(profile_id)
    finally:
        SecretStore().delete_salt(profile_id)


def _cli(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cactus_desk", "--data-dir", str(data_dir), *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )


def test_cli_profile_add_and_remove_use_the_secret_service(
    secret_service: SecretService.Keyring, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    name = f"Real keyring {uuid.uuid4().hex[:8]}"
    salt = f"cli-salt-{uuid.uuid4().hex}"
    added = _cli(
        data_dir,
        "profile",
        "add",
        name,
        "--base-url",
        "https://gateway.example.com",
        "--merchant-id",
        "merchant-1",
        "--site-id",
        "7",
        "--salt-stdin",
        stdin=salt + "\n",
    )
    assert added.returncode == 0, added.stderr
    profiles_file = data_dir / "profiles.json"
    (profile,) = json.loads(profiles_file.read_text(encoding="utf-8"))["profiles"]
    username = f"{profile['id']}:salt"
    try:
        assert secret_service.get_password(SERVICE, username) == salt
        assert salt not in profiles_file.read_text(encoding="utf-8")

        listed = _cli(data_dir, "profile", "list")
        assert listed.returncode == 0, listed.stderr
        assert name in listed.stdout and "in keyring" in listed.stdout
        assert salt not in listed.stdout + listed.stderr

        removed = _cli(data_dir, "profile", "remove", name)
        assert removed.returncode == 0, removed.stderr
        assert secret_service.get_password(SERVICE, username) is None
        assert json.loads(profiles_file.read_text(encoding="utf-8"))["profiles"] == []
    finally:
        SecretStore().delete_salt(profile["id"])
