"""``cactus-desk profile set-salt NAME --salt-stdin``: this machine's keyring only, never echoed."""

from __future__ import annotations

from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from cactus_desk.profiles import PROFILES_FILE, ProfileStore
from tests.memory_keyring import MemoryKeyring
from tests.test_cli import ADD, SALT, LockedKeyring, _close_the_log_file, run

__all__ = ["_close_the_log_file"]  # the autouse fixture: each test closes its log file

NEW_SALT = "replacement-salt-8d1e"


def test_set_salt_saves_the_salt_in_the_keyring_only_and_never_echoes_it(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    data_home: Path,
    memory_keyring: MemoryKeyring,
) -> None:
    assert run(monkeypatch, capsys, *ADD, stdin=SALT)[0] == 0
    profile = ProfileStore(data_home).get("Acme live")
    before = (data_home / PROFILES_FILE).read_bytes()

    code, out, err = run(
        monkeypatch, capsys, "profile", "set-salt", "acme live", "--salt-stdin", stdin=NEW_SALT
    )
    assert (code, err) == (0, "")
    assert out == "Saved the salt of profile 'Acme live' in this machine's keyring.\n"
    assert memory_keyring.passwords == {("cactus-desk", f"{profile.id}:salt"): NEW_SALT}
    assert (data_home / PROFILES_FILE).read_bytes() == before  # the settings are untouched
    log_text = (data_home / "logs" / "cactus-desk.log").read_text(encoding="utf-8")
    assert "Saved the salt of profile 'Acme live'" in log_text and NEW_SALT not in log_text


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (["Nobody"], NEW_SALT, "There is no profile named 'Nobody'"),
        (["Acme live"], "", "no salt on standard input"),
        (["Acme live"], "  \n", "no salt on standard input"),
        (["Acme live"], "two\nlines", "the salt on standard input must be a single line"),
    ],
)
def test_set_salt_refuses_an_unknown_profile_or_an_empty_salt(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    memory_keyring: MemoryKeyring,
    argv: list[str],
    stdin: str,
    message: str,
) -> None:
    assert run(monkeypatch, capsys, *ADD, stdin=SALT)[0] == 0
    kept = dict(memory_keyring.passwords)
    code, out, err = run(
        monkeypatch, capsys, "profile", "set-salt", *argv, "--salt-stdin", stdin=stdin
    )
    assert code == 2 and out == ""
    assert message in err and "Traceback" not in err
    assert memory_keyring.passwords == kept


def test_set_salt_without_a_keyring_or_with_a_locked_one_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(monkeypatch, capsys, *ADD, stdin=SALT)[0] == 0
    keyring.set_keyring(fail.Keyring())
    argv = ["profile", "set-salt", "Acme live", "--salt-stdin"]
    code, out, err = run(monkeypatch, capsys, *argv, stdin=NEW_SALT)
    assert code == 2 and out == ""
    assert "No usable OS keyring was found" in err and NEW_SALT not in err
    keyring.set_keyring(LockedKeyring())
    code, out, err = run(monkeypatch, capsys, *argv, stdin=NEW_SALT)
    assert code == 1 and out == ""
    assert "is locked" in err and NEW_SALT not in err


def test_set_salt_needs_the_salt_on_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(monkeypatch, capsys, "profile", "set-salt", "Acme live")
    assert code == 2 and "--salt-stdin" in err
