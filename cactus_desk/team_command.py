"""``cactus-desk team ...``: put this machine on a team history, and set a team up.

``team connect URL --password-stdin`` puts this machine on a team history: the URL (never
holding the password) becomes this machine's default store in the data folder's
``settings.json``; the database password goes to the OS keyring, never to a file. The
connection is tried first, so nothing is saved for a store that cannot be reached.

``--store URL team init`` (the database owner), ``team add-user`` and ``team list-users``
(an admin) and ``team import-history`` (an admin) set a team up; see ``history.team``.
"""

from __future__ import annotations

import argparse
import getpass
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TextIO

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
EXIT_DENIED = 3  # the database refused this login the action (its role may not)
_ROLE_NAMES = ("admin", "maker", "approver", "viewer", "receiver")


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
    @property
    def store(self) -> str | None: ...

    def start_logging(self) -> None:
        """Log to the private log file."""
        ...


class TeamCommandError(Exception):
    """A failure to report on one line, with its exit code."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


def add_parser(commands: Any, handler: Callable[[argparse.Namespace, Any], int]) -> Any:
    """Add ``team connect`` to the ``cactus-desk`` subcommands; the ``team`` actions."""
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
    connect.set_defaults(handler=handler, team_action=connect_command)
    init = team_commands.add_parser(
        "init",
        help="set the team history up: schema, group roles, least privilege (database owner)",
        description="Create or bring up to date the team history's schema in the --store "
        "database, create the group roles cactus_admin, cactus_maker, cactus_approver, "
        "cactus_viewer and cactus_receiver and give each exactly its privileges. Run by the "
        "database owner; running it again changes nothing.",
    )
    init.set_defaults(handler=handler, team_action=init_command)
    add_user = team_commands.add_parser(
        "add-user",
        help="create a person's login with a team role (a team admin)",
        description="Create a login on the team history's server with one team role. The "
        "password is read from standard input and only its SCRAM verifier is sent.",
    )
    add_user.add_argument("login", metavar="LOGIN", help="the person's database login")
    add_user.add_argument(
        "--role", required=True, metavar="ROLE", help=f"one of: {', '.join(_ROLE_NAMES)}"
    )
    add_user.add_argument(
        "--password-stdin",
        action="store_true",
        required=True,
        help="read the new login's password from standard input",
    )
    add_user.set_defaults(handler=handler, team_action=add_user_command)
    list_users = team_commands.add_parser(
        "list-users", help="list the team's logins and their roles"
    )
    list_users.set_defaults(handler=handler, team_action=list_users_command)
    import_history = team_commands.add_parser(
        "import-history",
        help="copy a desk's own history into the team history (a team admin; idempotent)",
        description="Copy the payouts, events and resends of the history in a data folder "
        "into the team history, keeping their times; running it again adds nothing.",
    )
    import_history.add_argument(
        "--from-data-dir",
        required=True,
        type=Path,
        metavar="DIR",
        help="the data folder whose history to copy",
    )
    import_history.set_defaults(handler=handler, team_action=import_history_command)
    return team_commands


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


def connect_command(args: argparse.Namespace, ctx: Context) -> int:
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


def _team_store(ctx: Context, action: str) -> str:
    from cactus_desk.history import check_store_url

    if not ctx.store:
        raise TeamCommandError(
            f"team {action} works on a team history: give it with --store "
            "postgresql://USER@HOST:PORT/DB (or CACTUS_DESK_STORE)",
            EXIT_USAGE,
        )
    try:
        return check_store_url(ctx.store).url
    except ValueError as exc:
        raise TeamCommandError(str(exc), EXIT_USAGE) from None


def init_command(args: argparse.Namespace, ctx: Context) -> int:
    """Set the team history at ``--store`` up (schema, roles, privileges); idempotent."""
    from cactus_desk.history import check_store_url
    from cactus_desk.history.team import init_team
    from cactus_desk.history.types import HistoryError

    url = _team_store(ctx, "init")
    ctx.start_logging()
    try:
        setup = init_team(url)
    except HistoryError as exc:
        raise TeamCommandError(str(exc)) from None
    created = ", ".join(setup.roles_created) or "none (all there already)"
    print(
        f"The team history at {check_store_url(url).label} is set up (schema version "
        f"{setup.schema_version}). Group roles created: {created}. Privileges applied. "
        "Add people with: cactus-desk --store URL team add-user LOGIN --role ROLE "
        "--password-stdin",
        file=ctx.stdout,
    )
    if setup.tables_without_entry:
        print(
            "warning: no team role may use these tables (they have no entry in the "
            f"privilege table): {', '.join(setup.tables_without_entry)}",
            file=ctx.stderr,
        )
    return EXIT_OK


def add_user_command(args: argparse.Namespace, ctx: Context) -> int:
    """Create a person's login with one team role; the password from standard input."""
    from cactus_desk.history.team import add_user
    from cactus_desk.history.types import HistoryError, HistoryPermissionError
    from cactus_desk.logs import register_secret

    url = _team_store(ctx, "add-user")
    if args.role not in _ROLE_NAMES:
        raise TeamCommandError(
            f"{args.role!r} is not a team role; use one of: {', '.join(_ROLE_NAMES)}", EXIT_USAGE
        )
    password = _read_password(ctx.stdin)
    register_secret(password)
    ctx.start_logging()
    try:
        add_user(url, args.login, args.role, password)
    except HistoryPermissionError as exc:
        raise TeamCommandError(str(exc), EXIT_DENIED) from None
    except HistoryError as exc:
        raise TeamCommandError(str(exc)) from None
    print(
        f"Added the login {args.login} as {args.role} (cactus_{args.role}). They connect with: "
        "cactus-desk team connect postgresql://"
        f"{args.login}@HOST:PORT/DB?sslmode=verify-full --password-stdin",
        file=ctx.stdout,
    )
    return EXIT_OK


def list_users_command(args: argparse.Namespace, ctx: Context) -> int:
    """Print the team's logins and their roles, one per line."""
    from cactus_desk.history.team import list_users
    from cactus_desk.history.types import HistoryError

    url = _team_store(ctx, "list-users")
    try:
        users = list_users(url)
    except HistoryError as exc:
        raise TeamCommandError(str(exc)) from None
    if not users:
        print("No logins hold a team role yet.", file=ctx.stdout)
    for user in users:
        print(f"{user.login}\t{', '.join(user.roles)}", file=ctx.stdout)
    return EXIT_OK


def import_history_command(args: argparse.Namespace, ctx: Context) -> int:
    """Copy a data folder's own history into the team history; print the counts."""
    from cactus_desk.history.team import import_solo_history
    from cactus_desk.history.types import HistoryError, HistoryPermissionError

    url = _team_store(ctx, "import-history")
    ctx.start_logging()
    try:
        report = import_solo_history(url, args.from_data_dir)
    except HistoryPermissionError as exc:
        raise TeamCommandError(str(exc), EXIT_DENIED) from None
    except HistoryError as exc:
        raise TeamCommandError(str(exc)) from None
    print(
        f"Imported {report.payouts_imported} payouts, {report.events_imported} events and "
        f"{report.resends_imported} resends; already there: {report.payouts_present} payouts, "
        f"{report.events_present} events, {report.resends_present} resends.",
        file=ctx.stdout,
    )
    return EXIT_OK
