"""The team history's set-up operations, for ``cactus-desk team ...``: no SQL outside here.

Each opens one connection as the store URL's user, with the password given, else the one
saved in the OS keyring for that URL (``team connect``), else libpq's ``PGPASSWORD``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from cactus_desk.history import history_location, open_history
from cactus_desk.history.postgres import team
from cactus_desk.history.postgres.connect import parse_store_url
from cactus_desk.history.postgres.team import TeamSetup, TeamUser, team_connection
from cactus_desk.history.transfer import ImportReport, all_events, records_with_resends
from cactus_desk.history.types import HistoryOpenError
from cactus_desk.secrets import KeyringError, get_store_password

__all__ = ["ImportReport", "TeamSetup", "TeamUser"]


def store_password(url: str) -> str | None:
    """The password saved in the OS keyring for ``url``, or None. Raises HistoryOpenError."""
    try:
        target = parse_store_url(url)
    except ValueError as exc:
        raise HistoryOpenError(str(exc)) from None
    try:
        return get_store_password(target.account)
    except KeyringError as exc:
        raise HistoryOpenError(f"The team history's password cannot be read: {exc}") from None


@contextlib.contextmanager
def _connection(url: str, password: str | None) -> Iterator[team.Conn]:
    with team_connection(url, store_password(url) if password is None else password) as conn:
        yield conn


def init_team(url: str, *, password: str | None = None) -> TeamSetup:
    """Create or bring up to date the schema, the group roles and their privileges."""
    with _connection(url, password) as conn:
        return team.init_team(conn)


def add_user(
    url: str, login: str, role: str, new_password: str, *, password: str | None = None
) -> None:
    """Create the login ``login`` (``new_password``) with the team role ``role``."""
    with _connection(url, password) as conn:
        team.add_user(conn, login, role, new_password)


def list_users(url: str, *, password: str | None = None) -> list[TeamUser]:
    """The team's logins and their roles."""
    with _connection(url, password) as conn:
        return team.list_users(conn)


def import_solo_history(url: str, from_dir: Path, *, password: str | None = None) -> ImportReport:
    """Copy the history of the data folder ``from_dir`` into the team history at ``url``.

    Raises ``HistoryOpenError`` when ``from_dir`` holds no history or either side cannot be
    opened; see ``postgres.team.import_history`` for the rest.
    """
    # Checked in this order so that naming a wrong folder creates nothing.
    if not from_dir.is_dir() or not history_location(from_dir).is_file():
        raise HistoryOpenError(f"There is no Cactus Desk history in {from_dir}.")
    with _connection(url, password) as conn, open_history(from_dir) as solo:
        return team.import_history(conn, records_with_resends(solo), all_events(solo))
