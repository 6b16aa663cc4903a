"""The team's saved recipients: shared by every desk, cards masked, the same rules as a
solo desk's file."""

from __future__ import annotations

import psycopg

from cactus_desk.history.postgres.recipients import PostgresRecipientStore
from cactus_desk.recipients.model import new_recipient
from tests.pg_cluster import SUPERUSER
from tests.pg_databases import PgDatabases


def test_a_recipient_saved_by_one_desk_is_read_by_another_with_its_card_masked(
    pg_databases: PgDatabases, database: str, owner_sql: psycopg.Connection
) -> None:
    url, password = pg_databases.url(database), pg_databases.cluster.password
    desk_a = PostgresRecipientStore(url, password=password)
    desk_b = PostgresRecipientStore(url, password=password)
    desk_a.save(
        new_recipient("Alice card", "card", "RUB", "alice", {"card_number": "4242424242424242"})
    )
    desk_a.save(new_recipient("Bob", "sbp", "RUB", "bob", {"phone_number": "79990000001"}))
    desk_a.save(new_recipient("bob", "sbp", "RUB", "bob2", {"phone_number": "79990000002"}))
    alice, bob = desk_b.all()
    assert alice.fields["card_number"] == "424242******4242" and alice.card_last4 == "4242"
    assert bob.site_login == "bob2"
    stored = owner_sql.execute("SELECT fields, saved_by FROM saved_recipients").fetchall()
    assert all("4242424242424242" not in fields for fields, _ in stored)
    assert {who for _, who in stored} == {SUPERUSER}  # the database says who, not the desk
    assert desk_b.remove("ALICE CARD") is True
    assert [r.label for r in desk_a.all()] == ["bob"]
