"""The method catalog: every method and field from the docs, per-currency fields, wire form."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

import pytest

from cactus_desk.catalog import (
    Catalog,
    CatalogError,
    FieldSpec,
    UnknownMethodError,
    load_catalog,
)
from cactus_desk.checks import check_datetime
from cactus_desk.resources import load_json

DOCUMENTED = [
    "card",
    "sbp",
    "WalletM10",
    "localbanks",
    "binance",
    "cash",
    "MTS",
    "sbp_qr",
    "Emanat",
]
EXTENSIONS = ["skrill", "wise", "papara", "PIX"]

REQUIRED = {
    "card": {"card_number"},
    "sbp": {"phone_number", "phone_holder"},
    "WalletM10": {"phone_number"},
    "localbanks": {"account_number"},
    "binance": set(),
    "cash": {"address", "username", "messenger", "verification_code"},
    "MTS": {"phone_number"},
    "sbp_qr": set(),
    "Emanat": {"phone_number"},
    "skrill": {"skrill_account", "skrill_holder"},
    "wise": {"wise_tag", "wise_holder"},
    "papara": {"papara_account", "papara_holder", "phone_number"},
    "PIX": {"phone_number", "account_holder", "pix_transfer_key"},
}
OPTIONAL = {
    "card": {"card_holder", "bank_name", "bank_option", "expiry date"},
    "sbp": {"bank_name"},
    "localbanks": {"bank_name", "account_holder"},
    "cash": {"asap", "time"},
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def test_every_method_in_data_order(catalog: Catalog) -> None:
    assert [m.wire for m in catalog.methods] == DOCUMENTED + EXTENSIONS
    assert [m.wire for m in catalog.methods if m.documented] == DOCUMENTED
    assert load_catalog() is load_catalog()


@pytest.mark.parametrize("method", DOCUMENTED + EXTENSIONS)
def test_required_and_optional_fields(catalog: Catalog, method: str) -> None:
    spec = catalog.method(method)
    assert {f.wire for f in spec.fields if f.required} == REQUIRED[method]
    assert {f.wire for f in spec.fields if not f.required} == OPTIONAL.get(method, set())
    for field in spec.fields:
        assert field.label and field.example and field.help


@pytest.mark.parametrize("method", DOCUMENTED + EXTENSIONS)
def test_every_example_passes_its_own_check(catalog: Catalog, method: str) -> None:
    spec = catalog.method(method)
    currency = spec.currencies[-1] if method != "card" else "AZN"
    values = {f.wire: f.example for f in catalog.fields_for(spec, currency)}
    for field in catalog.fields_for(spec, currency):
        if field.check == "datetime":
            # The docs' example time has passed: it shows the format, checked as of its day.
            assert check_datetime(field.example, now=datetime(2000, 1, 1)) is None
            values[field.wire] = "2099-05-01 10:22"
    assert catalog.validate_fields(spec, currency, values) == {}


@pytest.mark.parametrize("method", [m for m in DOCUMENTED + EXTENSIONS if REQUIRED[m]])
def test_missing_required_fields_are_named(catalog: Catalog, method: str) -> None:
    spec = catalog.method(method)
    errors = catalog.validate_fields(spec, spec.currencies[0], {})
    assert REQUIRED[method] <= set(errors)
    for wire in REQUIRED[method]:
        assert errors[wire] == f"{spec.field(wire).label} is required."


def test_card_expiry_keeps_the_space_in_its_wire_name(catalog: Catalog) -> None:
    expiry = catalog.method("card").field("expiry date")
    assert expiry.object_name == "field_expiry_date"
    assert expiry.check == "expiry"
    wire = catalog.wire_fields(
        "card", "USD", {"card_number": "4242424242424242", "expiry date": "07/29"}
    )
    assert wire == {"card_number": "4242424242424242", "expiry date": "07/29"}


def test_object_name_replaces_every_non_alphanumeric() -> None:
    field = FieldSpec("a-b.c d", "x", False, "", "text", "")
    assert field.object_name == "field_a_b_c_d"


@pytest.mark.parametrize(
    ("method", "currencies"),
    [
        ("sbp", ("RUB",)),
        ("sbp_qr", ("RUB",)),
        ("MTS", ("RUB",)),
        ("WalletM10", ("AZN",)),
        ("Emanat", ("AZN",)),
        ("binance", ("USDT",)),
    ],
)
def test_methods_pinned_to_one_currency(catalog: Catalog, method: str, currencies: tuple) -> None:
    assert catalog.method(method).currencies == currencies


def test_methods_for_currency_and_extensions(catalog: Catalog) -> None:
    assert [m.wire for m in catalog.methods_for("RUB")] == [
        "card",
        "sbp",
        "localbanks",
        "cash",
        "MTS",
        "sbp_qr",
    ]
    assert [m.wire for m in catalog.methods_for("USDT")] == ["binance"]
    assert [m.wire for m in catalog.methods_for("AZN")] == [
        "card",
        "WalletM10",
        "localbanks",
        "cash",
        "Emanat",
    ]
    usd = [m.wire for m in catalog.methods_for("USD", extensions=["wise", "PIX", "binance"])]
    assert usd == ["card", "localbanks", "cash", "wise", "PIX"]
    assert "skrill" not in [m.wire for m in catalog.methods_for("RUB", extensions=["skrill"])]
    assert catalog.methods_for("KZT") == ()


def test_bank_option_only_for_azn(catalog: Catalog) -> None:
    assert "bank_option" in [f.wire for f in catalog.fields_for("card", "AZN")]
    assert "bank_option" not in [f.wire for f in catalog.fields_for("card", "USD")]
    values = {"card_number": "4242424242424242", "bank_option": "778953337789"}
    assert "bank_option" not in catalog.wire_fields("card", "USD", values)
    assert catalog.wire_fields("card", "AZN", values)["bank_option"] == "778953337789"
    # A field not shown for the currency is not checked either.
    assert catalog.validate_fields("card", "USD", {**values, "bank_option": "\x00"}) == {}


def test_unknown_method(catalog: Catalog) -> None:
    with pytest.raises(UnknownMethodError, match="qiwi"):
        catalog.method("qiwi")
    with pytest.raises(KeyError):
        catalog.fields_for("qiwi", "USD")


def test_currencies_come_from_the_currency_table(catalog: Catalog) -> None:
    assert list(catalog.currencies) == ["USD", "EUR", "RUB", "UAH", "USDT", "IDR", "AZN", "VND"]
    assert catalog.currencies["VND"].exponent == 0


CASH = {
    "address": "Main st 1",
    "username": "@test",
    "messenger": "telegram",
    "verification_code": "123456",
}


def test_cash_needs_asap_or_time(catalog: Catalog) -> None:
    errors = catalog.validate_fields("cash", "USD", CASH)
    assert set(errors) == {"time"}
    assert "time" in errors["time"]
    assert catalog.validate_fields("cash", "USD", {**CASH, "asap": False}).keys() == {"time"}
    assert catalog.validate_fields("cash", "USD", {**CASH, "asap": True}) == {}
    assert catalog.validate_fields("cash", "USD", {**CASH, "asap": "true"}) == {}
    assert catalog.validate_fields("cash", "USD", {**CASH, "time": "2099-05-01 10:22"}) == {}
    assert (
        "has passed"
        in catalog.validate_fields("cash", "USD", {**CASH, "time": "2023-05-01 10:22"})["time"]
    )
    bad_time = catalog.validate_fields("cash", "USD", {**CASH, "time": "2023-02-30 10:22"})
    assert set(bad_time) == {"time"} and "real date" in bad_time["time"]


def test_wire_fields_are_strings(catalog: Catalog) -> None:
    wire = catalog.wire_fields(
        "cash", "RUB", {**CASH, "asap": True, "time": "", "address": "  Main st 1  "}
    )
    assert wire == {**CASH, "asap": "true"}
    assert catalog.wire_fields("cash", "RUB", {**CASH, "asap": False})["asap"] == "false"
    assert all(isinstance(value, str) for value in wire.values())


def test_wire_fields_omit_optional_empties_strip_cards_ignore_extras(catalog: Catalog) -> None:
    values = {
        "card_number": "4242 4242 4242 4242",
        "card_holder": "",
        "bank_name": "   ",
        "expiry date": "",
        "not_a_field": "x",
    }
    assert catalog.validate_fields("card", "RUB", values) == {}
    assert catalog.wire_fields("card", "RUB", values) == {"card_number": "4242424242424242"}


def test_wrong_value_types_get_a_message(catalog: Catalog) -> None:
    errors = catalog.validate_fields("card", "USD", {"card_number": True})
    assert errors == {"card_number": "Enter text."}
    errors = catalog.validate_fields("cash", "USD", {**CASH, "asap": "maybe"})
    assert errors == {"asap": "Choose yes or no."}


def _broken(mutate: Any) -> str:
    data = copy.deepcopy(load_json("catalog.json"))
    mutate(data)
    with pytest.raises(CatalogError) as caught:
        Catalog.from_data(data)
    return str(caught.value)


def test_a_broken_catalog_names_the_file_and_entry() -> None:
    def unknown_check(data: dict) -> None:
        data["methods"][5]["fields"][4]["check"] = "clock"

    message = _broken(unknown_check)
    assert message.startswith("catalog.json: methods.5.fields.4.check ('cash' / 'time')")
    assert "unknown check 'clock'" in message


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["methods"][0].pop("label"), "methods.0.label ('card')"),
        (lambda d: d["methods"][1].update(currencies=["KZT"]), "'sbp'): currency 'KZT'"),
        (lambda d: d["methods"][2].update(wire="card"), "'card'): this method is listed twice"),
        (lambda d: d["methods"][5].update(rules=["asap_or_never"]), "unknown rule"),
        (lambda d: d["methods"][0]["fields"][0].update(required="yes"), "required"),
        (lambda d: d["methods"][0]["fields"].append(d["methods"][0]["fields"][0]), "twice"),
        (lambda d: d["methods"][1]["fields"][0].update(currencies=["USD"]), "lacks"),
        (lambda d: d.update(methods=[]), "methods"),
        # The shape is checked without pydantic, with the messages it gave.
        (
            lambda d: d["methods"][0].update(documented="yes"),
            "methods.0.documented ('card'): Input should be a valid boolean",
        ),
        (
            lambda d: d["methods"][0]["fields"][0].update(kind="number"),
            "methods.0.fields.0.kind ('card' / 'card_number'): Input should be 'text' or 'bool'",
        ),
        (
            lambda d: d["methods"][0]["fields"][0].update(colour="red"),
            "methods.0.fields.0.colour ('card' / 'card_number'): Extra inputs are not permitted",
        ),
        (
            lambda d: d["methods"][0].update(currencies=[]),
            "methods.0.currencies ('card'): List should have at least 1 item after validation",
        ),
        (
            lambda d: d["methods"][0].update(label=""),
            "methods.0.label ('card'): String should have at least 1 character",
        ),
        (lambda d: d["methods"][0].update(rules=[2]), "methods.0.rules.0 ('card'): Input should"),
        (lambda d: d["methods"].append(3), "methods.13: Input should be a valid dictionary"),
    ],
)
def test_broken_catalog_variants(mutate: Any, expected: str) -> None:
    assert expected in _broken(mutate)
