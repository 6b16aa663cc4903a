"""A team with an approval policy: logins by name, dict-row connections, a held payout."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from cactus_desk.history.postgres import approvals, team
from cactus_desk.payouts.payout import Payout, PayoutTarget
from cactus_desk.profiles import Profile
from tests.history.postgres.team_fixtures import Team

PROFILE_ID = "shop1"
APPROVE_AT = 100_000  # 1 000.00 RUB
SECOND_AT = 1_000_000  # 10 000.00 RUB


@dataclass
class ApprovalTeam:
    """``team_db`` with a policy on (PROFILE_ID, RUB) and helpers to act as each login."""

    team: Team
    conns: list[psycopg.Connection[Any]] = field(default_factory=list)

    def add(self, name: str, *roles: str) -> str:
        """A login ``<db>_<name>`` holding the team roles ``roles``; its name."""
        login = f"{self.team.database}_{name}"
        password = secrets.token_urlsafe(12)
        with team.team_connection(self.team.url(), self.team.owner_password) as conn:
            team.add_user(conn, login, roles[0], password)
            for extra in roles[1:]:
                conn.execute(
                    sql.SQL("GRANT {} TO {}").format(
                        sql.Identifier(f"cactus_{extra}"), sql.Identifier(login)
                    )
                )
        self.team.passwords[login] = password
        return login

    def conn(self, login: str | None = None) -> psycopg.Connection[Any]:
        """An autocommit dict-row connection as ``login`` (the owner when None)."""
        password = self.team.owner_password if login is None else self.team.passwords[login]
        conn = psycopg.connect(
            self.team.url(login), password=password, autocommit=True, row_factory=dict_row
        )
        self.conns.append(conn)
        return conn

    def close(self) -> None:
        for conn in self.conns:
            conn.close()


def profile(base_url: str = "https://cactus.example", merchant: str = "m_demo") -> Profile:
    """The team's profile the policy covers."""
    return Profile(
        id=PROFILE_ID,
        name="Shop",
        base_url=base_url,
        merchant_id=merchant,
        site_id=7,
        environment="sandbox",
    )


def payout(request_id: str, amount_minor: int, chosen: Profile | None = None) -> Payout:
    """An SBP payout (nothing in it is masked) through ``chosen`` (default: ``profile()``)."""
    return Payout(
        PayoutTarget.of(chosen or profile()),
        request_id,
        "alice",
        "sbp",
        "RUB",
        amount_minor,
        {"phone_number": "79990001122", "phone_holder": "Ivan Petrov"},
    )


def submit(conn: psycopg.Connection[Any], held: Payout) -> int:
    """Submit ``held`` for approval as ``conn``'s login; the request's id."""
    return approvals.submit(
        conn,
        held.target.profile_name,
        held.wire_body(),
        held.target.profile_id,
        held.target.environment,
    )


@pytest.fixture
def approval_team(team_db: Team) -> Iterator[ApprovalTeam]:
    """``team_db`` with the policy: one approval from 1 000.00 RUB, two from 10 000.00."""
    made = ApprovalTeam(team_db)
    approvals.set_policy(made.conn(), PROFILE_ID, "RUB", APPROVE_AT, SECOND_AT, 72)
    yield made
    made.close()
