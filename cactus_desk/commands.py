"""The ``cactus-desk`` command line in full: its parser, the subcommands, and their errors.

``cli.main`` comes here for everything but a plain window start; none of it loads Qt.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import cactus_desk
from cactus_desk import paths

# Profiles (pydantic) and secrets (keyring) are imported by the commands that use them: opening
# the window must not wait for them before its first paint.
if TYPE_CHECKING:
    from cactus_desk.history.port import HistoryStore
    from cactus_desk.history.types import HistoryFilter
    from cactus_desk.profiles import ProfileRepository

PROG = "cactus-desk"
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

log = logging.getLogger(__name__)


class CliError(Exception):
    """A failure to report as one line on stderr, with the exit code to return."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Context:
    """What every subcommand needs: where the data and logs live, and the streams."""

    data_dir: Path
    log_dir: Path
    stdin: TextIO
    stdout: TextIO
    stderr: TextIO
    store: str | None = None  # a team store URL (--store, $CACTUS_DESK_STORE, team connect)

    def start_logging(self) -> None:
        """Log to the private log file; a log folder that cannot be created is not fatal."""
        from cactus_desk.logs import setup_logging

        try:
            setup_logging(self.log_dir)
        except OSError as exc:
            print(f"{PROG}: warning: not logging to {self.log_dir}: {exc}", file=self.stderr)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def _site_id(text: str) -> int:
    from cactus_desk.profiles import MAX_SITE_ID

    value = _positive_int(text)
    if value > MAX_SITE_ID:
        raise argparse.ArgumentTypeError(
            f"{text!r} is larger than a site ID can be ({MAX_SITE_ID})"
        )
    return value


def _data_dir_text(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must name a folder, not be empty")
    return text


def _decimals_item(text: str) -> tuple[str, int | None]:
    """``IDR=0`` -> ("IDR", 0); ``IDR=default`` -> ("IDR", None). Ranges are the profile's."""
    code, sep, places = text.partition("=")
    code, places = code.strip().upper(), places.strip().lower()
    if not sep or not code:
        raise argparse.ArgumentTypeError(f"{text!r}: write CODE=DECIMALS, e.g. IDR=0")
    if places == "default":
        return code, None
    if not places.isascii() or not places.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: the decimals are a whole number, e.g. IDR=0")
    return code, int(places)


def _add_decimals_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--decimals",
        action="append",
        default=[],
        type=_decimals_item,
        metavar="CODE=N",
        help="decimals of a currency on the wire for this site, e.g. IDR=0 (repeatable; "
        "CODE=default goes back to the usual number)",
    )


def _with_decimals(current: dict[str, int], items: list[tuple[str, int | None]]) -> dict[str, int]:
    merged = dict(current)
    for code, places in items:
        if places is None:
            merged.pop(code, None)
        else:
            merged[code] = places
    return merged


def _delay_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 <= value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r} must be from 0 to 3600 seconds")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 65535")
    return value


class _VersionAction(argparse.Action):
    """``--version``: the installed version is looked up only when it is asked for."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("help", "show program's version number and exit")
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any, **_kwargs: Any) -> None:
        print(f"{PROG} {cactus_desk.__version__}", file=sys.stdout)
        parser.exit()


def _store_text(text: str) -> str:
    from cactus_desk.history import check_store_url
    from cactus_desk.store_choice import LOCAL

    if text.strip() == LOCAL:
        return LOCAL
    try:
        check_store_url(text.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.strip()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for ``cactus-desk``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Desktop payout console for the Cactus payment gateway. "
        "With no command it opens the window.",
    )
    parser.add_argument("--version", action=_VersionAction)
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        type=_data_dir_text,
        help="folder for profiles and history (default: $CACTUS_DESK_HOME or the platform's)",
    )
    parser.add_argument(
        "--store",
        metavar="URL",
        type=_store_text,
        help="the team history: postgresql://USER@HOST/DB?sslmode=verify-full, or 'local' "
        "(default: $CACTUS_DESK_STORE, else this machine's from `team connect`, else local)",
    )
    parser.add_argument(
        "--log-dir", action="store_true", help="print where the log folder is and exit"
    )
    parser.add_argument(
        "--sandbox", action="store_true", help="open the window on the embedded sandbox gateway"
    )
    parser.add_argument(
        "--read-timeout",
        metavar="SECONDS",
        help="with --sandbox: read timeout of the embedded sandbox profile",
    )
    parser.add_argument(
        "--finalize-after",
        metavar="SECONDS",
        help="with --sandbox: seconds before the sandbox finalizes a payout (default: 5)",
    )
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="check this installation end to end against an in-process sandbox, then exit",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    sandbox = commands.add_parser("sandbox", help="run the sandbox gateway on this computer")
    sandbox.add_argument("--port", type=_port, default=0, help="port (default: any free one)")
    sandbox.add_argument("--merchant-id", default="sandbox", help="merchant ID it accepts")
    sandbox.add_argument("--site-id", type=_site_id, default=101, help="site ID it accepts")
    sandbox.add_argument("--salt", help="salt it signs with (default: a random one, printed)")
    sandbox.add_argument(
        "--callback-url",
        metavar="URL",
        help="finalize accepted payouts and POST their signed callbacks here, e.g. "
        "http://127.0.0.1:8787/callback (a `cactus-desk receiver`); amounts ending in 13 "
        "minor units are declined, the rest succeed",
    )
    sandbox.add_argument(
        "--finalize-after",
        dest="sandbox_finalize_after",
        type=_delay_seconds,
        metavar="SECONDS",
        help="with --callback-url: seconds before a payout is finalized (default: 5)",
    )
    sandbox.set_defaults(handler=_cmd_sandbox)

    profile = commands.add_parser("profile", help="manage gateway profiles")
    profile_commands = profile.add_subparsers(dest="profile_command", metavar="ACTION")
    profile_commands.required = True

    add = profile_commands.add_parser("add", help="add a profile; the salt goes to the keyring")
    add.add_argument("name", help="a name for the profile, e.g. 'Acme live'")
    add.add_argument("--base-url", required=True, help="gateway address, e.g. https://...")
    add.add_argument("--merchant-id", required=True)
    add.add_argument("--site-id", required=True, type=_site_id)
    add.add_argument("--environment", choices=("live", "sandbox"), default="live")
    add.add_argument(
        "--extension",
        action="append",
        default=[],
        metavar="METHOD",
        help="enable an undocumented method for this profile (repeatable)",
    )
    add.add_argument("--ca-bundle", metavar="FILE", help="PEM file of CAs to trust for this URL")
    add.add_argument(
        "--salt-stdin",
        action="store_true",
        required=True,
        help="read the site salt from standard input (it is stored in the OS keyring only)",
    )
    _add_decimals_option(add)
    add.set_defaults(handler=_cmd_profile_add)

    update = profile_commands.add_parser("update", help="change a profile's settings")
    update.add_argument("name")
    _add_decimals_option(update)
    update.set_defaults(handler=_cmd_profile_update)

    listing = profile_commands.add_parser("list", help="list the profiles")
    listing.set_defaults(handler=_cmd_profile_list)

    set_salt = profile_commands.add_parser(
        "set-salt",
        help="save a profile's salt in this machine's keyring (e.g. a team profile on a new desk)",
    )
    set_salt.add_argument("name")
    set_salt.add_argument(
        "--salt-stdin",
        action="store_true",
        required=True,
        help="read the site salt from standard input (it is stored in the OS keyring only)",
    )
    set_salt.set_defaults(handler=_cmd_profile_set_salt)

    remove = profile_commands.add_parser("remove", help="remove a profile and its salt")
    remove.add_argument("name")
    remove.set_defaults(handler=_cmd_profile_remove)

    history = commands.add_parser("history", help="the payout history")
    history_commands = history.add_subparsers(dest="history_command", metavar="ACTION")
    history_commands.required = True
    export = history_commands.add_parser("export", help="export the history")
    export.add_argument("--format", choices=("csv",), default="csv")
    export.add_argument(
        "--output",
        metavar="FILE",
        help="write here, outside the data folder (default: standard output)",
    )
    export.add_argument("--force", action="store_true", help="replace --output if it exists")
    export.add_argument(
        "--bom", action="store_true", help="start with a UTF-8 byte order mark, for Excel"
    )
    export.add_argument("--profile", metavar="NAME", help="only this profile's payouts")
    export.add_argument("--state", metavar="S", help="only payouts in this state, e.g. ACCEPTED")
    export.add_argument("--currency", metavar="C", help="only this currency, e.g. EUR")
    export.add_argument("--search", metavar="TEXT", help="only payouts matching this text")
    export.set_defaults(handler=_cmd_history_export)
    restore = history_commands.add_parser(
        "restore",
        help="put a backup in place of a missing or damaged history (stop Cactus Desk first)",
    )
    choice = restore.add_mutually_exclusive_group()
    choice.add_argument("--backup", metavar="FILE", help="this backup (default: the newest)")
    choice.add_argument(
        "--start-empty",
        action="store_true",
        help="start a new, empty history instead (files kept aside and backups stay)",
    )
    restore.set_defaults(handler=_cmd_history_restore)
    _add_status_commands(commands, history_commands)
    from cactus_desk import payout_command

    payout_command.add_parser(commands, _cmd_payout_send)
    from cactus_desk import batch_command

    batch_command.add_parser(commands, _cmd_batch)
    from cactus_desk import team_command

    team_actions = team_command.add_parser(commands, _cmd_team_connect)
    from cactus_desk import approvals_command, team_approvals_command

    team_approvals_command.add_parsers(team_actions, _cmd_team_connect)

    approvals_command.add_parser(commands, _cmd_approvals)
    return parser


def _cmd_approvals(args: argparse.Namespace, ctx: Context) -> int:
    from cactus_desk.team_command import TeamCommandError

    try:
        return int(args.approvals_action(args, ctx))
    except TeamCommandError as exc:
        raise CliError(str(exc), exc.code) from None


def _cmd_team_connect(args: argparse.Namespace, ctx: Context) -> int:
    from cactus_desk.team_command import TeamCommandError

    try:
        return int(args.team_action(args, ctx))
    except TeamCommandError as exc:
        raise CliError(str(exc), exc.code) from None


def main(argv: list[str] | None = None) -> int:
    """Run ``cactus-desk`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # --help, --version or a usage error, already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        return _dispatch(args, args_list)
    except CliError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (e.g. `| head`); point stdout at nothing so exit stays quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE
    except Exception as exc:  # the last line of defence: one readable line, never a traceback
        code = _store_error_code(exc)
        if code is not None:
            print(f"{PROG}: error: {exc}", file=sys.stderr)
            return code
        if logging.getLogger().handlers:  # without a handler, logging would print the traceback
            log.exception("Unexpected error")
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILURE


def _chosen_store(data_dir: Path, explicit: str | None) -> str | None:
    from cactus_desk.store_choice import SettingsError, chosen_store

    try:
        return chosen_store(data_dir, explicit)
    except SettingsError as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None


def _store_error_code(exc: Exception) -> int | None:
    """The exit code of a profile or keyring error (its own message is the report), else None."""
    from cactus_desk.history.types import HistoryOpenError
    from cactus_desk.profiles import DuplicateProfileError, ProfileStoreError
    from cactus_desk.secrets import KeyringError, NoKeyringError

    if isinstance(exc, DuplicateProfileError | NoKeyringError):
        return EXIT_USAGE
    if isinstance(exc, ProfileStoreError | KeyringError | HistoryOpenError):
        return EXIT_FAILURE
    return None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _dispatch(args: argparse.Namespace, argv: list[str]) -> int:
    explicit = bool(args.data_dir or os.environ.get(paths.ENV_HOME))
    data_dir = paths.data_dir(args.data_dir)
    log_dir = paths.log_dir(data_dir, explicit_data_dir=explicit)
    if args.log_dir:
        print(log_dir)
        return EXIT_OK
    handler: Callable[[argparse.Namespace, Context], int] | None = getattr(args, "handler", None)
    if handler is not None and not args.self_test:
        store = _chosen_store(data_dir, args.store)
        context = Context(data_dir, log_dir, sys.stdin, sys.stdout, sys.stderr, store)
        return handler(args, context)
    if not args.self_test:
        _chosen_store(data_dir, args.store)  # a settings file that cannot be read: say so
    if args.self_test:
        from cactus_desk import selftest

        return selftest.run(argv)
    from cactus_desk import app

    return app.run(argv)


# --- sandbox -------------------------------------------------------------------------------


def _cmd_sandbox(args: argparse.Namespace, ctx: Context) -> int:
    from cactus_desk.sandbox.standalone import DEFAULT_FINALIZE_AFTER, serve

    delay = args.sandbox_finalize_after
    if delay is not None and not args.callback_url:
        raise CliError("--finalize-after needs --callback-url (where to send the callbacks)")
    ctx.start_logging()
    return serve(
        args.port,
        args.merchant_id,
        args.site_id,
        args.salt,
        callback_url=args.callback_url,
        finalize_after=DEFAULT_FINALIZE_AFTER if delay is None else delay,
    )


# --- profiles ------------------------------------------------------------------------------


def _profiles(ctx: Context) -> ProfileRepository:
    """The profiles of the chosen store: the team's, or this machine's file."""
    from cactus_desk.history import open_profiles

    return open_profiles(ctx.data_dir, ctx.store)


def _read_salt(ctx: Context) -> str:
    import getpass
    import unicodedata

    interactive = ctx.stdin.isatty()
    salt = getpass.getpass("Site salt (not shown): ") if interactive else ctx.stdin.read()
    salt = salt.strip()
    if not salt:
        raise CliError('no salt on standard input; pipe it in, e.g. `printf %s "$SALT" | ...`')
    if any(unicodedata.category(ch) == "Cc" for ch in salt):
        raise CliError("the salt on standard input must be a single line")
    return salt


def _cmd_profile_add(args: argparse.Namespace, ctx: Context) -> int:
    from pydantic import ValidationError

    from cactus_desk.profiles import (
        Profile,
        ProfileNotFoundError,
        check_ca_bundle,
        describe_validation_error,
    )
    from cactus_desk.secrets import KeyringError, NoKeyringError, SecretStore, keyring_usable

    ca_bundle = None
    if args.ca_bundle:
        bundle = Path(args.ca_bundle).expanduser()
        try:
            check_ca_bundle(bundle)
        except ValueError as exc:
            raise CliError(f"--ca-bundle: {exc}") from None
        ca_bundle = str(bundle.resolve())
    try:
        profile = Profile(
            name=args.name,
            base_url=args.base_url,
            merchant_id=args.merchant_id,
            site_id=args.site_id,
            environment=args.environment,
            extensions=args.extension,
            ca_bundle=ca_bundle,
            decimals=_with_decimals({}, args.decimals),
        )
    except ValidationError as exc:
        raise CliError(_cli_field_names(describe_validation_error(exc))) from None

    store = _profiles(ctx)
    try:
        existing = store.get(profile.name)
    except ProfileNotFoundError:
        pass
    else:
        raise CliError(f"a profile named {existing.name!r} already exists")
    if not keyring_usable():
        raise CliError(str(NoKeyringError()))

    salt = _read_salt(ctx)
    ctx.start_logging()
    secrets = SecretStore()
    try:
        secrets.set_salt(profile.id, salt)
    except NoKeyringError as exc:
        raise CliError(str(exc)) from None
    except KeyringError as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None
    try:
        store.add(profile)
    except Exception:
        # Do not leave an orphan secret behind a profile that was never saved.
        with contextlib.suppress(KeyringError):
            secrets.delete_salt(profile.id)
        raise
    log.info("Added profile %r (%s, %s)", profile.name, profile.environment, profile.base_url)
    marker = "LIVE" if profile.is_live else "sandbox"
    print(
        f"Added profile {profile.name!r} [{marker}]; the salt is in the OS keyring.",
        file=ctx.stdout,
    )
    return EXIT_OK


def _cli_field_names(message: str) -> str:
    for field, option in (
        ("base_url", "--base-url"),
        ("merchant_id", "--merchant-id"),
        ("site_id", "--site-id"),
        ("extensions", "--extension"),
        ("ca_bundle", "--ca-bundle"),
        ("environment", "--environment"),
        ("decimals", "--decimals"),
    ):
        message = message.replace(f"{field}:", f"{option}:").replace(f"{field}.", f"{option} #")
    return message


def _salt_state(profile_id: str) -> str:
    from cactus_desk.secrets import KeyringError, SecretStore, keyring_usable

    if not keyring_usable():
        return "no keyring"
    try:
        return "in keyring" if SecretStore().has_salt(profile_id) else "MISSING"
    except KeyringError:
        return "unknown (keyring error)"


def _cmd_profile_list(args: argparse.Namespace, ctx: Context) -> int:
    profiles = _profiles(ctx).all()
    if not profiles:
        print("No profiles yet. Add one with: cactus-desk profile add NAME ...", file=ctx.stderr)
        return EXIT_OK
    header = ("NAME", "ENV", "BASE URL", "MERCHANT", "SITE", "SALT")
    rows = [
        (
            p.name,
            "LIVE" if p.is_live else "sandbox",
            p.base_url,
            p.merchant_id,
            str(p.site_id),
            _salt_state(p.id),
        )
        for p in profiles
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print(line.rstrip(), file=ctx.stdout)
    return EXIT_OK


def _cmd_profile_update(args: argparse.Namespace, ctx: Context) -> int:
    from pydantic import ValidationError

    from cactus_desk.profiles import (
        Profile,
        ProfileNotFoundError,
        describe_validation_error,
    )

    store = _profiles(ctx)
    try:
        profile = store.get(args.name)
    except ProfileNotFoundError as exc:
        raise CliError(str(exc)) from None
    data = profile.model_dump()
    data["decimals"] = _with_decimals(profile.decimals, args.decimals)
    try:
        changed = Profile.model_validate(data)
    except ValidationError as exc:
        raise CliError(_cli_field_names(describe_validation_error(exc))) from None
    ctx.start_logging()
    store.update(changed)
    log.info("Updated profile %r: decimals %s", changed.name, changed.decimals or "usual")
    shown = ", ".join(f"{code}={n}" for code, n in changed.decimals.items()) or "the usual ones"
    print(f"Profile {changed.name!r}: decimals {shown}.", file=ctx.stdout)
    return EXIT_OK


def _cmd_profile_set_salt(args: argparse.Namespace, ctx: Context) -> int:
    from cactus_desk.profiles import ProfileNotFoundError
    from cactus_desk.secrets import KeyringError, NoKeyringError, SecretStore, keyring_usable

    try:
        profile = _profiles(ctx).get(args.name)
    except ProfileNotFoundError as exc:
        raise CliError(str(exc)) from None
    if not keyring_usable():
        raise CliError(str(NoKeyringError()))
    salt = _read_salt(ctx)
    ctx.start_logging()
    try:
        SecretStore().set_salt(profile.id, salt)
    except NoKeyringError as exc:
        raise CliError(str(exc)) from None
    except KeyringError as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None
    log.info("Saved the salt of profile %r in this machine's keyring", profile.name)
    print(f"Saved the salt of profile {profile.name!r} in this machine's keyring.", file=ctx.stdout)
    return EXIT_OK


def _cmd_profile_remove(args: argparse.Namespace, ctx: Context) -> int:
    from cactus_desk.profiles import ProfileNotFoundError
    from cactus_desk.secrets import KeyringError, SecretStore

    store = _profiles(ctx)
    try:
        profile = store.get(args.name)
    except ProfileNotFoundError as exc:
        raise CliError(str(exc)) from None
    ctx.start_logging()
    # The salt goes first: if the keyring fails, the profile is still there to retry with.
    try:
        SecretStore().delete_salt(profile.id)
    except KeyringError as exc:
        raise CliError(f"{exc} The profile was not removed.", EXIT_FAILURE) from None
    store.remove(profile.name)
    log.info("Removed profile %r", profile.name)
    print(f"Removed profile {profile.name!r} and its salt.", file=ctx.stdout)
    return EXIT_OK


# --- history -------------------------------------------------------------------------------


def _states(text: str | None) -> frozenset[str]:
    from cactus_desk.payouts.states import State

    if not text:
        return frozenset()
    wanted = text.strip().upper().replace(" ", "_")
    if wanted not in State.__members__:
        choices = ", ".join(State.__members__)
        raise CliError(f"--state: unknown state {text!r} (choose from: {choices})")
    return frozenset({State[wanted]})


def _history_filter(
    args: argparse.Namespace, ctx: Context, store: HistoryStore, states: frozenset[str]
) -> HistoryFilter:
    from cactus_desk.history.types import HistoryFilter
    from cactus_desk.profiles import ProfileNotFoundError

    profile_id = None
    if args.profile:
        try:
            profile_id = _profiles(ctx).get(args.profile).id
        except ProfileNotFoundError:
            # A removed profile's payouts stay in the history under its last name.
            wanted_name = args.profile.strip().casefold()
            known = [
                pid for pid, name in store.distinct_profiles() if name.casefold() == wanted_name
            ]
            if not known:
                raise CliError(f"--profile: there is no profile named {args.profile!r}") from None
            profile_id = known[0]
    currency = args.currency.strip().upper() if args.currency else None
    return HistoryFilter(
        text=args.search or "", states=states, currency=currency, profile_id=profile_id
    )


def _cmd_history_export(args: argparse.Namespace, ctx: Context) -> int:
    from cactus_desk.history import open_history
    from cactus_desk.history.export import export_csv
    from cactus_desk.history.types import SortKey

    states = _states(args.state)
    target = _export_target(args.output, ctx.data_dir, force=args.force) if args.output else None
    ctx.start_logging()
    decimals = {profile.id: profile.decimals for profile in _profiles(ctx).all()}
    with open_history(ctx.data_dir, ctx.store) as store:
        history_filter = _history_filter(args, ctx, store, states)
        if ctx.store:  # a team history: the export is noted in its audit trail first
            _note_team_export(ctx.store, history_filter, target)

        def export(stream: TextIO) -> int:
            # Oldest first, so an export reads like a ledger.
            return export_csv(
                store,
                history_filter,
                SortKey.CREATED_AT,
                False,
                stream,
                bom=args.bom,
                decimals=decimals,
            )

        if target is not None:
            try:
                count = _write_private(target, export, replace=args.force)
            except FileExistsError:
                raise CliError(
                    f"--output: {target} already exists; add --force to replace it"
                ) from None
            except OSError as exc:
                message = f"--output: cannot write {target}: {exc.strerror or exc}"
                raise CliError(message, EXIT_FAILURE) from None
            print(f"Exported {count} payout(s) to {target}.", file=ctx.stderr)
        else:
            export(ctx.stdout)
            ctx.stdout.flush()
    return EXIT_OK


def _note_team_export(store: str, history_filter: HistoryFilter, target: Path | None) -> None:
    from cactus_desk.history.approvals import note_history_export
    from cactus_desk.history.types import HistoryError

    try:
        note_history_export(
            store, {"filter": repr(history_filter), "to": "stdout" if target is None else "file"}
        )
    except HistoryError as exc:
        raise CliError(
            f"The export was not noted in the audit trail: {exc}", EXIT_FAILURE
        ) from None


def _export_target(text: str, data_dir: Path, *, force: bool) -> Path:
    """The ``--output`` path, refused inside the data folder and, without ``force``, if taken."""
    target = Path(text).expanduser()
    resolved = target.resolve()
    folder = data_dir.resolve()
    if resolved == folder or folder in resolved.parents:
        raise CliError(
            f"--output: {target} is inside the data folder {folder}; write the export elsewhere"
        )
    if target.is_dir():
        raise CliError(f"--output: cannot write {target}: it is a folder", EXIT_FAILURE)
    if (target.exists() or target.is_symlink()) and not force:
        raise CliError(f"--output: {target} already exists; add --force to replace it")
    return target


def _write_private(path: Path, write: Callable[[TextIO], int], *, replace: bool = False) -> int:
    """Write an export to ``path``, mode 0600: it names recipients.

    A new file is created exclusively; with ``replace`` the export is written beside it and
    then renamed over it, so an existing file (or a link) is replaced, never written through.
    """
    if not replace:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            return write(handle)
    import tempfile

    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or None)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            count = write(handle)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return count


def _cmd_history_restore(args: argparse.Namespace, ctx: Context) -> int:
    from cactus_desk.history import (
        history_location,
        newest_backup,
        restore_backup,
        start_new_history,
    )
    from cactus_desk.history.types import BackupError
    from cactus_desk.instance_lock import InstanceLock

    if ctx.store:
        raise CliError(
            "history restore works on this computer's history; a team history is backed up "
            "and restored on its database server (pg_dump/pg_restore or continuous archiving). "
            "Add --store local to restore the local history.",
            EXIT_FAILURE,
        )
    lock = InstanceLock(ctx.data_dir)
    if ctx.data_dir.is_dir() and not lock.acquire():
        raise CliError(f"{lock.message} Close it before restoring.", EXIT_FAILURE)
    ctx.start_logging()
    try:
        if args.start_empty:
            try:
                start_new_history(ctx.data_dir).close()
            except BackupError as exc:
                raise CliError(str(exc), EXIT_FAILURE) from None
            log.warning("A new, empty history was started on request in %s", ctx.data_dir)
            print(
                "Started a new, empty history; files kept aside and backups are unchanged.",
                file=ctx.stdout,
            )
            return EXIT_OK
        history = history_location(ctx.data_dir)
        if history.is_file() and history.stat().st_size > 0:
            raise CliError(
                f"a history is in place at {history}; restore puts a backup only where the "
                "history is missing (a damaged one is set aside when it is opened)",
                EXIT_FAILURE,
            )
        backup = Path(args.backup).expanduser() if args.backup else newest_backup(ctx.data_dir)
        if backup is None:
            raise CliError(f"there is no backup in {ctx.data_dir / 'backups'}", EXIT_FAILURE)
        try:
            history = restore_backup(ctx.data_dir, backup)
        except BackupError as exc:
            raise CliError(str(exc), EXIT_FAILURE) from None
    finally:
        lock.release()
    log.warning("History restored from the backup %s", backup.name)
    print(
        f"Restored {history} from the backup {backup.name}. Payouts sent after that backup are "
        "not in it: check them with Cactus. Restart any `cactus-desk receiver` on this folder.",
        file=ctx.stdout,
    )
    return EXIT_OK


def _cmd_payout_send(args: argparse.Namespace, ctx: Context) -> int:
    from cactus_desk import payout_command

    return payout_command.run(args, ctx)


def _cmd_batch(args: argparse.Namespace, ctx: Context) -> int:
    from cactus_desk import batch_command

    return batch_command.run(args, ctx)


# --- invoice statuses: the callback receiver, callback import, manual reconciliation ---------


def _add_status_commands(commands: Any, history_commands: Any) -> None:
    receiver = commands.add_parser(
        "receiver", help="receive the gateway's status callbacks into the history (needs uvicorn)"
    )
    receiver.add_argument(
        "--listen", metavar="HOST:PORT", default="127.0.0.1:8787", help="default 127.0.0.1:8787"
    )
    receiver.add_argument("--profile", metavar="NAME", required=True, help="whose salt verifies")
    receiver.set_defaults(handler=_cmd_receiver)

    callbacks = commands.add_parser("callbacks", help="status callbacks")
    callback_commands = callbacks.add_subparsers(dest="callbacks_command", metavar="ACTION")
    callback_commands.required = True
    load = callback_commands.add_parser(
        "import", help="apply a file of callbacks (JSON lines, or CSV with a header)"
    )
    load.add_argument("file", help="the file to import")
    load.add_argument("--profile", metavar="NAME", required=True, help="whose salt verifies")
    load.add_argument("--format", choices=("jsonl", "csv"), help="default: from the file")
    load.set_defaults(handler=_cmd_callbacks_import)
    prune = callback_commands.add_parser(
        "prune-rejected",
        help="delete unverified rejected callbacks older than DAYS (audited; verified ones stay)",
    )
    prune.add_argument(
        "--older-than", metavar="DAYS", type=_days, required=True, help="age in whole days"
    )
    prune.set_defaults(handler=_cmd_callbacks_prune)

    reconcile = history_commands.add_parser(
        "reconcile", help="set a payout's final status by hand, with a note"
    )
    reconcile.add_argument("record", type=_positive_int, help="the history record number")
    reconcile.add_argument(
        "--status", required=True, choices=("success", "declined", "4", "5"), help="final status"
    )
    reconcile.add_argument("--note", required=True, help="how the final status was established")
    reconcile.add_argument("--invoice-id", metavar="ID", help="the gateway's invoice ID, if known")
    reconcile.set_defaults(handler=_cmd_history_reconcile)


def _cmd_receiver(args: argparse.Namespace, ctx: Context) -> int:
    from cactus_desk.receiver.serve import ReceiverError, run_receiver

    ctx.start_logging()
    try:
        return run_receiver(
            ctx.data_dir, args.profile, args.listen, out=ctx.stdout, store=ctx.store
        )
    except ReceiverError as exc:
        raise CliError(str(exc), EXIT_FAILURE) from None


def _cmd_callbacks_import(args: argparse.Namespace, ctx: Context) -> int:
    from cactus_desk.callbacks.reconcile import ImportFileError, import_file
    from cactus_desk.history import open_history
    from cactus_desk.receiver.serve import ReceiverError, load_profile_salt

    try:
        profile, salt = load_profile_salt(ctx.data_dir, args.profile, ctx.store)
    except ReceiverError as exc:
        raise CliError(f"--profile: {exc}") from None
    ctx.start_logging()
    with open_history(ctx.data_dir, ctx.store) as store:
        try:
            report = import_file(
                store,
                Path(args.file).expanduser(),
                salt,
                merchant_id=profile.merchant_id,
                site_id=profile.site_id,
                fmt=args.format,
            )
        except ImportFileError as exc:
            raise CliError(str(exc), EXIT_FAILURE) from None
    log.info("Imported callbacks from a file: %s", report.lines()[0])
    print("\n".join(report.lines()), file=ctx.stdout)
    if report.stopped:
        print(f"{PROG}: error: import stopped: {report.stopped}", file=ctx.stderr)
    return EXIT_OK if not report.rejected_count and not report.stopped else EXIT_FAILURE


def _days(text: str) -> int:
    from cactus_desk.callbacks.prune import MAX_DAYS

    if not (text.strip().isascii() and text.strip().isdigit()) or int(text) > MAX_DAYS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days from 0 to {MAX_DAYS}")
    return int(text)


def _cmd_callbacks_prune(args: argparse.Namespace, ctx: Context) -> int:
    from cactus_desk.callbacks.prune import prune_rejected
    from cactus_desk.history import open_history

    ctx.start_logging()
    with open_history(ctx.data_dir, ctx.store) as store:
        report = prune_rejected(store, args.older_than)
    log.info("%s", report.line())
    print(report.line(), file=ctx.stdout)
    return EXIT_OK


def _cmd_history_reconcile(args: argparse.Namespace, ctx: Context) -> int:
    from cactus_desk.callbacks.reconcile import ReconcileError, set_final_state
    from cactus_desk.history import open_history
    from cactus_desk.payouts.statuses import status_label

    status = {"success": 4, "declined": 5}.get(args.status) or int(args.status)
    ctx.start_logging()
    with open_history(ctx.data_dir, ctx.store) as store:
        try:
            set_final_state(store, args.record, status, args.note, invoice_id=args.invoice_id)
        except ReconcileError as exc:
            option = {"note": "--note: ", "status": "--status: ", "invoice_id": "--invoice-id: "}
            raise CliError(option.get(exc.field, "") + str(exc)) from None
    log.info("History record %d set to %s by hand", args.record, status)
    print(f"Record {args.record} is now {status_label(status)}, set by hand.", file=ctx.stdout)
    return EXIT_OK
