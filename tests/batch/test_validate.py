"""Validating a batch with the form's own checks, before anything is sent."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from cactus_desk.batch.columns import MappingMemory, auto_mapping, mapping_for
from cactus_desk.batch.ids import batch_id, row_request_id
from cactus_desk.batch.reading import read_table
from cactus_desk.batch.validate import validate_batch
from cactus_desk.history import open_history
from cactus_desk.payouts.submit import record_attempt
from cactus_desk.profiles import Profile
from tests.batch.files import ACCOUNT, CARD, CARD_HEADERS, card_rows, write_csv, write_xlsx


def profile(**changes: object) -> Profile:
    values: dict[str, object] = {
        "id": "p1",
        "name": "Shop",
        "base_url": "http://127.0.0.1:9",
        "merchant_id": "sandbox",
        "site_id": 101,
        "environment": "sandbox",
    }
    values.update(changes)
    return Profile.model_validate(values)


def checked(path: Path, **kwargs: object):  # type: ignore[no-untyped-def]
    table = read_table(path)
    return validate_batch(table, auto_mapping(table.headers), profile(), **kwargs)  # type: ignore[arg-type]


def test_each_bad_cell_gets_its_own_message_at_its_row_and_column(tmp_path: Path) -> None:
    rows = [
        ["alice", "10.00", "RUB", "card", CARD, "Ivan Petrov"],
        ["", "10.00", "RUB", "card", CARD, "Ivan Petrov"],
        ["bob", "ten", "RUB", "card", CARD, "Ivan Petrov"],
        ["carol", "10.00", "RUB", "card", "4242424242424241", "Ivan Petrov"],
        ["dave", "10.00", "RUB", "nosuch", "", ""],
        ["erin", "10.00", "USDT", "card", CARD, "Ivan"],
    ]
    batch = checked(write_csv(tmp_path / "b.csv", CARD_HEADERS, rows))
    assert not batch.ok
    bad = {row.line: set(row.errors) for row in batch.bad_rows}
    assert bad == {
        3: {"site_login"},
        4: {"amount"},
        5: {"card_number"},
        6: {"method"},
        7: {"method"},
    }
    assert batch.rows[0].valid
    # Only the valid row counts in the totals.
    assert batch.totals == {"RUB": 1000}


def test_a_number_shortened_to_scientific_notation_is_flagged_not_guessed(
    tmp_path: Path,
) -> None:
    headers = ["site_login", "amount", "currency", "method", "account_number"]
    csv_file = write_csv(
        tmp_path / "sci.csv", headers, [["alice", "10", "RUB", "localbanks", "4.24242E+15"]]
    )
    xlsx_file = write_xlsx(
        tmp_path / "sci.xlsx", headers, [["alice", 10, "RUB", "localbanks", 4242424242424242]]
    )
    for path in (csv_file, xlsx_file):
        [row] = checked(path).rows
        assert "scientific notation" in row.errors["account_number"]
        assert row.payout is None


def test_leading_zeros_and_twenty_digit_accounts_reach_the_payout(tmp_path: Path) -> None:
    headers = ["site_login", "amount", "currency", "method", "account_number"]
    rows = [["007", "1500.50", "RUB", "localbanks", ACCOUNT]]
    for path in (
        write_csv(tmp_path / "a.csv", headers, rows),
        write_xlsx(tmp_path / "a.xlsx", headers, rows, text_columns=["account_number"]),
    ):
        [row] = checked(path).rows
        assert row.payout is not None, row.errors
        assert row.payout.fields["account_number"] == ACCOUNT
        assert row.payout.site_login == "007"
        assert row.payout.amount_minor == 150050


def test_request_ids_derive_from_the_profile_file_and_line(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "b.csv", CARD_HEADERS, card_rows(3))
    batch = checked(path)
    assert batch.batch_id == batch_id("p1", read_table(path).sha256)
    assert [row.request_id for row in batch.rows] == [
        row_request_id(batch.batch_id, line) for line in (2, 3, 4)
    ]
    assert checked(path).batch_id == batch.batch_id  # the same file is the same batch
    other = validate_batch(
        read_table(path), auto_mapping(CARD_HEADERS), profile(id="p2", name="Other")
    )
    assert other.batch_id != batch.batch_id


def test_repeats_inside_the_file_and_repeated_request_ids(tmp_path: Path) -> None:
    headers = [*CARD_HEADERS, "request_id"]
    rows = [
        ["alice", "10.00", "RUB", "card", CARD, "Ivan Petrov", "r-1"],
        ["alice", "10.00", "RUB", "card", CARD, "Ivan Petrov", "r-2"],
        ["bob", "10.00", "RUB", "card", CARD, "Ivan Petrov", "r-1"],
    ]
    batch = checked(write_csv(tmp_path / "d.csv", headers, rows))
    assert batch.rows[1].warnings == ["Repeats the payout on line 2."]
    assert "already used on line 2" in batch.rows[2].errors["request_id"]


def test_repeats_of_the_last_24_hours_and_a_reimported_file_are_warned(
    tmp_path: Path, data_home: Path
) -> None:
    from cactus_desk.payouts.payout import Payout, PayoutTarget

    path = write_csv(tmp_path / "b.csv", CARD_HEADERS, card_rows(2))
    with open_history(data_home) as store:
        first = checked(path, history=store)
        assert first.ok and first.warnings == []
        assert all(row.warnings == [] for row in first.rows)
        # An earlier one-off payout to the first row's recipient, and the second row sent.
        earlier = Payout(
            PayoutTarget.of(profile()),
            "one-off-1",
            "user00000",
            "card",
            "RUB",
            1000,
            {"card_number": CARD, "card_holder": "Ivan Petrov"},
        )
        record_attempt(store, earlier)
        assert first.rows[1].payout is not None
        record_attempt(store, first.rows[1].payout)
        again = checked(path, history=store)
    assert any("imported before" in warning for warning in again.warnings)
    assert again.rows[0].warnings == [
        "Repeats a payout of the last 24 hours: request one-off-1 (Submitting)."
    ]
    assert again.rows[1].warnings == []  # its own record is the batch's, not a repeat


def test_totals_over_the_available_balance_are_warned(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "b.csv", CARD_HEADERS, card_rows(3, amount="400.00"))
    batch = checked(path, balances=lambda: {"RUB": Decimal("1000.00")})
    assert batch.totals == {"RUB": 120000}
    assert batch.balances == {"RUB": 100000}
    assert batch.warnings == [
        "The RUB total 1 200.00 is above the available balance 1 000.00: some payouts will be "
        "refused."
    ]
    enough = checked(path, balances=lambda: {"RUB": Decimal("1200.00")})
    assert enough.warnings == []


def test_a_file_without_a_required_column_is_refused_whole(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "b.csv", ["login", "amount", "currency", "method"], [["a"] * 4])
    batch = checked(path)
    assert not batch.ok
    assert batch.problems == [
        "The file has no column for site_login (name the columns by their wire names, or map them)."
    ]


def test_a_mapping_for_other_headers_is_remembered_per_header_set(
    tmp_path: Path, data_home: Path
) -> None:
    headers = ("Login", "Sum", "Cur", "Method", "Card", "Holder")
    memory = MappingMemory(data_home)
    assert mapping_for(headers, memory) == {3: "method"}
    chosen = {0: "site_login", 1: "amount", 2: "currency", 3: "method", 4: "card_number"}
    memory.remember(headers, chosen)
    assert mapping_for(headers, MappingMemory(data_home)) == chosen
    assert (data_home / "batch-mappings.json").stat().st_mode & 0o777 == 0o600
    assert mapping_for(("other", "method"), memory) == {1: "method"}
