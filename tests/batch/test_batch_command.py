"""``cactus-desk batch template|validate|send`` against the sandbox over loopback HTTP."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from cactus_desk.batch.reading import read_table
from cactus_desk.batch.store import batch_records
from cactus_desk.catalog import load_catalog
from cactus_desk.history import open_history
from cactus_desk.logs import stop_logging
from cactus_desk.payouts.states import State
from cactus_desk.sandbox import SandboxGateway
from cactus_desk.sandbox.faults import Fault
from tests.batch.cli import add_profile, cactus
from tests.batch.files import ACCOUNT, CARD, CARD_HEADERS, card_rows, write_csv, write_xlsx
from tests.memory_keyring import MemoryKeyring


@pytest.fixture(autouse=True)
def _close_the_log_file() -> Iterator[None]:
    yield
    stop_logging()


@pytest.fixture
def gateway() -> Iterator[SandboxGateway]:
    balances = {code: 10**12 for code in ("RUB", "USD", "EUR", "AZN", "USDT", "IDR", "UAH")}
    with SandboxGateway(balances=balances) as sandbox:
        yield sandbox


@pytest.fixture
def shop(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    gateway: SandboxGateway,
    memory_keyring: MemoryKeyring,
) -> str:
    add_profile(monkeypatch, capsys, gateway)
    return "Shop"


def history_states(data_home: Path) -> dict[str, State]:
    with open_history(data_home) as store:
        return {record.request_id: record.state for record in store.iter_records()}


def sent_ids(gateway: SandboxGateway) -> Counter[str]:
    return Counter(invoice["request_id"] for invoice in gateway.invoices)


def test_template_xlsx_has_a_column_per_field_text_identifiers_an_example_and_notes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from openpyxl import load_workbook

    out = tmp_path / "card.xlsx"
    code, _, err = cactus(
        monkeypatch, capsys, "batch", "template", "--method", "card", "--output", str(out)
    )
    assert code == 0, err
    book = load_workbook(out)
    assert book.sheetnames == ["Payouts", "Notes"]
    sheet = book["Payouts"]
    header = [cell.value for cell in sheet[1]]
    method = load_catalog().method("card")
    assert header == [
        "site_login",
        "amount",
        "currency",
        "method",
        *(spec.wire for spec in method.fields),
    ]
    example = [cell.value for cell in sheet[2]]
    assert example[:4] == ["user123", "1500.00", "USD", "card"]
    assert example[4] == "4242424242424242"
    assert sheet.cell(row=3, column=5).number_format == "@"  # card_number typed as text
    assert sheet.cell(row=3, column=2).number_format != "@"  # the amount stays a number
    notes = {row[0].value: row[1].value for row in book["Notes"].iter_rows(min_row=2)}
    assert "card_number" in notes and "request_id" in notes
    # The template reads back as a valid one-row batch for the method.
    assert read_table(out).rows == (tuple(str(value) for value in example),)


def test_template_csv_and_an_unknown_method(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sbp.csv"
    assert (
        cactus(monkeypatch, capsys, "batch", "template", "--method", "sbp", "--output", str(out))[0]
        == 0
    )
    assert read_table(out).headers == (
        "site_login",
        "amount",
        "currency",
        "method",
        "phone_number",
        "phone_holder",
        "bank_name",
    )
    code, _, err = cactus(
        monkeypatch, capsys, "batch", "template", "--method", "nope", "--output", str(out)
    )
    assert code == 2 and "--method nope: no such method" in err


def test_validate_prints_each_bad_row_and_field_and_exits_1(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    shop: str,
    gateway: SandboxGateway,
) -> None:
    rows = [
        ["alice", "10.00", "RUB", "card", CARD, "Ivan Petrov"],
        ["bob", "10.0.0", "RUB", "card", CARD, "Ivan Petrov"],
        ["carol", "10.00", "RUB", "card", "4.24242E+15", "Ivan Petrov"],
    ]
    path = write_csv(tmp_path / "bad.csv", CARD_HEADERS, rows)
    code, out, _ = cactus(monkeypatch, capsys, "batch", "validate", str(path), "--profile", shop)
    assert code == 1
    assert "line 3: amount: " in out
    assert "line 4: card_number: 4.24242E+15 looks like a number" in out
    assert "line 2" not in out
    assert "3 rows, 2 with errors" in out
    good = write_csv(tmp_path / "good.csv", CARD_HEADERS, rows[:1])
    code, out, _ = cactus(monkeypatch, capsys, "batch", "validate", str(good), "--profile", shop)
    assert code == 0, out
    assert "RUB: 1 payouts, 10.00 RUB (available" in out
    assert gateway.invoices == []  # validating sends nothing


def test_send_refuses_a_file_with_bad_rows_and_sends_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    shop: str,
    gateway: SandboxGateway,
    data_home: Path,
) -> None:
    rows = [*card_rows(3), ["bob", "-1", "RUB", "card", CARD, "Ivan"]]
    path = write_csv(tmp_path / "bad.csv", CARD_HEADERS, rows)
    code, _, err = cactus(
        monkeypatch, capsys, "batch", "send", str(path), "--profile", shop, "--yes"
    )
    assert code == 2
    assert "line 5: amount:" in err and "Nothing was sent." in err
    assert gateway.invoices == []
    assert history_states(data_home) == {}


def test_send_without_yes_off_a_terminal_is_not_confirmed(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    shop: str,
    gateway: SandboxGateway,
) -> None:
    path = write_csv(tmp_path / "b.csv", CARD_HEADERS, card_rows(2))
    code, out, err = cactus(monkeypatch, capsys, "batch", "send", str(path), "--profile", shop)
    assert code == 2 and "add --yes" in err
    assert "SANDBOX: no real money" in out and "RUB: 2 payouts, 20.00 RUB" in out
    assert gateway.invoices == []


def many_methods_rows(count: int) -> tuple[list[str], list[list[str]]]:
    """``count`` valid rows cycling through every method the sandbox profile may use."""
    catalog = load_catalog()
    methods = [method for method in catalog.methods if method.documented]
    extensions = [method for method in catalog.methods if not method.documented]
    headers = ["site_login", "amount", "currency", "method"]
    for method in [*methods, *extensions]:
        for spec in method.fields:
            if spec.wire not in headers:
                headers.append(spec.wire)
    rows = []
    for n in range(count):
        method = methods[n % len(methods)]
        values = {
            "site_login": f"u{n:04d}",
            "amount": f"{1 + n % 7}.{n % 100:02d}" if method.currencies[0] != "USDT" else "5",
            "currency": method.currencies[0],
            "method": method.wire,
        }
        for spec in method.fields:
            values[spec.wire] = spec.example
        if "time" in values:  # the catalog's example time has passed; a payout's must not
            values["time"] = (datetime.now() + timedelta(days=30)).strftime("%Y-%m-%d %H:%M")
        rows.append([values.get(header, "") for header in headers])
    return headers, rows


def test_a_200_row_xlsx_with_every_method_sends_end_to_end_and_the_report_matches(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    shop: str,
    gateway: SandboxGateway,
    data_home: Path,
) -> None:
    headers, rows = many_methods_rows(200)
    assert len({row[3] for row in rows}) >= 9
    path = write_xlsx(tmp_path / "big.xlsx", headers, rows, text_columns=headers)
    report = tmp_path / "report.csv"
    code, out, err = cactus(
        monkeypatch,
        capsys,
        "batch",
        "send",
        str(path),
        "--profile",
        shop,
        "--yes",
        "--report",
        str(report),
    )
    assert code == 0, out + err
    assert "200/200" in err
    ids = sent_ids(gateway)
    assert len(ids) == 200 and set(ids.values()) == {1}
    states = history_states(data_home)
    assert set(ids) == set(states) and set(states.values()) == {State.ACCEPTED}
    with report.open(encoding="utf-8-sig") as handle:
        lines = list(csv.DictReader(handle))
    assert len(lines) == 200
    with open_history(data_home) as store:
        by_id = {record.request_id: record for record in store.iter_records()}
    for line in lines:
        record = by_id[line["request_id"]]
        assert line["state"] == record.state.label == "Accepted"
        assert line["invoice_id"] == record.invoice_id
        assert line["record_id"] == str(record.id)
    assert CARD not in report.read_text(encoding="utf-8-sig")  # cards never in a report
    assert (data_home / "batch-reports").is_dir()
    # Running it again resumes the same batch: nothing is sent twice.
    code, out, _ = cactus(
        monkeypatch, capsys, "batch", "send", str(path), "--profile", shop, "--yes"
    )
    assert code == 0
    assert "imported before" in out and "200 were already in the history" in out
    assert len(gateway.invoices) == 200


def test_leading_zeros_and_twenty_digit_accounts_reach_the_gateway(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    shop: str,
    gateway: SandboxGateway,
) -> None:
    headers = ["site_login", "amount", "currency", "method", "account_number"]
    rows = [["007", "10.00", "RUB", "localbanks", ACCOUNT]]
    for path in (
        write_csv(tmp_path / "z.csv", headers, rows),
        write_xlsx(
            tmp_path / "z.xlsx",
            headers,
            [["008", 10, "RUB", "localbanks", ACCOUNT]],
            text_columns=headers,
        ),
    ):
        code, out, err = cactus(
            monkeypatch, capsys, "batch", "send", str(path), "--profile", shop, "--yes"
        )
        assert code == 0, out + err
    sent = [(i["site_login"], i["additional_fields"]["account_number"]) for i in gateway.invoices]
    assert sent == [("007", ACCOUNT), ("008", ACCOUNT)]


def test_a_lost_answer_stays_unknown_and_is_not_resent_and_refused_rows_are_paid_again(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    shop: str,
    gateway: SandboxGateway,
    data_home: Path,
) -> None:
    path = write_csv(tmp_path / "b.csv", CARD_HEADERS, card_rows(4))
    gateway.set_fault(Fault.RESET, times=1)  # row 1: the invoice is made, the answer lost
    args = ("batch", "send", str(path), "--profile", shop, "--yes", "--concurrency", "1")
    code, out, _ = cactus(monkeypatch, capsys, *args)
    assert code == 5  # in doubt
    first = sorted(history_states(data_home).items())
    assert [state for _, state in first] == [State.UNKNOWN] + [State.ACCEPTED] * 3
    assert len(gateway.invoices) == 4

    code, _, _ = cactus(monkeypatch, capsys, *args)
    assert code == 5  # still in doubt, and nothing sent again
    assert len(gateway.invoices) == 4 and set(sent_ids(gateway).values()) == {1}
    assert sorted(history_states(data_home).items()) == first

    # A refused row is paid again as a new batch with a new request id; UNKNOWN is not.
    other = write_csv(tmp_path / "c.csv", CARD_HEADERS, card_rows(3, start=10))
    gateway.set_fault(Fault.REJECT, times=1)
    other_args = ("batch", "send", str(other), "--profile", shop, "--yes", "--concurrency", "1")
    code, _, _ = cactus(monkeypatch, capsys, *other_args)
    assert code == 3
    code, out, err = cactus(monkeypatch, capsys, *other_args, "--pay-failed-again")
    assert code == 0, out + err
    assert "the refused rows of batch" in out
    with open_history(data_home) as store:
        retried = [r for r in store.iter_records() if r.site_login == "user00010"]
    assert sorted(r.state for r in retried) == [State.ACCEPTED, State.REJECTED]
    assert len({r.request_id for r in retried}) == 2
    assert sum(1 for i in gateway.invoices if i["site_login"] == "user00010") == 1
    # Paying the failed rows again twice sends nothing more: that batch is already recorded.
    before = len(gateway.invoices)
    assert cactus(monkeypatch, capsys, *other_args, "--pay-failed-again")[0] == 0
    assert len(gateway.invoices) == before


def test_batch_rows_are_found_by_their_batch(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    shop: str,
    data_home: Path,
) -> None:
    one = write_csv(tmp_path / "one.csv", CARD_HEADERS, card_rows(3))
    two = write_csv(tmp_path / "two.csv", CARD_HEADERS, card_rows(2, start=50))
    for path in (one, two):
        assert (
            cactus(monkeypatch, capsys, "batch", "send", str(path), "--profile", shop, "--yes")[0]
            == 0
        )
    from cactus_desk.batch.ids import batch_id
    from cactus_desk.history import open_profiles

    profile = open_profiles(data_home, None).get(shop)
    with open_history(data_home) as store:
        found = batch_records(store, batch_id(profile.id, read_table(one).sha256))
    assert [record.site_login for record in found] == ["user00000", "user00001", "user00002"]
