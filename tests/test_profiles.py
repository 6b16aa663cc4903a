"""Profiles: validated settings in a private JSON file that never holds the salt."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from cactus_desk.profiles import (
    PROFILES_FILE,
    DuplicateProfileError,
    Profile,
    ProfileConflictError,
    ProfileNotFoundError,
    ProfileStore,
    ProfileStoreError,
    describe_validation_error,
)
from cactus_desk.secrets import SecretStore


def make_profile(**overrides: Any) -> Profile:
    values: dict[str, Any] = {
        "name": "Acme live",
        "base_url": "https://gateway.example.com/",
        "merchant_id": "acme",
        "site_id": 21,
    }
    values.update(overrides)
    return Profile(**values)


def error_text(**overrides: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        make_profile(**overrides)
    return describe_validation_error(caught.value)


def test_a_profile_has_sensible_defaults() -> None:
    profile = make_profile(name="  Acme live  ")
    assert profile.name == "Acme live"
    assert profile.base_url == "https://gateway.example.com"
    assert len(profile.id) == 32 and profile.id != make_profile().id
    assert profile.environment == "live" and profile.is_live
    assert profile.extensions == [] and profile.ca_bundle is None
    assert profile.read_timeout == 180.0
    assert not make_profile(environment="sandbox").is_live


def test_plain_http_is_only_allowed_to_this_computer() -> None:
    assert "use https:// for gateway.example.com" in error_text(
        base_url="http://gateway.example.com"
    )
    assert make_profile(base_url="http://127.0.0.1:8080").base_url == "http://127.0.0.1:8080"
    assert error_text(base_url="gateway.example.com").startswith("base_url: ")


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"name": "   "}, "name: The profile name is empty"),
        ({"name": "x" * 65}, "name: The profile name is longer than 64 characters"),
        ({"name": "bad\nname"}, "name: The profile name must not contain control characters"),
        ({"merchant_id": " "}, "merchant_id: The merchant ID is empty"),
        ({"site_id": 0}, "site_id: Input should be greater than 0"),
        ({"environment": "prod"}, "environment: Input should be 'live' or 'sandbox'"),
        ({"read_timeout": 1}, "read_timeout: Input should be greater than or equal to 5"),
        ({"read_timeout": 601}, "read_timeout: Input should be less than or equal to 600"),
    ],
)
def test_bad_values_are_reported_at_their_field(overrides: dict[str, Any], expected: str) -> None:
    assert error_text(**overrides) == expected


def test_extensions_must_be_the_catalogs_extension_methods() -> None:
    assert make_profile(extensions=["skrill", " wise", "skrill"]).extensions == ["skrill", "wise"]
    message = error_text(extensions=["card"])  # documented: always on, not an extension
    assert message.startswith("extensions: 'card' is not an extension method")
    assert "skrill" in message
    assert "'venmo' is not an extension method" in error_text(extensions=["venmo"])


def test_profiles_round_trip_through_the_file(data_home: Path) -> None:
    store = ProfileStore(data_home)
    assert store.all() == []
    assert not data_home.exists()  # nothing is written until there is something to keep
    beta = store.add(make_profile(name="beta", extensions=["skrill"], read_timeout=30))
    alpha = store.add(make_profile(name="Alpha", environment="sandbox"))

    reopened = ProfileStore(data_home)
    assert [p.name for p in reopened.all()] == ["Alpha", "beta"]
    assert reopened.get("beta") == beta
    assert reopened.get("ALPHA") == alpha
    assert reopened.get_by_id(beta.id) == beta


def test_the_file_is_private_and_never_holds_the_salt(data_home: Path) -> None:
    salt = "very-secret-site-salt-9f8e"
    profile = make_profile()
    SecretStore().set_salt(profile.id, salt)
    ProfileStore(data_home).add(profile)
    path = data_home / PROFILES_FILE
    raw = path.read_bytes()
    assert salt.encode() not in raw and b"salt" not in raw
    assert json.loads(raw)["profiles"][0]["merchant_id"] == "acme"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(data_home.stat().st_mode) == 0o700
    assert sorted(os.listdir(data_home)) == [PROFILES_FILE]  # no temp file left behind


def test_duplicate_names_are_refused_ignoring_case(data_home: Path) -> None:
    store = ProfileStore(data_home)
    store.add(make_profile(name="Acme"))
    before = (data_home / PROFILES_FILE).read_bytes()
    with pytest.raises(DuplicateProfileError, match="A profile named 'Acme' already exists"):
        store.add(make_profile(name="acme"))
    assert (data_home / PROFILES_FILE).read_bytes() == before


def test_update_keeps_the_id_so_a_rename_keeps_the_salt(data_home: Path) -> None:
    store = ProfileStore(data_home)
    first = store.add(make_profile(name="First"))
    store.add(make_profile(name="Second"))
    SecretStore().set_salt(first.id, "salt-of-first")

    renamed = store.update(first.model_copy(update={"name": "Renamed", "site_id": 22}))
    assert store.get("Renamed").site_id == 22
    assert SecretStore().get_salt(store.get("Renamed").id) == "salt-of-first"
    with pytest.raises(ProfileNotFoundError):
        store.get("First")
    with pytest.raises(DuplicateProfileError):
        store.update(renamed.model_copy(update={"name": "second"}))
    with pytest.raises(ProfileNotFoundError):
        store.update(make_profile(name="Never saved"))


def test_remove_returns_the_profile_and_unknown_names_are_reported(data_home: Path) -> None:
    store = ProfileStore(data_home)
    kept = store.add(make_profile(name="Kept"))
    gone = store.add(make_profile(name="Gone"))
    assert store.remove("gone") == gone
    assert store.all() == [kept]
    with pytest.raises(ProfileNotFoundError) as caught:
        store.remove("Gone")
    assert str(caught.value) == "There is no profile named 'Gone'"


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        ("{not json", "not valid JSON"),
        ('{"profiles": {}}', "no list of profiles"),
        ('{"profiles": [{"name": "x"}]}', "profile #1: base_url: Field required"),
    ],
)
def test_a_damaged_file_is_reported_and_left_untouched(
    data_home: Path, content: str, detail: str
) -> None:
    data_home.mkdir(parents=True)
    path = data_home / PROFILES_FILE
    path.write_text(content, encoding="utf-8")
    store = ProfileStore(data_home)
    with pytest.raises(ProfileStoreError) as caught:
        store.all()
    assert detail in str(caught.value) and "left untouched" in str(caught.value)
    with pytest.raises(ProfileStoreError):
        store.add(make_profile())
    assert path.read_text(encoding="utf-8") == content


def test_a_failed_save_keeps_the_old_file(data_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ProfileStore(data_home)
    store.add(make_profile(name="Original"))
    before = (data_home / PROFILES_FILE).read_bytes()

    def disk_full(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(ProfileStoreError, match="No space left on device"):
        store.add(make_profile(name="New"))
    assert (data_home / PROFILES_FILE).read_bytes() == before
    assert sorted(os.listdir(data_home)) == [PROFILES_FILE]


def test_a_stale_copy_is_refused_instead_of_overwriting_a_newer_change(data_home: Path) -> None:
    store = ProfileStore(data_home)
    added = store.add(make_profile(decimals={"IDR": 0}))
    assert store.get("Acme live") == added and added.version == 0
    mine, theirs = store.get("Acme live"), ProfileStore(data_home).get("Acme live")
    saved = store.update(mine.model_copy(update={"decimals": {"IDR": 2}}))
    assert saved.version == 1 and store.get("Acme live") == saved

    before = (data_home / PROFILES_FILE).read_bytes()
    with pytest.raises(ProfileConflictError, match="'Acme live' was changed after you opened"):
        store.update(theirs.model_copy(update={"merchant_id": "other"}))
    assert (data_home / PROFILES_FILE).read_bytes() == before
    assert store.update(saved.model_copy(update={"merchant_id": "other"})).version == 2


def test_a_file_from_before_versions_opens_and_updates(data_home: Path) -> None:
    data_home.mkdir(parents=True, exist_ok=True)
    old = make_profile().model_dump(mode="json")
    del old["version"]
    (data_home / PROFILES_FILE).write_text(json.dumps({"version": 1, "profiles": [old]}))
    store = ProfileStore(data_home)
    loaded = store.get("Acme live")
    assert loaded.version == 0
    assert store.update(loaded.model_copy(update={"site_id": 5})).version == 1


def test_profiles_are_read_again_only_when_the_file_changes(
    data_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ProfileStore(data_home)
    store.add(make_profile(name="Alpha"))
    reads: list[Path] = []
    read_text = Path.read_text

    def counted(path: Path, *args: Any, **kwargs: Any) -> str:
        reads.append(path)
        return read_text(path, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", counted)
    first = store.all()
    assert [p.name for p in store.all()] == ["Alpha"] and len(reads) == 1
    first[0].name = "Changed by one caller"  # a copy: no other caller sees it
    assert [p.name for p in store.all()] == ["Alpha"] and len(reads) == 1

    # Another window (another store on the same folder) adds one: this store sees it.
    ProfileStore(data_home).add(make_profile(name="Beta"))
    reads.clear()
    assert [p.name for p in store.all()] == ["Alpha", "Beta"] and len(reads) == 1
    # A change by hand, of the same size, is seen too.
    path = data_home / PROFILES_FILE
    path.write_text(path.read_text(encoding="utf-8").replace("Beta", "Gamm"), encoding="utf-8")
    assert [p.name for p in store.all()] == ["Alpha", "Gamm"]
