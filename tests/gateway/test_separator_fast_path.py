"""``check_separators``'s quick scan, and the payout model's, agree with the field-naming walk."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from cactus_desk.gateway.models import PayoutRequest
from cactus_desk.gateway.signature import SIGNATURE_KEY, SeparatorError, check_separators


def _walk(payload: Mapping[str, Any]) -> str | None:
    """The field the plain walk names (the rule as first written), or None."""
    stack: list[tuple[str, Any]] = [(str(key), value) for key, value in payload.items()]
    while stack:
        name, value = stack.pop()
        if ";" in name:
            return name
        if isinstance(value, Mapping):
            stack.extend((f"{name}.{key}", item) for key, item in value.items())
        elif isinstance(value, list | tuple):
            stack.extend((name, item) for item in value)
        elif name != SIGNATURE_KEY and ";" in str(value):
            return name
    return None


_text = st.text(alphabet="ab;:.", max_size=4)
_scalar = st.one_of(_text, st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False))
_value = st.recursive(
    _scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(_text, inner, max_size=3),
    ),
    max_leaves=8,
)
_keys = st.one_of(_text, st.sampled_from([SIGNATURE_KEY, "amount", "additional_fields"]))


@given(st.dictionaries(_keys, _value, max_size=5))
def test_the_quick_scan_refuses_exactly_what_the_walk_refuses(payload: dict[str, Any]) -> None:
    expected = _walk(payload)
    try:
        check_separators(payload)
    except SeparatorError as exc:
        assert exc.field == expected
    else:
        assert expected is None


def test_a_signature_is_exempt_but_a_separator_elsewhere_is_named() -> None:
    check_separators({SIGNATURE_KEY: "a;b", "amount": 1, "tags": [SIGNATURE_KEY]})
    try:
        check_separators({"additional_fields": {"card_holder": "Ivan;amount:1"}})
    except SeparatorError as exc:
        assert exc.field == "additional_fields.card_holder"
    else:
        raise AssertionError("a separator in a field was not refused")


_word = st.sampled_from(["a", "ab"]) | st.text(alphabet="ab;", min_size=1, max_size=3)


@given(
    st.fixed_dictionaries(
        {
            "merchant_id": _word,
            "site_login": _word,
            "request_id": _word,
            "currency": _word,
            "method": _word,
            "additional_fields": st.dictionaries(_word, st.text(alphabet="ab;", max_size=3)),
        }
    )
)
def test_the_payout_model_refuses_exactly_the_bodies_the_walk_refuses(
    texts: dict[str, Any],
) -> None:
    """The model's one test over all its text refuses exactly what the walk refuses."""
    body = {**texts, "site_id": 7, "amount": 100}
    try:
        PayoutRequest.model_validate(body)
    except ValidationError as exc:
        assert _walk(body) is not None
        assert "';'" in str(exc)
    else:
        assert _walk(body) is None
