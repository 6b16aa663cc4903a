"""``cactus-desk team connect URL --password-stdin``: put this machine on a team history.

The URL (never holding the password) becomes this machine's default store in the data
folder's ``settings.json``; the database password goes to the OS keyring, never to a file.
The connection is tried first, so nothing is saved for a store that cannot be reached.
"""

from __future__ import annotations

import argparse
import getpass
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TextIO

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class Context(Protocol):
    """What the command needs from ``commands.Context``."""

    @property
    def data_dir(self) -> Path: ...
    @property
    def stdin(self) -> TextIO: ...
    @property
    def stdout(self) -> TextIO: ...
    @property
    def stderr(self) -> TextIO: ...

    def start_logging(self) -> None:
        """Log to the private log file."""
        ...


class TeamCommandError(Exception):
    """A failure to report on one line, with its exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


def add_parser(commands: Any, handler: Callable[[argparse.Namespace, Any], int]) -> None:
    """Add ``team connect`` to the ``cactus-desk`` subcommands."""
    team = commands.add_parser("team", help="work on a team history shared on PostgreSQL")
    team_commands = team.add_subparsers(dest="team_command", metavar="ACTION")
    team_commands.required = True
    connect = team_commands.add_parser(
        "connect",
        help="use a team history on this machine from now on (password in the OS keyring)",
        description="Check the connection, save the database password in the OS keyring and "
        "the URL as this machine's default history. Recommended: ?sslmode=verify-full with "
        "&sslrootcert=/path/to/ca.pem.",
    )
    connect.add_argument("url", metavar="URL", help="postgresql://USER@HOST:PORT/DB?sslmode=...")
    connect.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the database password from standard input (kept in the OS keyring only)",
    )
    connect.set_defaults(handler=handler)


def _read_password(stdin: TextIO) -> str:
    prompt = "Database password (not shown): "
    text = getpass.getpass(prompt) if stdin.isatty() else stdin.read()
    password = text.rstrip("\r\n")
    if not password:
        raise TeamCommandError(
            'no password on standard input; pipe it in, e.g. `printf %s "$PW" | ...`',
            EXIT_USAGE,
        )
    if any(unicodedata.category(ch) == "Cc" for ch in password):
        raise TeamCommandError("the password on standard input must be a single line", EXIT_USAGE)
    return password


def connect(args: argparse.Namespace, ctx: Context) -> int:
    """Check the team history at ``args.url`` and make it this machine's default."""
    from cactus_desk.history import check_store_url, open_team_history
    from cactus_desk.history.types import HistoryOpenError
    from cactus_desk.logs import register_secret
    from cactus_desk.secrets import (
        KeyringError,
        NoKeyringError,
        backend_name,
        set_store_password,
    )
    from cactus_desk.store_choice import SettingsError, save_default_store

    try:
        target = check_store_url(args.url.strip())
    except ValueError as exc:
        raise TeamCommandError(str(exc), EXIT_USAGE) from None
    password = _read_password(ctx.stdin) if args.password_stdin else None
    register_secret(password)
    ctx.start_logging()
    try:
        open_team_history(target.url, ctx.data_dir, password=password).close()
    except HistoryOpenError as exc:
        raise TeamCommandError(f"{exc} Nothing was saved.") from None
    saved = ""
    if password is not None:
        try:
            set_store_password(target.account, password)
        except (NoKeyringError, KeyringError) as exc:
            raise TeamCommandError(f"{exc} Nothing was saved.") from None
        saved = f" The password is in the OS keyring ({backend_name()})."
    try:
        settings = save_default_store(ctx.data_dir, target.url)
    except SettingsError as exc:
        raise TeamCommandError(str(exc)) from None
    print(
        f"This computer now uses the team history at {target.label}"
        f"{f' as {target.user}' if target.user else ''} (saved in {settings}).{saved} "
        "Use --store local for this computer's own history.",
        file=ctx.stdout,
    )
    return EXIT_OK
