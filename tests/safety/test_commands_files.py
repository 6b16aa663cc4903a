"""Commands and files an attacker or a slip of the hand can reach (issue 11, item 12).

Export targets, ``--data-dir``, site ids, CA bundles, profile names, card masking in the
history and the log, and importing hostile callback files.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sqlite3
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from cactus_desk import cli
from cactus_desk.callbacks.reconcile import MAX_LINE_BYTES, import_file
from cactus_desk.gateway.outcomes import Rejected
from cactus_desk.history import open_history
from cactus_desk.history.sqlite.schema import HISTORY_FILE
from cactus_desk.logs import LOG_FILE_NAME, redact, setup_logging, stop_logging
from cactus_desk.masking import scrub_card_numbers
from cactus_desk.payouts.draft import mask_card, redacted_fields
from cactus_desk.profiles import MAX_SITE_ID, PROFILES_FILE, Profile, ProfileStore
from cactus_desk.secrets import SecretStore
from tests.callbacks.helpers import MERCHANT, SALT, SITE, accepted_record, callback
from tests.certs import write_ca_bundle
from tests.memory_keyring import MemoryKeyring
from tests.safety.helpers import attempt, card_request

REPO = Path(__file__).resolve().parents[2]
CARD = "4111111111111111"
MASKED = "411111******1111"
ADD = ["profile", "add", "--base-url", "https://gw.example.com", "--merchant-id", "acme"]


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


@pytest.fixture
def history(data_home: Path) -> Path:
    with open_history(data_home) as store:
        accepted_record(store)
    return data_home / HISTORY_FILE


def payouts_in(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM payouts").fetchone()[0])
    finally:
        conn.close()


# -- history export --output ----------------------------------------------------------------


@pytest.mark.parametrize(
    "inside", [HISTORY_FILE, "profiles.json", "export.csv", "backups/export.csv", "."]
)
def test_export_refuses_any_file_inside_the_data_folder(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    history: Path,
    data_home: Path,
    inside: str,
) -> None:
    target = data_home / inside
    code, out, err = run(monkeypatch, capsys, "history", "export", "--output", str(target))
    assert code == 2 and out == ""
    assert "--output:" in err and "inside the data folder" in err
    assert payouts_in(history) == 1  # the history was not written over
    assert not (data_home / "export.csv").exists()


def test_export_refuses_a_link_into_the_data_folder(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    history: Path,
    tmp_path: Path,
) -> None:
    link = tmp_path / "looks-harmless.csv"
    link.symlink_to(history)
    for extra in ((), ("--force",)):
        code, _, err = run(monkeypatch, capsys, "history", "export", "--output", str(link), *extra)
        assert code == 2 and "inside the data folder" in err
    assert payouts_in(history) == 1


def test_export_refuses_an_existing_file_unless_forced_and_always_writes_0600(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    history: Path,
    tmp_path: Path,
) -> None:
    target = tmp_path / "payouts.csv"
    target.write_text("my spreadsheet\n", encoding="utf-8")
    target.chmod(0o644)
    code, _, err = run(monkeypatch, capsys, "history", "export", "--output", str(target))
    assert code == 2 and "already exists; add --force" in err
    assert target.read_text(encoding="utf-8") == "my spreadsheet\n"

    code, _, err = run(monkeypatch, capsys, "history", "export", "--output", str(target), "--force")
    assert code == 0, err
    assert target.read_text(encoding="utf-8").startswith("Record,")
    assert target.stat().st_mode & 0o777 == 0o600

    # --force replaces a link itself; the file it pointed at is not written through.
    elsewhere = tmp_path / "notes.txt"
    elsewhere.write_text("keep me\n", encoding="utf-8")
    link = tmp_path / "link.csv"
    link.symlink_to(elsewhere)
    code, _, err = run(monkeypatch, capsys, "history", "export", "--output", str(link), "--force")
    assert code == 0, err
    assert elsewhere.read_text(encoding="utf-8") == "keep me\n"
    assert not link.is_symlink() and link.stat().st_mode & 0o777 == 0o600


# -- --data-dir "" ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_data_dir_is_an_error_not_the_default_folder(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    history: Path,
    value: str,
) -> None:
    code, out, err = run(monkeypatch, capsys, "--data-dir", value, "history", "export")
    assert code == 2 and out == ""
    assert "--data-dir" in err and "empty" in err


def test_an_empty_data_dir_does_not_open_the_window(tmp_path: Path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "CACTUS_DESK_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "cactus_desk", "--data-dir", ""],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode == 2
    assert "--data-dir" in result.stderr and "empty" in result.stderr
    assert not (tmp_path / HISTORY_FILE).exists()


# -- site ids -------------------------------------------------------------------------------


def test_site_ids_are_bounded_to_the_gateways_integer(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], data_home: Path
) -> None:
    assert MAX_SITE_ID == 2_147_483_647
    with pytest.raises(ValidationError, match="site_id"):
        Profile(name="x", base_url="https://gw.example", merchant_id="m", site_id=MAX_SITE_ID + 1)
    assert Profile(name="x", base_url="https://gw.example", merchant_id="m", site_id=MAX_SITE_ID)

    too_big = str(MAX_SITE_ID + 1)
    code, _, err = run(monkeypatch, capsys, *ADD, "Big", "--site-id", too_big, "--salt-stdin")
    assert code == 2 and "--site-id" in err and "larger than a site ID can be" in err
    code, _, err = run(monkeypatch, capsys, *ADD, "Huge", "--site-id", "9" * 40, "--salt-stdin")
    assert code == 2 and "--site-id" in err
    code, _, err = run(monkeypatch, capsys, "sandbox", "--site-id", too_big)
    assert code == 2 and "--site-id" in err
    assert not (data_home / PROFILES_FILE).exists()

    code, _, err = run(
        monkeypatch,
        capsys,
        *ADD,
        "Top",
        "--site-id",
        str(MAX_SITE_ID),
        "--salt-stdin",
        stdin="salt-for-top",
    )
    assert code == 0, err
    assert ProfileStore(data_home).get("Top").site_id == MAX_SITE_ID


# -- --ca-bundle --------------------------------------------------------------------------------


def _not_certificates(folder: Path) -> dict[str, Path]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    files = {
        "text": b"just some notes\n",
        "truncated": b"-----BEGIN CERTIFICATE-----\nMIIB\n",
        "garbage_body": (
            b"-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n"
        ),
        "key_only": key,
        "binary": bytes(range(256)) * 4,
        "empty": b"",
    }
    paths = {}
    for name, content in files.items():
        path = folder / f"{name}.pem"
        path.write_bytes(content)
        paths[name] = path
    return paths


def test_a_ca_bundle_must_be_pem_certificates(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    data_home: Path,
    memory_keyring: MemoryKeyring,
    tmp_path: Path,
) -> None:
    for name, path in _not_certificates(tmp_path).items():
        code, _, err = run(
            monkeypatch,
            capsys,
            *ADD,
            f"Shop {name}",
            "--site-id",
            "21",
            "--ca-bundle",
            str(path),
            "--salt-stdin",
            stdin="salt-1",
        )
        assert code == 2, (name, err)
        assert err.startswith("cactus-desk: error: --ca-bundle:") and str(path) in err, name
        assert len(err.strip().splitlines()) == 1, name
    code, _, err = run(
        monkeypatch, capsys, *ADD, "Dir", "--site-id", "21", "--ca-bundle", str(tmp_path),
        "--salt-stdin",
    )  # fmt: skip
    assert code == 2 and "--ca-bundle: no such file" in err
    assert not (data_home / PROFILES_FILE).exists()
    assert memory_keyring.passwords == {}

    bundle = write_ca_bundle(tmp_path / "real.pem")
    code, _, err = run(
        monkeypatch,
        capsys,
        *ADD,
        "Private CA",
        "--site-id",
        "21",
        "--ca-bundle",
        str(bundle),
        "--salt-stdin",
        stdin="salt-2",
    )
    assert code == 0, err
    assert ProfileStore(data_home).get("Private CA").ca_bundle == str(bundle)


# -- profile names --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "Acme\u202elive",  # right-to-left override: shows as "Acme evil"
        "\u2066Acme\u2069",  # isolates
        "Ac\u200dme",  # zero-width joiner
        "Acme\u200b",  # zero-width space
        "\ufeffAcme",  # byte order mark
        "Acme\u2028live",  # line separator
        "Acme\u00adlive",  # soft hyphen (format)
    ],
)
def test_profile_names_refuse_bidi_and_invisible_characters(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    data_home: Path,
    name: str,
) -> None:
    with pytest.raises(ValidationError, match="invisible formatting characters"):
        Profile(name=name, base_url="https://gw.example", merchant_id="m", site_id=1)
    code, _, err = run(monkeypatch, capsys, *ADD, name, "--site-id", "21", "--salt-stdin")
    assert code == 2 and "invisible formatting characters" in err
    assert not (data_home / PROFILES_FILE).exists()


def test_ordinary_non_latin_profile_names_are_fine() -> None:
    for name in ("Магазин №1", "店舗 東京", "متجر", "Café — Live"):
        assert Profile(name=name, base_url="https://gw.example", merchant_id="m", site_id=1)


# -- card numbers, whatever separates the digits --------------------------------------------

SEPARATED = [
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "4111.1111.1111.1111",
    "4111_1111_1111_1111",
    "4111/1111/1111/1111",
    "4111 - 1111 - 1111 - 1111",
    "4111\u00a01111\u00a01111\u00a01111",  # no-break spaces
    "4111\u20091111\u20091111\u20091111",  # thin spaces
    "4111\u20131111\u20131111\u20131111",  # en dashes
    "4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1",
]


@pytest.mark.parametrize("number", SEPARATED)
def test_card_numbers_are_masked_in_the_history_and_the_log(
    number: str, data_home: Path, tmp_path: Path
) -> None:
    assert mask_card(number) == MASKED
    assert redacted_fields("card", {"card_number": number})["card_number"] == MASKED
    assert scrub_card_numbers(f"paid to {number}.") == f"paid to {MASKED}."
    assert redact(f"card {number} end") == f"card {MASKED} end"

    request = card_request(
        "po-sep",
        additional_fields={"card_number": CARD, "card_holder": f"Ivan {number}"},
    )
    with open_history(data_home) as store:
        record_id = store.create_attempt(attempt("https://gw.example.com", request))
        store.record_outcome(
            record_id,
            Rejected(f"Card {number} is blocked", {"error": f"card {number}", "success": False}),
        )
        record = store.get(record_id)
        assert CARD not in json.dumps(record.request) and MASKED in json.dumps(record.request)
        assert record.message == f"Card {MASKED} is blocked"
    raw = (data_home / HISTORY_FILE).read_bytes() + b"".join(
        p.read_bytes() for p in data_home.glob(f"{HISTORY_FILE}-wal")
    )
    for form in {number, CARD}:
        assert form.encode() not in raw

    log_dir = tmp_path / "logs"
    setup_logging(log_dir)
    logging.getLogger("cactus_desk.test").warning("gateway said: card %s declined", number)
    stop_logging()
    text = (log_dir / LOG_FILE_NAME).read_text(encoding="utf-8")
    assert number not in text and MASKED in text


def test_a_card_field_is_masked_even_when_its_number_is_mistyped(data_home: Path) -> None:
    mistyped = "4111.1111.1111.1112"  # fails the Luhn check
    with open_history(data_home) as store:
        record_id = store.create_attempt(attempt("https://gw.example.com", card_request("po-x")))
        store.record_outcome(record_id, Rejected("No", {"card_number": mistyped, "x": 1}))
    raw = (data_home / HISTORY_FILE).read_bytes() + b"".join(
        p.read_bytes() for p in data_home.glob(f"{HISTORY_FILE}-wal")
    )
    assert mistyped.encode() not in raw and b"4111111111111112" not in raw


def test_a_card_inside_a_longer_run_of_numbers_is_still_found() -> None:
    assert scrub_card_numbers("4111.1111.1111.1111.50 EUR") == f"{MASKED}.50 EUR"
    assert scrub_card_numbers("ref 2026/4111 1111 1111 1111") == f"ref 2026/{MASKED}"
    # ids and times stay readable
    assert scrub_card_numbers("2026-11-29 14:01:25.123") == "2026-11-29 14:01:25.123"
    assert scrub_card_numbers("invoice 1234567890123") == "invoice 1234567890123"


# -- callbacks import ---------------------------------------------------------------------------


def test_import_reports_every_line_even_the_hostile_ones(data_home: Path, tmp_path: Path) -> None:
    with open_history(data_home) as store:
        first = accepted_record(store)
        second = accepted_record(store, request_id="po-0002", invoice_id="500002")
        path = tmp_path / "callbacks.jsonl"
        with path.open("wb") as handle:
            handle.write(json.dumps(callback(4)).encode() + b"\n")  # 1
            handle.write(b'{"pad": "' + b"x" * (MAX_LINE_BYTES * 3) + b'"}\n')  # 2 overlong
            handle.write(b'{"request_id": "po-0002", "x": "\xff\xfe"}\n')  # 3 not UTF-8
            handle.write(b"[" * 50_000 + b"]" * 50_000 + b"\n")  # 4 deep (over the cap too)
            handle.write(b"[" * 20_000 + b"\n")  # 5 deep, within the cap
            handle.write(b'{"amount": ' + b"9" * 5000 + b"}\n")  # 6 a number too long to read
            handle.write(b"\x00\x01garbage\n")  # 7
            handle.write(
                json.dumps(callback(5, request_id="po-0002", invoice_id=500002)).encode() + b"\n"
            )  # 8
        report = import_file(store, path, SALT, merchant_id=MERCHANT, site_id=SITE)
        assert report.applied == 2 and report.total == 8 and report.stopped is None
        rejected = {item.line: item.reason for item in report.rejected}
        assert sorted(rejected) == [2, 3, 4, 5, 6, 7]
        assert "longer than 64 KiB" in rejected[2] and "longer than 64 KiB" in rejected[4]
        assert rejected[3] == "not UTF-8 text"
        assert store.get(first).gateway_status == 4
        assert store.get(second).gateway_status == 5


def test_import_streams_a_large_file_with_flat_memory(data_home: Path, tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    with open_history(data_home) as store:
        record_id = accepted_record(store)
        with path.open("wb") as handle:
            handle.write(b'{"filler": "' + b"y" * (12 * 1024 * 1024) + b'"}\n')
            handle.write(json.dumps(callback(4)).encode() + b"\n")
            handle.write(b"z" * (40 * 1024 * 1024))  # a last line that never ends
        tracemalloc.start()
        try:
            report = import_file(store, path, SALT, merchant_id=MERCHANT, site_id=SITE)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 4 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
        assert (report.total, report.applied) == (3, 1)
        assert [item.line for item in report.rejected] == [1, 3]
        assert report.stopped is not None and "line 3" in report.stopped
        assert store.get(record_id).gateway_status == 4


def test_importing_dev_zero_ends_with_a_clear_error(data_home: Path) -> None:
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero on this platform")
    ProfileStore(data_home).add(
        Profile(name="Shop", base_url="https://gw.example", merchant_id=MERCHANT, site_id=SITE)
    )
    child = (
        "import sys, keyring, resource\n"
        "from tests.memory_keyring import MemoryKeyring\n"
        "keyring.set_keyring(MemoryKeyring())\n"
        "from cactus_desk import cli\n"
        "from cactus_desk.profiles import ProfileStore\n"
        "from cactus_desk.paths import data_dir\n"
        "from cactus_desk.secrets import SecretStore\n"
        f"SecretStore().set_salt(ProfileStore(data_dir()).get('Shop').id, {SALT!r})\n"
        "code = cli.main(['callbacks', 'import', '/dev/zero', '--profile', 'Shop'])\n"
        # VmHWM is this program's own peak: ru_maxrss would also count the forked copy of the
        # test runner from before exec, which grows with the suite.
        "peak = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')]\n"
        "kb = int(peak[0].split()[1]) if peak else "
        "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print('maxrss', kb, file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", child], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    first = result.stderr.splitlines()[0]
    assert first.startswith("cactus-desk: error:") and "zero is not a text file" in first
    maxrss_kb = int(result.stderr.split("maxrss", 1)[1].split()[0])
    assert maxrss_kb < 400 * 1024
    assert "Traceback" not in result.stderr


def test_import_keeps_a_bounded_list_of_rejections(data_home: Path, tmp_path: Path) -> None:
    from cactus_desk.callbacks import reconcile

    path = tmp_path / "junk.jsonl"
    path.write_bytes(b"{}\n" + b"\xff\n" * 1500)  # line after line that is not UTF-8
    with open_history(data_home) as store:
        report = import_file(store, path, SALT, merchant_id=MERCHANT, site_id=SITE)
    assert report.total == 1501 and report.rejected_count == 1501
    assert len(report.rejected) == reconcile.MAX_REJECTIONS_KEPT
    assert "501 more rejected line(s)" in "\n".join(report.lines())


def test_the_import_command_reports_every_line_and_fails(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    data_home: Path,
    tmp_path: Path,
) -> None:
    added = ProfileStore(data_home).add(
        Profile(name="Shop", base_url="https://gw.example", merchant_id=MERCHANT, site_id=SITE)
    )
    SecretStore().set_salt(added.id, SALT)
    with open_history(data_home) as store:
        record_id = accepted_record(store)
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        json.dumps(callback(4)).encode()
        + b"\n"
        + b"q" * (MAX_LINE_BYTES + 10)
        + b"\n"
        + b'{"x": "\xc3"}\n'
    )
    code, out, _ = run(monkeypatch, capsys, "callbacks", "import", str(path), "--profile", "Shop")
    assert code == 1
    assert "3 callback(s): 1 applied" in out and "2 rejected" in out
    assert "line 2: longer than 64 KiB" in out and "line 3: not UTF-8 text" in out
    with open_history(data_home) as store:
        assert store.get(record_id).gateway_status == 4
