"""``cactus-desk approvals ...``: payouts waiting for a second person, on a team history.

``list`` shows them (``--format json`` for scripts), ``approve ID --note TEXT`` approves as
this login and, once the payout has all its approvals and this desk holds the profile's salt,
sends it through the one send path (``payouts.send.SendService``) and prints the outcome;
``send ID`` sends an approved payout later (e.g. from a desk that holds the salt);
``reject ID --reason TEXT`` and ``withdraw ID`` (the maker) end a request. The database
decides who may do what; its reason is printed when it refuses.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cactus_desk.payout_command import EXIT_CODES
from cactus_desk.team_command import (
    EXIT_DENIED,
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    Context,
    TeamCommandError,
)

if TYPE_CHECKING:
    from cactus_desk.history.approvals import ApprovalRequest, Conn

SOLO = (
    "approvals work on a team history (--store postgresql://USER@HOST:PORT/DB or "
    "CACTUS_DESK_STORE); this computer's own history sends without approvals"
)


def add_parser(commands: Any, handler: Callable[[argparse.Namespace, Any], int]) -> None:
    """Add ``approvals`` and its actions to the ``cactus-desk`` subcommands."""
    approvals = commands.add_parser(
        "approvals", help="payouts waiting for approval on a team history"
    )
    actions = approvals.add_subparsers(dest="approvals_command", metavar="ACTION")
    actions.required = True
    listing = actions.add_parser("list", help="list the payouts submitted for approval")
    listing.add_argument("--format", choices=("text", "json"), default="text")
    listing.add_argument(
        "--all", action="store_true", help="also those decided, withdrawn, expired or sent"
    )
    listing.set_defaults(handler=handler, approvals_action=list_command)
    approve = actions.add_parser(
        "approve",
        help="approve a payout; with its approvals complete this desk sends it",
        description="Approve as this login. When the payout has every approval it needs and "
        "this computer holds the profile's salt, it is sent at once and the outcome printed.",
    )
    approve.add_argument("id", type=int, metavar="ID")
    approve.add_argument("--note", required=True, metavar="TEXT", help="why it is approved")
    approve.set_defaults(handler=handler, approvals_action=approve_command)
    send = actions.add_parser("send", help="send an approved payout from this desk")
    send.add_argument("id", type=int, metavar="ID")
    send.set_defaults(handler=handler, approvals_action=send_command)
    reject = actions.add_parser("reject", help="reject a payout: it is never sent")
    reject.add_argument("id", type=int, metavar="ID")
    reject.add_argument("--reason", required=True, metavar="TEXT")
    reject.set_defaults(handler=handler, approvals_action=reject_command)
    withdraw = actions.add_parser("withdraw", help="withdraw your own payout before approval")
    withdraw.add_argument("id", type=int, metavar="ID")
    withdraw.set_defaults(handler=handler, approvals_action=withdraw_command)


def _url(ctx: Context) -> str:
    from cactus_desk.history import check_store_url

    if not ctx.store:
        raise TeamCommandError(SOLO, EXIT_USAGE)
    try:
        return check_store_url(ctx.store).url
    except ValueError as exc:
        raise TeamCommandError(str(exc), EXIT_USAGE) from None


def _run(ctx: Context, action: Callable[[Conn], Any]) -> Any:
    from cactus_desk.history.approvals import ApprovalRefusedError, approvals_connection
    from cactus_desk.history.types import HistoryError, HistoryPermissionError

    url = _url(ctx)
    try:
        with approvals_connection(url) as conn:
            return action(conn)
    except (ApprovalRefusedError, HistoryPermissionError) as exc:
        raise TeamCommandError(str(exc), EXIT_DENIED) from None
    except HistoryError as exc:
        raise TeamCommandError(str(exc), EXIT_FAILURE) from None


def amount_text(request: ApprovalRequest) -> str:
    """The amount in major units as plain digits (``1500.50``)."""
    from cactus_desk.money import UnknownCurrencyError, format_major

    try:
        return format_major(request.amount_minor, request.currency, grouping=False)
    except UnknownCurrencyError:
        return f"{request.amount_minor} minor units"


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _as_json(request: ApprovalRequest) -> dict[str, Any]:
    return {
        "id": request.id,
        "request_id": request.request_id,
        "amount": amount_text(request),
        "currency": request.currency,
        "maker": request.maker,
        "state": request.state,
        "profile": request.profile_name,
        "site_login": request.site_login,
        "method": request.method,
        "required": request.required,
        "approvers": list(request.approvers),
        "created_at": _when(request.created_at),
        "expires_at": _when(request.expires_at),
        "payout_id": request.payout_id,
        "batch_id": request.batch_id,
        "totals": [
            {"currency": t.currency, "rows": t.rows, "amount": _major(t.amount_minor, t.currency)}
            for t in request.totals
        ],
    }


def _major(amount_minor: int, currency: str) -> str:
    from cactus_desk.money import UnknownCurrencyError, format_major

    try:
        return format_major(amount_minor, currency, grouping=False)
    except UnknownCurrencyError:
        return f"{amount_minor} minor units"


def list_command(args: argparse.Namespace, ctx: Context) -> int:
    """Print the requests (open ones unless ``--all``)."""
    from cactus_desk.history import approvals

    found = _run(ctx, lambda conn: approvals.list_requests(conn, open_only=not args.all))
    if args.format == "json":
        json.dump([_as_json(request) for request in found], ctx.stdout, indent=2)
        print(file=ctx.stdout)
        return EXIT_OK
    if not found:
        print("No payouts are waiting for approval.", file=ctx.stdout)
    for request in found:
        approvers = ", ".join(request.approvers) or "none yet"
        if request.is_batch:
            totals = "; ".join(
                f"{t.rows} rows {_major(t.amount_minor, t.currency)} {t.currency}"
                for t in request.totals
            )
            print(
                f"{request.id}\t{request.state}\tbatch {request.batch_id}: {totals}\t"
                f"{request.profile_name}\tby {request.maker} {_when(request.created_at)}\t"
                f"approvals {len(request.approvers)}/{request.required} ({approvers})",
                file=ctx.stdout,
            )
            continue
        print(
            f"{request.id}\t{request.state}\t{amount_text(request)} {request.currency}\t"
            f"{request.profile_name}\t{request.site_login}\t{request.method}\t"
            f"request {request.request_id}\tby {request.maker} {_when(request.created_at)}\t"
            f"approvals {len(request.approvers)}/{request.required} ({approvers})",
            file=ctx.stdout,
        )
    return EXIT_OK


def approve_command(args: argparse.Namespace, ctx: Context) -> int:
    """Approve; send when complete and this desk holds the salt."""
    from cactus_desk.history import approvals

    if not args.note.strip():
        raise TeamCommandError("--note: say why the payout is approved", EXIT_USAGE)
    state = _run(ctx, lambda conn: approvals.approve(conn, args.id, args.note))
    if state != "APPROVED":
        print(
            f"Approved request {args.id}; it waits for another approver before it is sent.",
            file=ctx.stdout,
        )
        return EXIT_OK
    print(f"Approved request {args.id}: it has every approval it needs.", file=ctx.stdout)
    return _send_approved(args.id, ctx)


def send_command(args: argparse.Namespace, ctx: Context) -> int:
    """Send an approved payout from this desk."""
    return _send_approved(args.id, ctx)


def _send_approved(approval_id: int, ctx: Context) -> int:
    from cactus_desk.approvals_desk import NoSalt, NotSentError, send_approved
    from cactus_desk.batch.sending import BatchOutcome
    from cactus_desk.history.approvals import ApprovalRefusedError
    from cactus_desk.history.types import HistoryError
    from cactus_desk.payout_command import _print_result

    store = _url(ctx)
    ctx.start_logging()
    try:
        result = send_approved(ctx.data_dir, store, approval_id)
    except ApprovalRefusedError as exc:
        raise TeamCommandError(f"{exc} Nothing was sent.", EXIT_DENIED) from None
    except (NotSentError, HistoryError) as exc:
        raise TeamCommandError(f"Not sent: {exc}", EXIT_FAILURE) from None
    if isinstance(result, NoSalt):
        print(result.message, file=ctx.stdout)
        return EXIT_OK
    if isinstance(result, BatchOutcome):
        return _print_batch(ctx, result)
    _print_result(ctx.stdout, result)
    return EXIT_CODES[result.code]


def _print_batch(ctx: Context, outcome: Any) -> int:
    """Each row not accepted, then the counts; the exit status as ``batch send``'s."""
    from cactus_desk.batch.sending import ALREADY, CANCELLED
    from cactus_desk.batch_approval import outcome_text
    from cactus_desk.payout_command import EXIT_IN_DOUBT, EXIT_NOT_SENT, EXIT_REJECTED
    from cactus_desk.payouts.send import MAY_HAVE_LEFT, SendCode
    from cactus_desk.payouts.states import State

    for result in outcome.results:
        if result.code not in (SendCode.ACCEPTED, ALREADY):
            print(f"line {result.line}: {result.request_id}: {result.message}", file=ctx.stdout)
    print(outcome_text(outcome), file=ctx.stdout)
    states = [result.state for result in outcome.results]
    # A row recorded before this run and still SUBMITTING may be in flight at another desk.
    if outcome.count(*MAY_HAVE_LEFT) or any(
        s is not None and (s.in_doubt or s is State.SUBMITTING) for s in states
    ):
        return EXIT_IN_DOUBT
    if outcome.count(CANCELLED):
        return EXIT_NOT_SENT
    if any(s in (State.REJECTED, State.NOT_SENT) for s in states):
        return EXIT_REJECTED
    return EXIT_OK


def reject_command(args: argparse.Namespace, ctx: Context) -> int:
    """Reject a request with a reason."""
    from cactus_desk.history import approvals

    if not args.reason.strip():
        raise TeamCommandError("--reason: say why the payout is rejected", EXIT_USAGE)
    _run(ctx, lambda conn: approvals.reject(conn, args.id, args.reason))
    print(f"Rejected request {args.id}: it will never be sent.", file=ctx.stdout)
    return EXIT_OK


def withdraw_command(args: argparse.Namespace, ctx: Context) -> int:
    """Withdraw this login's own request."""
    from cactus_desk.history import approvals

    _run(ctx, lambda conn: approvals.withdraw(conn, args.id))
    print(f"Withdrew request {args.id}: it will not be sent.", file=ctx.stdout)
    return EXIT_OK
