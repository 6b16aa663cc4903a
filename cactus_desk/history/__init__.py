"""The payout history: its port (``port``), value types (``types``) and the adapters behind it.

This module is the one place that picks an adapter: ``sqlite`` (the local history in the data
folder) or ``postgres`` (a team history shared by many desks, chosen by a ``postgresql://``
store URL). It imports them lazily, so the history is loaded only when a caller opens one (a
start-up seam). File-level recovery (a damaged or missing file, restoring a backup, starting
empty) is what opening a local history means, so it lives here rather than on the port.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cactus_desk.history.port import HistoryStore
    from cactus_desk.history.postgres.connect import StoreUrl
    from cactus_desk.history.types import CorruptHistoryError, OpenedHistory
    from cactus_desk.profiles import ProfileRepository
    from cactus_desk.recipients.store import RecipientRepository


def open_history(data_dir: Path, store: str | None = None) -> HistoryStore:
    """Open the history: the team history at ``store`` (a ``postgresql://`` URL) when given,
    else (creating if needed) the local one of ``data_dir``: checked, backed up before a
    migration, migrated. The daily backup is not taken here (a person may be waiting): the
    window and the receiver take it in the background (``take_daily_backup``).

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


def open_recipients(
    data_dir: Path, store: str | None = None, *, password: str | None = None
) -> RecipientRepository:
    """The saved recipients a desk uses: the team's (at ``store``, a ``postgresql://`` URL)
    or this desk's file in ``data_dir``. Nothing is read until the first call.

    The team store's password is ``password``, else the keyring's, else ``PGPASSWORD``.
    Raises ``RecipientStoreError`` (a URL that cannot be used, a keyring that fails).
    """
    from cactus_desk.recipients.store import RecipientStore, RecipientStoreError

    if not store:
        return RecipientStore(data_dir)
    from cactus_desk.history.postgres.connect import parse_store_url
    from cactus_desk.history.postgres.recipients import PostgresRecipientStore
    from cactus_desk.secrets import KeyringError, get_store_password

    try:
        target = parse_store_url(store)
    except ValueError as exc:
        raise RecipientStoreError(str(exc)) from None
    if password is None:
        try:
            password = get_store_password(target.account)
        except KeyringError as exc:
            raise RecipientStoreError(f"The team store's password cannot be read: {exc}") from None
    return PostgresRecipientStore(store, password=password)


def take_daily_backup(data_dir: Path, should_stop: Callable[[], bool]) -> Path | None:
    """Take the daily backup of the local history of ``data_dir`` when one is due; the new
    backup, or None. Slow on a big history (most of a minute at a million payouts): only on
    a background thread. ``should_stop`` returning True abandons it (nothing is kept).
    Raises ``BackupError``."""
    from cactus_desk.history.sqlite.backup import daily_backup_if_due
    from cactus_desk.history.sqlite.opening import history_path

    return daily_backup_if_due(history_path(data_dir), should_stop=should_stop)


def abandon_backups(data_dir: Path) -> None:
    """Abandon the backups of ``data_dir``'s local history in progress in this process (each
    stops within a step and leaves no partial file): for quitting without waiting for one."""
    from cactus_desk.history.sqlite.backup import abandon_backups as abandon

    abandon(data_dir)


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
