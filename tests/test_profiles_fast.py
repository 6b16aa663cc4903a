"""The start's reading of the saved profiles without pydantic: equal to the store's, or none."""

from __future__ import annotations

import copy
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from cactus_desk import profiles_fast
from cactus_desk.profiles import FILE_VERSION, MAX_SITE_ID, PROFILES_FILE, Profile, ProfileStore
from cactus_desk.profiles_fast import ProfileSnapshot, read_profiles_fast


def _saved(data: Path) -> list[dict[str, Any]]:
    return [profile.model_dump() for profile in ProfileStore(data).all()]


def _fast(data: Path) -> list[dict[str, Any]] | None:
    read = read_profiles_fast(data)
    return None if read is None else [asdict(snapshot) for snapshot in read]


def _store_two(data: Path) -> None:
    store = ProfileStore(data)
    store.add(
        Profile(name="zeta shop", base_url="https://pay.example.com", merchant_id="m", site_id=7)
    )
    store.add(
        Profile(
            name="  Acme  ",
            base_url="https://pay.example.com/api/",
            merchant_id=" m_2 ",
            site_id=MAX_SITE_ID,
            environment="sandbox",
            extensions=["wise", "PIX", "wise"],
            ca_bundle="  /etc/ssl/acme.pem ",
            read_timeout=30,
            decimals={"idr": 2},
            units_confirmed={"VND": 0},
        )
    )


def test_the_constants_match_the_store() -> None:
    assert profiles_fast.PROFILES_FILE == PROFILES_FILE
    assert profiles_fast.FILE_VERSION == FILE_VERSION
    assert profiles_fast.MAX_SITE_ID == MAX_SITE_ID


def test_plain_profiles_read_equal_to_the_store_sorted_by_name(tmp_path: Path) -> None:
    _store_two(tmp_path)
    assert _fast(tmp_path) == _saved(tmp_path)
    [acme, zeta] = read_profiles_fast(tmp_path) or []
    assert (acme.name, zeta.name) == ("Acme", "zeta shop")
    real = ProfileStore(tmp_path).all()[0]
    for code in ("IDR", "USD", "VND", "RUB"):
        assert acme.currency(code) == real.currency(code)
        assert acme.needs_units_confirmation(code) == real.needs_units_confirmation(code)
    assert (acme.is_live, zeta.is_live) == (False, True)


def test_no_file_is_no_profile(tmp_path: Path) -> None:
    assert read_profiles_fast(tmp_path) == [] == ProfileStore(tmp_path).all()


def _variants() -> list[Any]:
    """Changes to one saved entry: the fast reading must agree with the store or step aside."""
    return [
        lambda e: e.update(site_id="7"),  # pydantic converts it: not for the fast reading
        lambda e: e.update(site_id=True),
        lambda e: e.update(site_id=0),
        lambda e: e.update(site_id=MAX_SITE_ID + 1),
        lambda e: e.update(read_timeout="30"),
        lambda e: e.update(read_timeout=4.9),
        lambda e: e.update(read_timeout=600),
        lambda e: e.update(name=" \u202eAcme"),
        lambda e: e.update(name=""),
        lambda e: e.update(name="x" * 65),
        lambda e: e.update(name=5),
        lambda e: e.update(merchant_id="m;1"),
        lambda e: e.update(merchant_id="m\n"),
        lambda e: e.update(base_url="ftp://pay.example.com"),
        lambda e: e.update(base_url="https://pay.example.com?x=1"),
        lambda e: e.update(environment="staging"),
        lambda e: e.pop("environment"),
        lambda e: e.update(extensions=["qiwi"]),
        lambda e: e.update(extensions=" wise "),
        lambda e: e.update(extensions=[" wise", "wise "]),
        lambda e: e.update(ca_bundle="   "),
        lambda e: e.update(ca_bundle=None),
        lambda e: e.update(decimals={"KZT": 2}),
        lambda e: e.update(decimals={" usd ": 3}),
        lambda e: e.update(decimals={"USD": 9}),
        lambda e: e.update(decimals={"USD": 2.0}),
        lambda e: e.update(units_confirmed=[]),
        lambda e: e.update(id="has space"),
        lambda e: e.pop("id"),
        lambda e: e.update(colour="green"),  # a key the store ignores
        lambda e: e.pop("read_timeout"),
    ]


@pytest.mark.parametrize("index", range(len(_variants())))
def test_a_changed_entry_reads_as_the_store_reads_it_or_goes_to_the_store(
    tmp_path: Path, index: int
) -> None:
    _store_two(tmp_path)
    path = tmp_path / PROFILES_FILE
    document = json.loads(path.read_text(encoding="utf-8"))
    changed = copy.deepcopy(document)
    _variants()[index](changed["profiles"][0])
    path.write_text(json.dumps(changed), encoding="utf-8")
    fast = _fast(tmp_path)
    if fast is not None:  # what it accepts, the store accepts, with the very same values
        assert fast == _saved(tmp_path)


@pytest.mark.parametrize(
    "text",
    ["{broken", "[]", '{"profiles": {}}', '{"version": 2, "profiles": []}', '{"x": 1}', "\ud800"],
)
def test_a_damaged_file_is_left_to_the_store(tmp_path: Path, text: str) -> None:
    (tmp_path / PROFILES_FILE).write_text(text, encoding="utf-8", errors="surrogatepass")
    assert read_profiles_fast(tmp_path) is None


def test_the_snapshot_has_every_field_of_a_profile() -> None:
    assert list(ProfileSnapshot.__dataclass_fields__) == list(Profile.model_fields)
