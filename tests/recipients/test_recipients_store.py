"""Saved recipients kept on disk: cards masked with their last four, the file private."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from cactus_desk.recipients.model import (
    RecipientError,
    SavedRecipient,
    card_mismatch,
    new_recipient,
)
from cactus_desk.recipients.store import RecipientStore, RecipientStoreError

CARD = "4242 4242 4242 4242"


def test_a_card_recipient_keeps_only_the_masked_number_and_its_last_four(tmp_path: Path) -> None:
    store = RecipientStore(tmp_path)
    store.save(new_recipient("Alice card", "card", "RUB", "alice", {"card_number": CARD}))
    text = store.path.read_text(encoding="utf-8")
    assert "4242424242424242" not in text and CARD not in text
    [saved] = store.all()
    assert saved.fields["card_number"] == "424242******4242"
    assert saved.card_last4 == "4242"
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_a_full_number_written_into_the_file_by_hand_is_masked_when_read(tmp_path: Path) -> None:
    entry = {
        "label": "Hand-made",
        "method": "card",
        "currency": "RUB",
        "site_login": "bob",
        "fields": {"card_number": "4242424242424242"},
        "card_last4": None,
    }
    (tmp_path / "recipients.json").write_text(json.dumps({"version": 1, "recipients": [entry]}))
    [saved] = RecipientStore(tmp_path).all()
    assert saved.fields["card_number"] == "424242******4242"
    assert saved.card_last4 == "4242"


def test_the_same_label_replaces_and_remove_takes_it_away(tmp_path: Path) -> None:
    store = RecipientStore(tmp_path)
    store.save(new_recipient("Bob", "sbp", "RUB", "bob", {"phone_number": "79990000001"}))
    store.save(new_recipient("bob", "sbp", "RUB", "bob2", {"phone_number": "79990000002"}))
    [saved] = store.all()
    assert saved.site_login == "bob2"
    assert store.remove("BOB") is True
    assert store.all() == []
    assert store.remove("bob") is False


def test_a_damaged_file_is_a_plain_error_and_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "recipients.json"
    path.write_text("{not json")
    with pytest.raises(RecipientStoreError, match="damaged"):
        RecipientStore(tmp_path).all()
    assert path.read_text() == "{not json"


@pytest.mark.parametrize("label", ["", "   ", "x" * 81, "tab\there"])
def test_a_bad_label_is_refused_with_a_message(label: str) -> None:
    with pytest.raises(RecipientError):
        new_recipient(label, "sbp", "RUB", "bob", {})


def test_a_card_number_must_end_in_the_saved_last_four() -> None:
    assert card_mismatch("4242", "4242 4242 4242 4242") is None
    assert card_mismatch("4242", "") is None
    message = card_mismatch("4242", "5555 5555 5555 4444")
    assert message is not None and "4242" in message and "4444" in message


def test_from_json_refuses_a_malformed_entry() -> None:
    with pytest.raises(RecipientError):
        SavedRecipient.from_json({"label": "x", "method": "card", "currency": "RUB"})
