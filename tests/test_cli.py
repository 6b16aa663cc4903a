"""The ``cactus-desk`` command line, run in-process with the in-memory keyring."""

from __future__ import annotations

import csv
import io
import json
import re
import signal
import subprocess
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path

import httpx
import keyring
import pytest
from keyring.backends import fail
from keyring.errors import KeyringLocked

import cactus_desk
from cactus_desk import app, cli
from cactus_desk.gateway.outcomes import Accepted, Rejected
from cactus_desk.history import open_history
from cactus_desk.history.types import NewAttempt
from cactus_desk.logs import stop_logging
from cactus_desk.profiles import PROFILES_FILE, Profile, ProfileStore
from tests.certs import write_ca_bundle
from tests.memory_keyring import MemoryKeyring

REPO = Path(__file__).resolve().parent.parent
SALT = "cli-test-salt-5c2a"
ADD = [
    "profile",
    "add",
    "Acme live",
    "--base-url",
    "https://gateway.example.com",
    "--merchant-id",
    "acme",
    "--site-id",
    "21",
    "--salt-stdin",
]


@pytest.fixture(autouse=True)
def _close_the_log_file() -> Iterator[None]:
    yield
    stop_logging()


def run(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *argv: str,
    stdin: str = "",
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_version(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(monkeypatch, capsys, "--version")
    assert code == 0
    assert out.strip() == f"cactus-desk {cactus_desk.__version__}"


def test_log_dir_follows_the_data_dir(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    data_home: Path,
    tmp_path: Path,
) -> None:
    assert run(monkeypatch, capsys, "--log-dir") == (0, f"{data_home / 'logs'}\n", "")
    other = tmp_path / "elsewhere"
    code, out, _ = run(monkeypatch, capsys, "--data-dir", str(other), "--log-dir")
    assert (code, out) == (0, f"{other / 'logs'}\n")
    assert not other.exists()


def test_profile_add_keeps_the_salt_in_the_keyring_only(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    data_home: Path,
    memory_keyring: MemoryKeyring,
    tmp_path: Path,
) -> None:
    bundle = write_ca_bundle(tmp_path / "ca.pem")
    extra = ["--extension", "skrill", "--ca-bundle", str(bundle)]
    code, out, err = run(monkeypatch, capsys, *ADD, *extra, stdin=f"  {SALT}\n")
    assert (code, err) == (0, "")
    assert "Added profile 'Acme live' [LIVE]" in out and SALT not in out
    (profile,) = ProfileStore(data_home).all()
    assert (profile.merchant_id, profile.site_id, profile.extensions) == ("acme", 21, ["skrill"])
    assert profile.ca_bundle == str(bundle)
    assert memory_keyring.passwords == {("cactus-desk", f"{profile.id}:salt"): SALT}
    assert SALT not in (data_home / PROFILES_FILE).read_text(encoding="utf-8")
    log_text = (data_home / "logs" / "cactus-desk.log").read_text(encoding="utf-8")
    assert "Added profile 'Acme live'" in log_text and SALT not in log_text


def test_profile_add_without_a_keyring_refuses_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], data_home: Path
) -> None:
    keyring.set_keyring(fail.Keyring())
    code, out, err = run(monkeypatch, capsys, *ADD, stdin=SALT)
    assert code == 2 and out == ""
    assert err.startswith("cactus-desk: error: No usable OS keyring was found")
    assert "gnome-keyring" in err and "dbus-run-session" in err
    assert "Traceback" not in err and SALT not in err
    assert not data_home.exists()


class LockedKeyring(MemoryKeyring):
    """A keyring whose collection stays locked, as after a dismissed unlock prompt."""

    def set_password(self, service: str, username: str, password: str) -> None:
        raise KeyringLocked("Failed to unlock the collection!")


def test_a_locked_keyring_is_reported_without_the_salt(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], data_home: Path
) -> None:
    keyring.set_keyring(LockedKeyring())
    code, out, err = run(monkeypatch, capsys, *ADD, stdin=SALT)
    assert code == 1 and out == ""
    assert "is locked; unlock it and try again" in err and SALT not in err
    assert not (data_home / PROFILES_FILE).exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--base-url", "http://gateway.example.com"], "--base-url: Plain http:// is only"),
        (["--merchant-id", "  "], "--merchant-id: The merchant ID is empty"),
        (["--extension", "venmo"], "--extension: 'venmo' is not an extension method"),
        (["--ca-bundle", "missing.pem"], "--ca-bundle: no such file"),
        (["--site-id", "0"], "argument --site-id: '0' must be greater than 0"),
        (["--site-id", "x"], "argument --site-id: 'x' is not a whole number"),
    ],
)
def test_bad_profile_input_exits_2_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    data_home: Path,
    memory_keyring: MemoryKeyring,
    change: list[str],
    message: str,
) -> None:
    code, _, err = run(monkeypatch, capsys, *ADD, *change, stdin=SALT)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert not (data_home / PROFILES_FILE).exists()
    assert memory_keyring.passwords == {}


@pytest.mark.parametrize("stdin", ["", "  \n", "two\nlines"])
def test_a_missing_or_multiline_salt_is_refused(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    data_home: Path,
    stdin: str,
) -> None:
    code, _, err = run(monkeypatch, capsys, *ADD, stdin=stdin)
    assert code == 2 and "salt on standard input" in err
    assert not (data_home / PROFILES_FILE).exists()


def test_duplicate_names_and_unknown_removals_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(monkeypatch, capsys, *ADD, stdin=SALT)[0] == 0
    code, _, err = run(monkeypatch, capsys, *[a.replace("Acme live", "ACME LIVE") for a in ADD])
    assert code == 2 and "a profile named 'Acme live' already exists" in err
    code, _, err = run(monkeypatch, capsys, "profile", "remove", "Nobody")
    assert code == 2 and "There is no profile named 'Nobody'" in err


def test_profile_list_shows_settings_and_salt_presence_never_the_salt(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    memory_keyring: MemoryKeyring,
) -> None:
    code, _, err = run(monkeypatch, capsys, "profile", "list")
    assert code == 0 and "No profiles yet" in err
    run(monkeypatch, capsys, *ADD, stdin=SALT)
    sandbox_add = [
        "profile",
        "add",
        "Local sandbox",
        "--base-url",
        "http://127.0.0.1:8765",
        "--merchant-id",
        "sandbox",
        "--site-id",
        "101",
        "--environment",
        "sandbox",
        "--salt-stdin",
    ]
    run(monkeypatch, capsys, *sandbox_add, stdin="sandbox-salt")
    memory_keyring.passwords = {
        key: value for key, value in memory_keyring.passwords.items() if value != "sandbox-salt"
    }

    code, out, _ = run(monkeypatch, capsys, "profile", "list")
    assert code == 0
    header, acme, local = out.splitlines()
    assert header.split() == ["NAME", "ENV", "BASE", "URL", "MERCHANT", "SITE", "SALT"]
    assert acme.split() == [
        "Acme",
        "live",
        "LIVE",
        "https://gateway.example.com",
        "acme",
        "21",
        "in",
        "keyring",
    ]
    assert local.split()[2:] == ["sandbox", "http://127.0.0.1:8765", "sandbox", "101", "MISSING"]
    assert SALT not in out

    keyring.set_keyring(fail.Keyring())
    code, out, _ = run(monkeypatch, capsys, "profile", "list")
    assert code == 0 and out.splitlines()[1].endswith("no keyring")


def test_profile_remove_deletes_the_profile_and_its_salt(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    data_home: Path,
    memory_keyring: MemoryKeyring,
) -> None:
    run(monkeypatch, capsys, *ADD, stdin=SALT)
    code, out, _ = run(monkeypatch, capsys, "profile", "remove", "acme live")
    assert code == 0 and "Removed profile 'Acme live'" in out
    assert ProfileStore(data_home).all() == []
    assert memory_keyring.passwords == {}


def test_data_dir_option_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    data_home: Path,
    tmp_path: Path,
) -> None:
    chosen = tmp_path / "chosen"
    assert run(monkeypatch, capsys, "--data-dir", str(chosen), *ADD, stdin=SALT)[0] == 0
    assert [p.name for p in ProfileStore(chosen).all()] == ["Acme live"]
    assert not (data_home / PROFILES_FILE).exists()


def test_a_damaged_profile_file_is_one_readable_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], data_home: Path
) -> None:
    data_home.mkdir()
    (data_home / PROFILES_FILE).write_text("{oops", encoding="utf-8")
    code, out, err = run(monkeypatch, capsys, "profile", "list")
    assert code == 1 and out == ""
    assert err.startswith("cactus-desk: error: The profile file ")
    assert len(err.splitlines()) == 1 and "is damaged" in err and "Traceback" not in err


def test_usage_errors_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(monkeypatch, capsys, "profile")
    assert code == 2 and "required" in err
    code, _, err = run(monkeypatch, capsys, "history", "export", "--format", "xlsx")
    assert code == 2 and "invalid choice: 'xlsx'" in err


# --- the window and the self-test are loaded only when asked for ---------------------------


def test_no_subcommand_opens_the_window_with_the_same_arguments(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(app, "run", lambda argv: seen.append(argv) or 7)
    assert run(monkeypatch, capsys, "--sandbox", "--data-dir", "x")[0] == 7
    assert seen == [["--sandbox", "--data-dir", "x"]]


def test_a_window_start_skips_the_subcommand_parser_and_errors_still_read_well(
    tmp_path: Path,
) -> None:
    code = (
        "import os, sys\n"
        "os.environ.pop('DISPLAY', None); os.environ.pop('WAYLAND_DISPLAY', None)\n"
        "os.environ.pop('QT_QPA_PLATFORM', None)\n"
        "from cactus_desk.cli import main\n"
        f"assert main(['--data-dir', {str(tmp_path)!r}]) == 2\n"
        "assert 'cactus_desk.commands' not in sys.modules, 'the full parser was built'\n"
        "assert main(['--read-timeout', '0']) == 2\n"
        "assert main(['--data-dir', 'x', '--version']) == 0\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "no display" in done.stderr
    assert "--read-timeout: '0' must be" in done.stderr
    assert done.stdout.strip() == f"cactus-desk {cactus_desk.__version__}"


def test_self_test_flag_runs_the_self_test(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[list[str]] = []
    fake = types.ModuleType("cactus_desk.selftest")
    fake.run = lambda argv: seen.append(argv) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "cactus_desk.selftest", fake)
    monkeypatch.setattr(cactus_desk, "selftest", fake, raising=False)
    assert run(monkeypatch, capsys, "--self-test")[0] == 0
    assert seen == [["--self-test"]]


def test_subcommands_never_load_qt(data_home: Path) -> None:
    code = (
        "import sys\n"
        "from cactus_desk.cli import main\n"
        "assert main(['profile', 'list']) == 0\n"
        "assert main(['history', 'export']) == 0\n"
        "assert not any(m.startswith('PySide6') for m in sys.modules), 'Qt was loaded'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, capture_output=True)


# --- history export ------------------------------------------------------------------------


def _attempt(profile_id: str, name: str, request_id: str, currency: str) -> NewAttempt:
    return NewAttempt(
        profile_id=profile_id,
        profile_name=name,
        environment="live",
        merchant_id="acme",
        site_id=21,
        request_id=request_id,
        site_login="alice",
        method="card",
        currency=currency,
        amount_minor=150050,
        request_fields={"card_number": "411111******1111"},
    )


@pytest.fixture
def history(data_home: Path) -> str:
    """Three payouts: two for 'Acme live' (EUR accepted, USD rejected), one for a removed
    profile. Returns the Acme profile's id."""
    acme = ProfileStore(data_home).add(
        Profile(
            name="Acme live", base_url="https://gateway.example.com", merchant_id="acme", site_id=21
        )
    )
    with open_history(data_home) as store:
        first = store.create_attempt(_attempt(acme.id, acme.name, "req-eur-1", "EUR"))
        store.record_outcome(first, Accepted("inv-1", 3, "Payout initialized"))
        second = store.create_attempt(_attempt(acme.id, acme.name, "req-usd-2", "USD"))
        store.record_outcome(second, Rejected("Insufficient funds", signature_verified=True))
        store.create_attempt(_attempt("old-profile-id", "Old shop", "req-old-3", "EUR"))
    return acme.id


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_history_export_to_stdout_and_filters(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], history: str
) -> None:
    code, out, _ = run(monkeypatch, capsys, "history", "export", "--format", "csv")
    assert code == 0
    rows = _rows(out)
    assert [r["Request ID"] for r in rows] == ["req-eur-1", "req-usd-2", "req-old-3"]
    assert rows[0]["Amount"] == "1500.50" and rows[0]["State"] == "Accepted"

    def request_ids(*filters: str) -> list[str]:
        code, out, err = run(monkeypatch, capsys, "history", "export", *filters)
        assert code == 0, err
        return [r["Request ID"] for r in _rows(out)]

    assert request_ids("--state", "rejected") == ["req-usd-2"]
    assert request_ids("--currency", "eur") == ["req-eur-1", "req-old-3"]
    assert request_ids("--profile", "Acme live") == ["req-eur-1", "req-usd-2"]
    assert request_ids("--profile", "old shop") == ["req-old-3"]  # removed, still in history
    assert request_ids("--search", "usd-2") == ["req-usd-2"]

    code, _, err = run(monkeypatch, capsys, "history", "export", "--state", "paid")
    assert code == 2 and "--state: unknown state 'paid'" in err
    code, _, err = run(monkeypatch, capsys, "history", "export", "--profile", "Nobody")
    assert code == 2 and "--profile: there is no profile named 'Nobody'" in err


def test_history_export_to_a_private_file(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    history: str,
    tmp_path: Path,
) -> None:
    target = tmp_path / "export.csv"
    code, out, err = run(monkeypatch, capsys, "history", "export", "--output", str(target))
    assert code == 0 and out == "" and "Exported 3 payout(s)" in err
    assert len(_rows(target.read_text(encoding="utf-8"))) == 3
    assert target.stat().st_mode & 0o777 == 0o600
    code, _, err = run(monkeypatch, capsys, "history", "export", "--output", str(tmp_path))
    assert code == 1 and "--output: cannot write" in err


# --- the standalone sandbox ----------------------------------------------------------------


def test_sandbox_subcommand_serves_until_terminated(data_home: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cactus_desk", "sandbox", "--salt", "sbx-salt", "--site-id", "7"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(30, proc.kill)  # a hung server must not hang the suite
    watchdog.start()
    try:
        assert proc.stdout is not None
        printed = []
        for line in proc.stdout:
            printed.append(line)
            if "base URL:" in line:
                break
        text = "".join(printed)
        match = re.search(r"base URL:\s+(http://127\.0\.0\.1:\d+)", text)
        assert match, text + (proc.stderr.read() if proc.stderr else "")
        # It really listens: the balance endpoint answers (with an error for a bad signature).
        reply = httpx.post(f"{match.group(1)}/api/balance/", json={"merchant_id": "x"}, timeout=10)
        assert reply.status_code < 500
        json.loads(reply.text)
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0
        assert "stopped" in rest
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
