"""Issue 11 item 4: a profile's decimals per currency, from the data file, the profile and the
command line, used wherever an amount is read or written for that profile."""

from __future__ import annotations

import io
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from cactus_desk import cli
from cactus_desk.gateway.models import BalanceResponse, PayoutRequest
from cactus_desk.logs import stop_logging
from cactus_desk.money import currencies, currency, format_major
from cactus_desk.payouts.draft import PayoutDraft, validate_draft
from cactus_desk.payouts.payout import PayoutTarget, build_payout
from cactus_desk.profiles import Profile, ProfileStore
from cactus_desk.ui.payout.balance import summarise

BASE = {"name": "Acme", "base_url": "https://gw.example.com", "merchant_id": "m", "site_id": 3}


def build_request(
    draft: PayoutDraft,
    *,
    merchant_id: str,
    site_id: int,
    extensions: list[str] | None = None,
    decimals: dict[str, int] | None = None,
) -> PayoutRequest:
    """What the console sends for ``draft``: the wire model of the payout built from it."""
    target = PayoutTarget("p-test", "Test", "sandbox", merchant_id, site_id)
    payout = build_payout(draft, target, extensions=extensions, decimals=decimals)
    return payout.wire_request()


def test_the_undocumented_currencies_are_marked_in_the_data() -> None:
    undocumented = {code for code, cur in currencies().items() if not cur.documented}
    assert undocumented == {"IDR", "USDT", "VND"}


def test_a_profile_overrides_a_currency_s_decimals_within_0_to_8() -> None:
    profile = Profile(**BASE, decimals={"idr": 0, "USDT": 6})
    assert profile.decimals == {"IDR": 0, "USDT": 6}
    assert profile.currency("IDR").exponent == 0
    assert profile.currency("USDT").exponent == 6
    assert profile.currency("USD") == currency("USD")
    for bad in ({"IDR": 9}, {"IDR": -1}, {"IDR": True}, {"IDR": "2"}, {"XXX": 2}, ["IDR"]):
        with pytest.raises(ValidationError):
            Profile(**BASE, decimals=bad)


def test_the_decimals_survive_a_save_and_a_reload(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path)
    saved = store.add(Profile(**BASE, decimals={"IDR": 0}, units_confirmed={"IDR": 0}))
    again = store.get_by_id(saved.id)
    assert (again.decimals, again.units_confirmed) == ({"IDR": 0}, {"IDR": 0})


def test_only_a_live_profile_asks_once_per_undocumented_currency_and_number() -> None:
    live = Profile(**BASE)
    assert live.needs_units_confirmation("IDR")
    assert not live.needs_units_confirmation("USD")  # documented
    assert not Profile(**BASE, environment="sandbox").needs_units_confirmation("IDR")
    confirmed = Profile(**BASE, units_confirmed={"IDR": 2})
    assert not confirmed.needs_units_confirmation("IDR")
    # Changing the decimals asks again: what was confirmed is a number on the wire.
    changed = Profile(**BASE, units_confirmed={"IDR": 2}, decimals={"IDR": 0})
    assert changed.needs_units_confirmation("IDR")


def _draft(amount: str) -> PayoutDraft:
    return PayoutDraft(
        profile_id="p",
        site_login="alice",
        currency="IDR",
        method="card",
        amount_text=amount,
        fields={"card_number": "4111111111111111", "card_holder": "Ivan Petrov"},
        request_id="cd-1",
    )


def test_the_request_carries_the_integer_of_the_profile_s_decimals() -> None:
    default = build_request(_draft("15000"), merchant_id="m", site_id=3)
    assert default.amount == 1_500_000
    whole = build_request(_draft("15000"), merchant_id="m", site_id=3, decimals={"IDR": 0})
    assert whole.amount == 15_000
    errors = validate_draft(_draft("15000.50"), extensions=(), decimals={"IDR": 0})
    assert "no minor units" in errors["amount"]


def test_the_balance_is_read_with_the_profile_s_decimals() -> None:
    response = BalanceResponse.model_validate(
        {"balances": [{"currency": "IDR", "amount": "15000.5", "available": "15000.5"}]}
    )
    (usual,) = summarise(response)
    assert usual.available_minor == 1_500_050
    (whole,) = summarise(response, {"IDR": 0})
    assert whole.available_minor == 15_000  # rounded down, never overstated
    assert whole.available_major == Decimal("15000.5")
    assert format_major(whole.available_minor, Profile(**BASE, decimals={"IDR": 0}).currency("IDR"))


def _cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO("cli-salt-7d1e\n"))
    try:
        code = cli.main(list(argv))
    finally:
        stop_logging()
    out, err = capsys.readouterr()
    return code, out, err


def test_the_command_line_sets_and_resets_a_profile_s_decimals(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], data_home: Path
) -> None:
    add = ["profile", "add", "Acme live", "--base-url", "https://gw.example.com"]
    add += ["--merchant-id", "acme", "--site-id", "21", "--salt-stdin", "--decimals", "IDR=0"]
    code, _, err = _cli(monkeypatch, capsys, *add)
    assert (code, err) == (0, "")
    assert ProfileStore(data_home).get("Acme live").decimals == {"IDR": 0}

    code, out, _ = _cli(
        monkeypatch, capsys, "profile", "update", "Acme live", "--decimals", "usdt=6"
    )
    assert code == 0 and "IDR=0, USDT=6" in out
    code, _, _ = _cli(
        monkeypatch, capsys, "profile", "update", "acme live", "--decimals", "IDR=default"
    )
    assert code == 0
    assert ProfileStore(data_home).get("Acme live").decimals == {"USDT": 6}

    code, _, err = _cli(
        monkeypatch, capsys, "profile", "update", "Acme live", "--decimals", "IDR=9"
    )
    assert code == 2 and "--decimals: IDR: the decimals must be 0-8" in err
    code, _, err = _cli(
        monkeypatch, capsys, "profile", "update", "Acme live", "--decimals", "XYZ=2"
    )
    assert code == 2 and "'XYZ' is not a currency" in err
    code, _, err = _cli(monkeypatch, capsys, "profile", "update", "Acme live", "--decimals", "IDR")
    assert code == 2 and "CODE=DECIMALS" in err
    assert ProfileStore(data_home).get("Acme live").decimals == {"USDT": 6}


def test_the_csv_export_reads_amounts_with_the_profile_s_decimals(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], data_home: Path
) -> None:
    from dataclasses import replace

    from cactus_desk.history import open_history
    from tests.payouts.conftest import BASE_ATTEMPT

    add = ["profile", "add", "Acme live", "--base-url", "https://gw.example.com"]
    add += ["--merchant-id", "acme", "--site-id", "21", "--salt-stdin", "--decimals", "IDR=0"]
    assert _cli(monkeypatch, capsys, *add)[0] == 0
    profile = ProfileStore(data_home).get("Acme live")
    with open_history(data_home) as store:
        for request_id, profile_id in (("po-zero", profile.id), ("po-usual", "p-other")):
            store.create_attempt(
                replace(
                    BASE_ATTEMPT,
                    request_id=request_id,
                    profile_id=profile_id,
                    currency="IDR",
                    amount_minor=150_000,
                )
            )

    code, out, _ = _cli(monkeypatch, capsys, "history", "export")
    assert code == 0
    rows = {line.split(",")[7]: line for line in out.splitlines()[1:]}
    # 150000 on the wire is 150000 rupiah for this profile, 1500.00 for one without the override.
    assert ",150000,150000," in rows["po-zero"]
    assert ",1500.00,150000," in rows["po-usual"]
