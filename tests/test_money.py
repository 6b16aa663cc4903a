"""Currencies and amounts: what a person types becomes exact integer minor units, or a message."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cactus_desk.money import (
    MAX_MINOR,
    AmountError,
    Currency,
    UnknownCurrencyError,
    currencies,
    currency,
    format_major,
    parse_amount,
    to_major,
)


def test_the_gateway_currencies_in_order_with_iso_exponents() -> None:
    table = currencies()
    assert list(table) == ["USD", "EUR", "RUB", "UAH", "USDT", "IDR", "AZN", "VND"]
    assert {code: cur.exponent for code, cur in table.items()} == {
        "USD": 2,
        "EUR": 2,
        "RUB": 2,
        "UAH": 2,
        "USDT": 2,
        "IDR": 2,
        "AZN": 2,
        "VND": 0,
    }
    assert all(cur.name for cur in table.values())
    assert currency("AZN") == Currency("AZN", 2, "Azerbaijani manat")


def test_unknown_currency_is_a_value_error() -> None:
    with pytest.raises(UnknownCurrencyError, match="KZT"):
        currency("KZT")
    with pytest.raises(ValueError):
        parse_amount("10", "KZT")


@pytest.mark.parametrize(
    ("text", "code", "minor"),
    [
        ("1500.50", "USD", 150050),
        ("1500,50", "EUR", 150050),
        ("1 500,50", "RUB", 150050),
        ("1,500.50", "USD", 150050),
        ("1.500,50", "EUR", 150050),
        ("1\u00a0500.50", "UAH", 150050),
        ("1\u202f500,5", "UAH", 150050),
        ("1\u2009500", "USD", 150000),
        ("1,500,000", "USD", 150000000),
        ("1.500.000,25", "EUR", 150000025),
        ("  42 ", "USD", 4200),
        ("0.01", "USDT", 1),
        ("15000", "IDR", 1500000),
        ("1500", "VND", 1500),
        ("1.500.000", "VND", 1500000),
        ("1,500", "VND", 1500),
        ("90071992547409.92", "USD", MAX_MINOR),
    ],
)
def test_parses_what_people_type(text: str, code: str, minor: int) -> None:
    assert parse_amount(text, code) == minor


def test_accepts_a_currency_object() -> None:
    assert parse_amount("2.5", currency("AZN")) == 250


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        ("", "USD", "Enter an amount"),
        ("   ", "USD", "Enter an amount"),
        ("0", "USD", "more than zero"),
        ("0.00", "USD", "more than zero"),
        ("-5", "USD", "more than zero"),
        ("\u22125", "USD", "more than zero"),
        ("+5", "USD", "without a + sign"),
        ("abc", "USD", "Enter a number"),
        ("12abc", "USD", "Enter a number"),
        ("$12", "USD", "Enter a number"),
        ("\u0661\u0662", "USD", "Enter a number"),
        ("NaN", "USD", "not a number"),
        ("Infinity", "USD", "not a number"),
        ("-inf", "USD", "more than zero"),
        ("1e5", "USD", "exponent"),
        ("1.5E3", "USD", "exponent"),
        ("1.505", "USD", "ambiguous"),
        ("10.505", "USD", "ambiguous"),
        ("1.5055", "USD", "at most 2 decimals"),
        ("1 500,505", "USD", "at most 2 decimals"),
        ("0,500", "USD", "at most 2 decimals"),
        ("1.5", "VND", "no minor units"),
        ("15 00", "USD", "grouping"),
        ("1,50,000.00", "USD", "grouping"),
        ("1 500,000.00", "USD", "grouping"),
        ("1.500.00", "USD", "grouping"),
        ("1.2.3,4,5", "USD", "one decimal separator"),
        (".5", "USD", "Enter a number"),
        ("5.", "USD", "Enter a number"),
        ("9007199254740993", "VND", "too large"),
        ("90071992547409.93", "USD", "too large"),
        ("9" * 40, "USD", "too large"),
        ("1" * 65, "USD", "too long"),
    ],
)
def test_refuses_with_a_clear_message(text: str, code: str, message: str) -> None:
    with pytest.raises(AmountError) as caught:
        parse_amount(text, code)
    assert message in caught.value.message
    assert str(caught.value) == caught.value.message


def test_a_single_separator_before_three_digits_is_ambiguous() -> None:
    with pytest.raises(AmountError) as caught:
        parse_amount("1,500", "USD")
    assert caught.value.message == '"1,500" is ambiguous: write 1500 or 1.50.'
    with pytest.raises(AmountError, match="write 1234 for the whole number"):
        parse_amount("1,234", "USD")


def test_to_major_is_exact_decimal() -> None:
    assert to_major(150050, "USD") == Decimal("1500.50")
    assert str(to_major(150050, "USD")) == "1500.50"
    assert to_major(1500, "VND") == Decimal(1500)
    assert to_major(1, "USDT") == Decimal("0.01")


@pytest.mark.parametrize(
    ("minor", "code", "grouping", "text"),
    [
        (150050, "USD", True, "1 500.50"),
        (150050, "USD", False, "1500.50"),
        (5, "EUR", True, "0.05"),
        (100, "RUB", True, "1.00"),
        (123456789, "AZN", True, "1 234 567.89"),
        (1500000, "VND", True, "1 500 000"),
        (999, "VND", True, "999"),
        (-150050, "USD", True, "-1 500.50"),
    ],
)
def test_format_major(minor: int, code: str, grouping: bool, text: str) -> None:
    assert format_major(minor, code, grouping=grouping) == text


@given(st.integers(min_value=1, max_value=MAX_MINOR), st.sampled_from(list(currencies())))
def test_formatted_amounts_parse_back(minor: int, code: str) -> None:
    assert parse_amount(format_major(minor, code), code) == minor
    assert parse_amount(format_major(minor, code, grouping=False), code) == minor


_AMOUNTISH = st.text(alphabet="0123456789 .,-+eE\u00a0\u202f\u2009naifINF", max_size=30)


@given(st.one_of(st.text(max_size=200), _AMOUNTISH), st.sampled_from(list(currencies())))
def test_any_text_is_an_amount_or_an_amount_error(text: str, code: str) -> None:
    try:
        minor = parse_amount(text, code)
    except AmountError as exc:
        assert exc.message
    else:
        assert isinstance(minor, int)
        assert 0 < minor <= MAX_MINOR


def test_huge_input_is_refused_quickly() -> None:
    with pytest.raises(AmountError, match="too long"):
        parse_amount("1" * 1_000_000, "USD")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1O00", "“O” is a letter, not the digit 0"),
        ("1l00", "“l” is a letter, not the digit 1"),
        ("1e3", "exponent"),
        ("1.2e3", "exponent"),
        ("12#50", "“#” cannot be part of an amount"),
        ("100 EUR", "in EUR; this payout is in USD"),
    ],
)
def test_a_stray_character_is_named_not_dropped(text: str, message: str) -> None:
    with pytest.raises(AmountError) as caught:
        parse_amount(text, "USD")
    assert message in caught.value.message


@pytest.mark.parametrize("text", ["1 500.50 USD", "usd 1500.50", "1500.50\u00a0USD"])
def test_the_payout_currency_code_beside_the_amount_is_read(text: str) -> None:
    assert parse_amount(text, "USD") == 150050
