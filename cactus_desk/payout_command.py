"""``cactus-desk payout send``: one payout from the command line, through the window's own
checks and send path (``payouts.send.SendService``).

It validates like the form, prints what will be sent, asks on a terminal (``--yes`` skips
that), records the attempt, sends it and prints the outcome. The exit status says how it ended
(``EXIT_CODES``); 0 only for a payout the gateway accepted.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TextIO

if TYPE_CHECKING:
    from pathlib import Path

    from cactus_desk.payouts.send import Prepared, SendResult
    from cactus_desk.profiles import Profile

log = logging.getLogger(__name__)

EXIT_ACCEPTED = 0
EXIT_ERROR = 1  # the history, profiles or keyring could not be used; nothing sent
EXIT_USAGE = 2  # invalid input, or not confirmed; nothing recorded, nothing sent
EXIT_REJECTED = 3  # the gateway refused it, verifiably: nothing was paid
EXIT_NOT_SENT = 4  # nothing left this computer (recorded as not sent, or not recorded at all)
EXIT_IN_DOUBT = 5  # the payout may exist at the gateway: do not send it again
EXIT_SUBMITTED = 6  # submitted for approval on a team history: nothing was sent yet

# By ``SendCode`` value (a ``StrEnum``): the window's start must not import the send path.
EXIT_CODES = {
    "accepted": EXIT_ACCEPTED,
    "invalid": EXIT_USAGE,
    "needs_confirmation": EXIT_USAGE,
    "rejected": EXIT_REJECTED,
    "not_sent": EXIT_NOT_SENT,
    "request_id_taken": EXIT_NOT_SENT,
    "history_unavailable": EXIT_NOT_SENT,
    "resend_refused": EXIT_NOT_SENT,
    "busy": EXIT_NOT_SENT,
    "unknown": EXIT_IN_DOUBT,
    "refused_unverified": EXIT_IN_DOUBT,
    "outcome_not_saved": EXIT_IN_DOUBT,
    "failed": EXIT_IN_DOUBT,
}

EPILOG = """\
Confirmation: on a terminal the summary is shown and you are asked to confirm; --yes skips
that question (and is required when standard input is not a terminal). A payout that repeats
one of the last 24 hours (same login, recipient, amount, currency and method, and not
verifiably refused or unsent) is sent only with --yes, or after a confirmation that names the
repeat on a terminal. The first LIVE payout in a currency whose decimals Cactus does not
document needs the number of minor units typed on a terminal once; --yes does not replace that.

Exit status:
  0  accepted by the gateway
  1  the history, the profiles or the keyring could not be used; nothing was sent
  2  invalid input (the message names the field) or not confirmed; nothing was recorded
  3  rejected by the gateway (a verified refusal: nothing was paid)
  4  not sent: nothing left this computer (no salt, gateway unreachable before sending,
     request id already in the history, history not writable)
  5  in doubt: the payout may exist at the gateway (outcome unknown, refusal not verified,
     outcome not saved); do not send it again, check the history and Cactus
  6  submitted for approval (a team history's policy holds it): nothing was sent yet
"""


class Context(Protocol):
    """What the command needs from ``commands.Context``."""

    # Read-only properties, so a frozen dataclass satisfies the protocol.
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


def add_parser(commands: Any, handler: Callable[[argparse.Namespace, Any], int]) -> None:
    """Add ``payout send`` to the ``cactus-desk`` subcommands."""
    payout = commands.add_parser("payout", help="send a payout")
    payout_commands = payout.add_subparsers(dest="payout_command", metavar="ACTION")
    payout_commands.required = True
    send = payout_commands.add_parser(
        "send",
        help="send one payout and print its outcome (exit 0 only when accepted)",
        description="Send one payout through a profile, with the same checks as the window.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    send.add_argument("--profile", required=True, metavar="P", help="the profile's name")
    send.add_argument("--currency", required=True, metavar="C", help="e.g. RUB")
    send.add_argument("--method", required=True, metavar="M", help="wire name, e.g. card")
    send.add_argument("--site-login", required=True, metavar="L", help="the user's login")
    send.add_argument("--amount", required=True, metavar="A", help="in major units, e.g. 1500.00")
    send.add_argument(
        "--field",
        action="append",
        default=[],
        type=_field_item,
        metavar="NAME=VALUE",
        help="a field of the method by its wire name, e.g. card_number=4111... (repeatable; "
        "split at the first '='; true/false for a checkbox)",
    )
    send.add_argument(
        "--request-id", metavar="ID", help="the request id (default: a new one, printed)"
    )
    send.add_argument("--yes", action="store_true", help="send without asking (see below)")
    send.set_defaults(handler=handler)


def _field_item(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: write NAME=VALUE, e.g. card_number=4111...")
    return name.strip(), value


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Send the payout ``args`` describe; return the exit status."""
    from cactus_desk.history import open_profiles
    from cactus_desk.profiles import ProfileNotFoundError, ProfileStoreError

    try:
        profile = open_profiles(ctx.data_dir, ctx.store).get(args.profile)
    except ProfileNotFoundError as exc:  # a KeyError: its message is its first argument
        return _fail(ctx, f"--profile: {exc.args[0] if exc.args else exc}", EXIT_USAGE)
    except ProfileStoreError as exc:
        return _fail(ctx, str(exc), EXIT_ERROR)
    draft = _draft(args, profile)
    if isinstance(draft, str):
        return _fail(ctx, draft, EXIT_USAGE)

    from cactus_desk.instance_lock import InstanceLock

    # The window settles interrupted attempts when it starts: it must not settle this one
    # while it is being sent, so the command sends only while no window holds the folder.
    lock = InstanceLock(ctx.data_dir)
    if ctx.data_dir.is_dir() and not lock.acquire():
        return _fail(ctx, f"{lock.message} Send the payout from the window instead.", EXIT_ERROR)
    try:
        return _send(args, ctx, profile, draft)
    finally:
        lock.release()


def _draft(args: argparse.Namespace, profile: Profile) -> Any:
    from cactus_desk.catalog import UnknownMethodError, load_catalog
    from cactus_desk.payouts.draft import PayoutDraft, new_request_id

    fields: dict[str, str | bool] = {}
    try:
        method = load_catalog().method(args.method)
    except UnknownMethodError:
        method = None
    kinds = {spec.wire: spec.kind for spec in method.fields} if method is not None else {}
    for name, value in args.field:
        if name in fields:
            return f"--field {name}: given twice"
        if method is not None and name not in kinds:
            known = ", ".join(sorted(kinds)) or "none"
            return f"--field {name}: {method.wire} has no such field (its fields: {known})"
        if kinds.get(name) == "bool":
            flag = value.strip().lower()
            if flag not in ("true", "false"):
                return f"--field {name}: write true or false"
            fields[name] = flag == "true"
        else:
            fields[name] = value
    return PayoutDraft(
        profile_id=profile.id,
        site_login=args.site_login,
        currency=args.currency.strip().upper(),
        method=args.method.strip(),
        amount_text=args.amount,
        fields=fields,
        request_id=args.request_id if args.request_id is not None else new_request_id(),
    )


_OPTION = {
    "site_login": "--site-login",
    "amount": "--amount",
    "currency": "--currency",
    "method": "--method",
    "request_id": "--request-id",
}


def _send(args: argparse.Namespace, ctx: Context, profile: Profile, draft: Any) -> int:
    from cactus_desk.history import open_history
    from cactus_desk.history.types import HistoryError, HistoryOpenError
    from cactus_desk.payouts.send import SendResult, SendService
    from cactus_desk.secrets import SecretStore

    ctx.start_logging()
    try:
        store = open_history(ctx.data_dir, ctx.store)
    except HistoryOpenError as exc:
        return _fail(ctx, str(exc), EXIT_ERROR)
    secrets = SecretStore()
    service = SendService(store, lambda chosen: secrets.get_salt(chosen.id))
    try:
        prepared = service.prepare(draft, profile)
        if isinstance(prepared, SendResult):
            for key, message in prepared.errors.items():
                option = _OPTION.get(key, f"--field {key}")
                print(f"{option}: {message}", file=ctx.stderr)
            if not prepared.errors:
                print(f"cactus-desk: error: {prepared.message}", file=ctx.stderr)
            return EXIT_CODES[prepared.code]
        _print_summary(ctx.stdout, prepared)
        from cactus_desk import payout_approval

        try:
            held = payout_approval.approvals_needed(ctx.store, prepared.payout)
        except HistoryError as exc:
            return _fail(ctx, f"{exc} Nothing was sent.", EXIT_ERROR)
        refusal = _confirm(args, ctx, prepared, submit=bool(held))
        if refusal is not None:
            return _fail(ctx, refusal, EXIT_USAGE)
        if held:
            assert ctx.store is not None
            return payout_approval.submit(ctx.store, prepared.payout, held, ctx.stdout, ctx.stderr)
        result = service.send(prepared.payout, profile)
        if prepared.confirm_units and result.accepted:
            _remember_units(ctx, profile, prepared)
    finally:
        service.close()
        store.close()
    _print_result(ctx.stdout, result)
    return EXIT_CODES[result.code]


def _print_summary(out: TextIO, prepared: Prepared) -> None:
    from cactus_desk.catalog import load_catalog

    payout = prepared.payout
    method = load_catalog().method(payout.method)
    env = "LIVE: this sends real money" if payout.is_live else "SANDBOX: no real money"
    lines = [
        env,
        f"Profile:     {payout.target.profile_name}",
        f"Amount:      {prepared.amount_major} {payout.currency} "
        f"= {payout.amount_minor} minor units ({prepared.decimals} decimals)",
        f"Method:      {method.label} ({method.wire})",
        f"Site login:  {payout.site_login}",
    ]
    labels = {spec.wire: spec.label for spec in method.fields}
    for wire, value in payout.masked_fields().items():
        lines.append(f"{labels.get(wire, wire) + ':':<12} {value}")
    lines.append(f"Request ID:  {payout.request_id}")
    for record in prepared.repeats:
        lines.append(
            f"REPEAT: the same payout was sent in the last 24 hours: request {record.request_id} "
            f"(history record {record.id}, {record.state.label})"
        )
    print("\n".join(lines), file=out, flush=True)


def _confirm(
    args: argparse.Namespace, ctx: Context, prepared: Prepared, *, submit: bool = False
) -> str | None:
    """None when the person confirmed; else why nothing is sent."""
    tty = ctx.stdin.isatty()
    payout = prepared.payout
    if prepared.confirm_units:
        if not tty:
            return (
                f"the first LIVE payout in {payout.currency} with {prepared.decimals} decimals "
                "needs its minor units confirmed: run this on a terminal (or send one from "
                "the window) once; nothing was sent"
            )
        typed = _ask(
            ctx,
            f"Cactus does not document {payout.currency}'s decimals; type the number of "
            f"minor units to send ({payout.amount_minor}): ",
        )
        if typed != str(payout.amount_minor):
            return "the minor units were not confirmed; nothing was sent"
    if args.yes:
        return None
    if not tty:
        what = "a repeat of a recent payout" if prepared.repeats else "this payout"
        return f"not confirmed: add --yes to send {what} without a terminal; nothing was sent"
    question = "Submit this payout for approval?" if submit else "Send this payout?"
    if prepared.repeats:
        question = "This repeats a payout of the last 24 hours. Send it anyway?"
    if _ask(ctx, f"{question} [y/N] ").lower() not in ("y", "yes"):
        return "not confirmed; nothing was sent"
    return None


def _ask(ctx: Context, prompt: str) -> str:
    print(prompt, end="", file=ctx.stdout, flush=True)
    return ctx.stdin.readline().strip()


def _remember_units(ctx: Context, profile: Profile, prepared: Prepared) -> None:
    from cactus_desk.history import open_profiles
    from cactus_desk.profiles import Profile, ProfileStoreError

    store = open_profiles(ctx.data_dir, ctx.store)
    code = prepared.payout.currency
    try:
        current = store.get_by_id(profile.id)
        confirmed = {**current.units_confirmed, code: prepared.decimals}
        store.update(Profile.model_validate({**current.model_dump(), "units_confirmed": confirmed}))
    except (LookupError, ProfileStoreError) as exc:
        log.warning("The confirmation of %s minor units was not saved: %s", code, exc)


def _print_result(out: TextIO, result: SendResult) -> None:
    state = result.state.label if result.state is not None else "not recorded"
    lines = [f"Outcome:     {result.code} (history: {state})"]
    if result.record_id is not None:
        lines.append(f"Record:      {result.record_id}")
    if result.invoice_id:
        lines.append(f"Invoice ID:  {result.invoice_id}")
    lines.append(f"Request ID:  {result.request_id}")
    lines.append(result.message)
    print("\n".join(lines), file=out, flush=True)


def _fail(ctx: Context, message: str, code: int) -> int:
    print(f"cactus-desk: error: {message}", file=ctx.stderr)
    return code
