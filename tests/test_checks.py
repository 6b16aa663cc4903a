"""Field checks: good values pass, bad ones get a message, and nothing ever raises."""

from __future__ import annotations

import random
from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cactus_desk.checks import (
    CHECKS,
    MAX_FIELD_LENGTH,
    check_datetime,
    check_expiry,
    cnpj_ok,
    cpf_ok,
    luhn_ok,
    normalize,
)

GOOD = {
    "text": ["Morgan", "Pushkin street, Kolotushkin house 5", "Банк Россия", "@test"],
    "holder_name": ["John Wick", "Иван Петров", "O'Brien-Smith", "李小龙"],
    "card_number": [
        "4242424242424242",
        "4242 4242 4242 4242",
        " 4111 1111 1111 1111 ",
        "0000000000000",
        "5555555555554444",
        "378282246310005",
        "6011111111111117",
        "4242-4242-4242-4242",
    ],
    "expiry": ["07/29", "12/99", " 01/40 "],
    "phone": [
        "79999999999",
        "994501234567",
        "1234567890",
        "123456789012345",
        "+79999999999",
        "7 999 999 99 99",
        "+7 (999) 999-99-99",
    ],
    "email": ["test@mail.com", "a.b+c@sub.example.org"],
    "skrill_account": ["test@mail.com", "79999999999", "+7 999 999-99-99"],
    "wise_tag": ["@examplovich23", "@john.doe_1", "@ab"],
    "pix_key": [
        "12345678909",
        "11222333000181",
        "5511999998888",
        "pix@example.com",
        "123e4567-e89b-12d3-a456-426655440000",
        "123E4567-E89B-12D3-A456-426655440000",
        "123.456.789-09",
        "12.345.678/0001-95",
        "+55 11 99999-8888",
    ],
    "datetime": ["2030-05-01 10:22", "2096-02-29 00:00", "2099-12-31 23:59"],
    "code": ["123456", "0000", "123456789012"],
    "account_number": [
        "40702810800070000366",
        "123456",
        "GB82WEST12345698765432",
        "GB82 WEST 1234 5698 7654 32",
        "de89370400440532013000",
    ],
    "papara_account": ["9925125660"],
    "flag": ["true", "false", "TRUE", " False "],
}

BAD = {
    "text": ["", "   ", "line\nbreak", "tab\there", "bell\x07", "x" * (MAX_FIELD_LENGTH + 1)],
    "holder_name": ["", "  ", "12345", "John\nWick", "John\u202eWick", "J" * 129],
    "card_number": [
        "",
        "4242424242424241",
        "4242-4242-4242-4241",
        "424242424242424242424",
        "42424242424",
        "４２４２４２４２４２４２４２４２",
        "4242\t4242\t4242\t4242",
        "card",
    ],
    "expiry": ["7/29", "13/29", "00/29", "07/2029", "0729", "01/20", "ab/cd", "07/29\n"],
    "phone": [
        "++79999999999",
        "7/999/999",
        "799-999",
        "123456789",
        "1" * 16,
        "phone",
        "7999x99999",
    ],
    "email": ["test", "test@", "@mail.com", "a b@mail.com", "test@mail"],
    "skrill_account": ["test", "test@mail", "+7999", "Иван"],
    "wise_tag": ["examplovich23", "@", "@a", "@bad tag", "@ünïcode", "@" + "a" * 70],
    "pix_key": [
        "123",
        "abc",
        "123e4567e89b12d3a456426655440000",
        "pix@",
        "123.456.789-00",
        "12345678900",
        "11111111111",
        "12.345.678/0001-96",
        "12345678000196",
    ],
    "datetime": [
        "2023-05-01 10:22",
        "2023-05-01",
        "2023-05-01T10:22",
        "2023-02-30 10:00",
        "2023-13-01 10:00",
        "2023-05-01 24:00",
        "2023-5-1 10:22",
        "tomorrow",
    ],
    "code": ["12a456", "123", "1" * 13, "", "١٢٣٤٥٦"],
    "account_number": [
        "12345",
        "1" * 35,
        "GB82WEST12345698765431",
        "ACCOUNT-1",
        "40702810800070000366\x00",
    ],
    "papara_account": ["992512566", "99251256601", "99251A5660"],
    "flag": ["yes", "1", "", "truee"],
}


def test_every_check_is_covered_here() -> None:
    assert set(GOOD) == set(CHECKS) == set(BAD)


@pytest.mark.parametrize(("check", "value"), [(c, v) for c, vs in GOOD.items() for v in vs])
def test_good_values_pass(check: str, value: str) -> None:
    assert CHECKS[check](value) is None


@pytest.mark.parametrize(("check", "value"), [(c, v) for c, vs in BAD.items() for v in vs])
def test_bad_values_get_a_message(check: str, value: str) -> None:
    message = CHECKS[check](value)
    assert isinstance(message, str) and message.strip()
    assert "\n" not in message


def test_phone_message_explains_the_format() -> None:
    assert CHECKS["phone"]("+7999") == (
        "10 to 15 digits with the country code, e.g. 79999999999 "
        "(spaces, dashes and a leading + are fine)."
    )


def test_a_past_pickup_time_is_refused_like_a_past_expiry() -> None:
    now = datetime(2026, 11, 28, 14, 30, 45)
    assert check_datetime("2026-11-28 14:29", now=now) == (
        "This time has passed (it is now 2026-11-28 14:30)."
    )
    assert check_datetime("2026-11-28 14:30", now=now) is None
    assert check_datetime("2027-01-01 09:00", now=now) is None


def test_cpf_and_cnpj_check_digits() -> None:
    assert cpf_ok("12345678909") and not cpf_ok("12345678919")
    assert cnpj_ok("11222333000181") and cnpj_ok("12345678000195")
    assert not cnpj_ok("11222333000182") and not cnpj_ok("00000000000000")
    assert "CPF has a typo" in (CHECKS["pix_key"]("123.456.789-00") or "")
    assert "CNPJ has a typo" in (CHECKS["pix_key"]("12.345.678/0001-96") or "")


def test_past_expiry_says_it_expired() -> None:
    assert check_expiry("07/23", today=date(2026, 11, 28)) == "This card expired in 07/23."
    assert check_expiry("10/26", today=date(2026, 11, 28)) == "This card expired in 10/26."
    assert check_expiry("11/26", today=date(2026, 11, 28)) is None


def test_card_typo_and_length_messages_differ() -> None:
    assert "typo" in (CHECKS["card_number"]("4242424242424241") or "")
    assert "19 digits" in (CHECKS["card_number"]("4" * 20) or "")


def test_wise_tag_without_at_suggests_the_fix() -> None:
    assert CHECKS["wise_tag"]("examplovich23") == "A Wise tag starts with @, e.g. @examplovich23."


def test_luhn() -> None:
    assert luhn_ok("79927398713")
    assert not luhn_ok("79927398710")


def test_luhn_agrees_with_the_textbook_walk_on_any_digit_string() -> None:
    def walk(digits: str) -> bool:  # from the right, every second digit doubled
        total = 0
        for index, ch in enumerate(reversed(digits)):
            number = int(ch) * (2 if index % 2 else 1)
            total += number - 9 if number > 9 else number
        return total % 10 == 0

    rng = random.Random(15)
    for _ in range(5000):
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 25)))
        assert luhn_ok(digits) is walk(digits), digits


@pytest.mark.parametrize(
    ("check", "value", "wire"),
    [
        ("card_number", " 4242 4242\u00a04242 4242 ", "4242424242424242"),
        ("account_number", "gb82 west 1234 5698 7654 32", "GB82WEST12345698765432"),
        ("holder_name", "  John Wick  ", "John Wick"),
        ("phone", " 79999999999\t", "79999999999"),
        ("phone", "+7 (999) 123-45-67", "79991234567"),
        ("card_number", "4242-4242-4242-4242", "4242424242424242"),
        ("skrill_account", "+7 999 123-45-67", "79991234567"),
        ("skrill_account", " a.b@mail.com ", "a.b@mail.com"),
        ("pix_key", "123.456.789-09", "12345678909"),
        ("pix_key", "12.345.678/0001-95", "12345678000195"),
        ("pix_key", "+55 11 99999-8888", "5511999998888"),
        ("pix_key", "5pix@example.com", "5pix@example.com"),
        ("pix_key", "123e4567-e89b-12d3-a456-426655440000", "123e4567-e89b-12d3-a456-426655440000"),
        ("text", " Main st 1 ", "Main st 1"),
        ("flag", " TRUE ", "true"),
    ],
)
def test_normalize_gives_the_wire_form(check: str, value: str, wire: str) -> None:
    assert normalize(check, value) == wire


_NASTY = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=40),
    st.text(alphabet="0123456789 @.-/:+\x00\t\n\u202e\u00a0", max_size=40),
    st.integers(min_value=0, max_value=100_000).map(lambda n: "9" * n),
    st.just("\ud800"),
)


@given(st.sampled_from(sorted(CHECKS)), _NASTY)
def test_no_check_ever_raises(check: str, value: str) -> None:
    result = CHECKS[check](value)
    assert result is None or (isinstance(result, str) and result)


@given(st.sampled_from(sorted(CHECKS)), st.text(min_size=300, max_size=2000))
def test_huge_input_is_refused_as_too_long(check: str, value: str) -> None:
    assert "Too long" in (CHECKS[check](value) or "")
