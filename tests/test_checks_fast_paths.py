"""The quick forms of the field and amount checks give the same answers as the long forms."""

from __future__ import annotations

import re
import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cactus_desk import money
from cactus_desk.checks import _BIDI_CONTROLS, _unsafe_character
from cactus_desk.masking import scrub_card_numbers


def test_the_control_character_class_is_exactly_the_unicode_categories() -> None:
    for point in range(sys.maxunicode + 1):
        ch = chr(point)
        unsafe = unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") or ch in _BIDI_CONTROLS
        assert (_unsafe_character(f"ab{ch}c") is not None) is unsafe, hex(point)


def _long_way(text: str, code: str) -> int | str:
    try:
        return money.parse_amount(text, code)
    except money.AmountError as exc:
        return exc.message


@pytest.mark.parametrize("code", ["RUB", "VND", "USDT", "IDR"])
@given(text=st.text(alphabet="0123456789.", max_size=22))
def test_plain_amounts_parse_as_the_full_parser_parses_them(code: str, text: str) -> None:
    quick = _long_way(text, code)
    plain = money._PLAIN_AMOUNT
    money._PLAIN_AMOUNT = re.compile(r"(?!)()()")  # never matches: every text the long way
    try:
        assert _long_way(text, code) == quick
    finally:
        money._PLAIN_AMOUNT = plain


@given(st.text(alphabet="0123456789 -./x٣", max_size=40))
def test_masking_skips_only_text_too_short_for_a_card(text: str) -> None:
    masked = scrub_card_numbers(text)
    if sum(ch.isdecimal() for ch in text) < 12:
        assert masked == text
    assert scrub_card_numbers(masked) == masked
