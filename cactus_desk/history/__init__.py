"""The payout history: its port (``port``), value types (``types``) and the adapters behind it.

This module is the one place that picks an adapter: ``sqlite`` (the local history in the data
folder) or ``postgres`` (a team history shared by many desks, chosen by a ``postgresql://``
store URL). It imports them lazily, so the history is loaded only when a caller opens one (a
start-up seam). File-level recovery (a damaged or missing file, restoring a backup, starting
empty) is what opening a local history means, so it lives here rather than on the port.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cactus_desk.history.port import HistoryStore
    from cactus_desk.history.postgres.connect import StoreUrl
    from cactus_desk.history.types import CorruptHistoryError, OpenedHistory
    from cactus_desk.profiles import ProfileRepository


def open_history(data_dir: Path, store: str | None = None) -> HistoryStore:
    """Open the history: the team history at ``store`` (a ``postgresql://`` URL) when given,
    else (creating if needed) the local one of ``data_dir``: checked, backed up, migrated.

    Raises ``CorruptHistoryError`` (the damaged file already set aside),
    ``MissingHistoryError`` (one existed and is gone) or ``HistoryOpenError`` (also for a
    team history that cannot be reached, or a store URL that cannot be used).
    """
    if store:
        return open_team_history(store, data_dir)
    from cactus_desk.history.sqlite.opening import open_store

    return open_store(data_dir)


def check_store_url(text: str) -> StoreUrl:
    """Check a team store URL (``postgresql://``, no password in it); raises ``ValueError``
    with a message for people."""
    from cactus_desk.history.postgres.connect import parse_store_url

    return parse_store_url(text)


def open_team_history(url: str, data_dir: Path, *, password: str | None = None) -> HistoryStore:
    """Open the team history at ``url`` as this desk (``data_dir`` keeps the desk's id).

    The password is ``password``, else the one saved in the OS keyring for this URL
    (``team connect``), else libpq's ``PGPASSWORD`` (never a password file).
    Raises ``HistoryOpenError``.
    """
    from cactus_desk.history.postgres.connect import parse_store_url
    from cactus_desk.history.postgres.opening import open_team_store
    from cactus_desk.history.types import HistoryOpenError
    from cactus_desk.secrets import KeyringError, get_store_password

    try:
        target = parse_store_url(url)
    except ValueError as exc:
        raise HistoryOpenError(str(exc)) from None
    if password is None:
        try:
            password = get_store_password(target.account)
        except KeyringError as exc:
            raise HistoryOpenError(f"The team history's password cannot be read: {exc}") from None
    return open_team_store(url, data_dir, password)


def open_profiles(
    data_dir: Path, store: str | None = None, *, password: str | None = None
) -> ProfileRepository:
    """The profiles a command uses: the team's (at ``store``, a ``postgresql://`` URL) or
    this machine's file in ``data_dir``. Nothing is read until the first call.

    The team store's password is ``password``, else the keyring's, else ``PGPASSWORD``.
    Raises ``ProfileStoreError`` (a URL that cannot be used, a keyring that fails).
    """
    from cactus_desk.profiles import ProfileStore, ProfileStoreError

    if not store:
        return ProfileStore(data_dir)
    from cactus_desk.history.postgres.connect import parse_store_url
    from cactus_desk.history.postgres.profiles import PostgresProfileStore
    from cactus_desk.secrets import KeyringError, get_store_password

    try:
        target = parse_store_url(store)
    except ValueError as exc:
        raise ProfileStoreError(str(exc)) from None
    if password is None:
        try:
            password = get_store_password(target.account)
        except KeyringError as exc:
            raise ProfileStoreError(f"The team store's password cannot be read: {exc}") from None
    return PostgresProfileStore(store, password=password)


def open_history_fast(data_dir: Path) -> OpenedHistory:
    """Open the history for the window, leaving the slow checks to ``check_pending``."""
    from cactus_desk.history.sqlite.opening import open_store_fast

    return open_store_fast(data_dir)


def history_location(data_dir: Path) -> Path:
    """The file that holds the history of ``data_dir``."""
    from cactus_desk.history.sqlite.opening import history_path

    return history_path(data_dir)


def set_damaged_aside(store: HistoryStore, problem: str) -> CorruptHistoryError:
    """Move the (closed) damaged history of ``store`` aside; return the error to show."""
    from cactus_desk.history.sqlite.opening import set_damaged_aside as set_aside

    return set_aside(store.location, problem)


def newest_backup(data_dir: Path) -> Path | None:
    """The newest backup of the history of ``data_dir``, or None."""
    from cactus_desk.history.sqlite.backup import newest_backup as newest

    return newest(data_dir)


def restore_backup(data_dir: Path, backup: Path) -> Path:
    """Put ``backup`` where the history of ``data_dir`` is missing; return the history file."""
    from cactus_desk.history.sqlite.backup import restore_backup as restore

    return restore(data_dir, backup)


def restore_and_open(data_dir: Path, backup: Path) -> HistoryStore:
    """Restore ``backup`` where the history is missing and open it."""
    from cactus_desk.history.sqlite.opening import restore_and_open as restore

    return restore(data_dir, backup)


def start_new_history(data_dir: Path) -> HistoryStore:
    """Start a new, empty history on the person's explicit choice; return it open."""
    from cactus_desk.history.sqlite.opening import start_new_history as start

    return start(data_dir)
