"""``cactus-desk team policy set``, ``team set-limit`` and ``team audit verify|export``.

Policies and limits are an admin's (the database refuses anyone else, and refuses a login
its own limit); amounts are typed in major units and kept in minor units.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cactus_desk.team_command import (
    EXIT_DENIED,
    EXIT_FAILURE,
    EXIT_OK,
    EXIT_USAGE,
    Context,
    TeamCommandError,
    _team_store,
    add_user_command,
)

EXIT_BROKEN = 4  # ``team audit verify``: the chain does not hold


def add_parsers(team_commands: Any, handler: Callable[[argparse.Namespace, Any], int]) -> None:
    """Add ``policy set``, ``set-limit`` and ``audit verify|export`` under ``team``, and
    ``--limit`` to ``team add-user``."""
    add_user = team_commands.choices["add-user"]
    add_user.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="CUR=AMOUNT",
        help="an approver's limit in one currency, e.g. RUB=500000 (repeatable)",
    )
    add_user.set_defaults(team_action=add_user_with_limits)
    policy = team_commands.add_parser("policy", help="approval policies (a team admin)")
    policy_actions = policy.add_subparsers(dest="policy_command", metavar="ACTION")
    policy_actions.required = True
    set_policy = policy_actions.add_parser(
        "set",
        help="require approvals for a profile's payouts in a currency",
        description="A payout at or above --approve-above needs one approval; at or above "
        "--second-approval-above, two by different approvers. Amounts in major units.",
    )
    set_policy.add_argument("profile", metavar="PROFILE", help="the profile's name")
    set_policy.add_argument("currency", metavar="CURRENCY", help="e.g. RUB")
    set_policy.add_argument("--approve-above", required=True, metavar="AMOUNT")
    set_policy.add_argument("--second-approval-above", metavar="AMOUNT")
    set_policy.add_argument(
        "--expire-after-hours",
        type=int,
        default=72,
        metavar="HOURS",
        help="pending approvals expire after this (default 72)",
    )
    set_policy.set_defaults(handler=handler, team_action=policy_set_command)
    set_limit = team_commands.add_parser(
        "set-limit", help="set an approver's limits per currency (a team admin)"
    )
    set_limit.add_argument("login", metavar="LOGIN")
    set_limit.add_argument(
        "--limit", action="append", required=True, metavar="CUR=AMOUNT", help="e.g. RUB=500000"
    )
    set_limit.set_defaults(handler=handler, team_action=set_limit_command)
    audit = team_commands.add_parser("audit", help="the team's tamper-evident audit trail")
    audit_actions = audit.add_subparsers(dest="audit_command", metavar="ACTION")
    audit_actions.required = True
    verify = audit_actions.add_parser("verify", help="check the hash chain; name a broken row")
    verify.set_defaults(handler=handler, team_action=audit_verify_command)
    export = audit_actions.add_parser("export", help="write the audit trail as CSV")
    export.add_argument("--output", "-o", type=Path, metavar="FILE", help="default: stdout")
    export.set_defaults(handler=handler, team_action=audit_export_command)


def add_user_with_limits(args: argparse.Namespace, ctx: Context) -> int:
    """``team add-user``, then the new login's limits (checked before the login is made)."""
    limits = parse_limits(args.limit)
    code = add_user_command(args, ctx)
    if limits:
        set_limits(ctx, _team_store(ctx, "add-user"), args.login, limits)
    return code


def parse_limits(items: list[str]) -> list[tuple[str, int]]:
    """``RUB=500000`` items as (currency, minor units); raises TeamCommandError."""
    from cactus_desk.money import AmountError, UnknownCurrencyError, currency, parse_amount

    limits = []
    for item in items:
        code, sep, amount = item.partition("=")
        code = code.strip().upper()
        if not sep or not code or not amount.strip():
            raise TeamCommandError(f"--limit {item!r}: write CURRENCY=AMOUNT, e.g. RUB=500000")
        try:
            limits.append((code, parse_amount(amount.strip(), currency(code))))
        except (AmountError, UnknownCurrencyError) as exc:
            raise TeamCommandError(f"--limit {item!r}: {exc}", EXIT_USAGE) from None
    return limits


def _run(ctx: Context, url: str, action: Callable[[Any], Any]) -> Any:
    from cactus_desk.history.approvals import ApprovalRefusedError, approvals_connection
    from cactus_desk.history.types import HistoryError, HistoryPermissionError

    ctx.start_logging()
    try:
        with approvals_connection(url) as conn:
            return action(conn)
    except (ApprovalRefusedError, HistoryPermissionError) as exc:
        raise TeamCommandError(str(exc), EXIT_DENIED) from None
    except HistoryError as exc:
        raise TeamCommandError(str(exc), EXIT_FAILURE) from None


def set_limits(ctx: Context, url: str, login: str, limits: list[tuple[str, int]]) -> None:
    """Set each limit of ``login`` and say so."""
    from cactus_desk.history import approvals
    from cactus_desk.money import format_major

    def apply(conn: Any) -> None:
        for code, minor in limits:
            approvals.set_limit(conn, login, code, minor)

    _run(ctx, url, apply)
    for code, minor in limits:
        print(f"{login} may approve up to {format_major(minor, code)} {code}.", file=ctx.stdout)


def set_limit_command(args: argparse.Namespace, ctx: Context) -> int:
    """Set an approver's limits."""
    url = _team_store(ctx, "set-limit")
    set_limits(ctx, url, args.login, parse_limits(args.limit))
    return EXIT_OK


def policy_set_command(args: argparse.Namespace, ctx: Context) -> int:
    """Set the approval policy of one profile and currency."""
    from cactus_desk.history import approvals, open_profiles
    from cactus_desk.money import (
        AmountError,
        UnknownCurrencyError,
        format_major,
        parse_amount,
        with_decimals,
    )
    from cactus_desk.profiles import ProfileNotFoundError, ProfileStoreError

    url = _team_store(ctx, "policy set")
    try:
        profile = open_profiles(ctx.data_dir, url).get(args.profile)
    except ProfileNotFoundError as exc:
        raise TeamCommandError(f"PROFILE: {exc.args[0] if exc.args else exc}", EXIT_USAGE) from None
    except ProfileStoreError as exc:
        raise TeamCommandError(str(exc)) from None
    code = args.currency.strip().upper()
    try:
        money = with_decimals(code, profile.decimals)
        first = parse_amount(args.approve_above, money)
        second = (
            None
            if args.second_approval_above is None
            else parse_amount(args.second_approval_above, money)
        )
    except (AmountError, UnknownCurrencyError) as exc:
        raise TeamCommandError(f"amount: {exc}", EXIT_USAGE) from None
    if second is not None and second < first:
        raise TeamCommandError(
            "--second-approval-above must not be below --approve-above", EXIT_USAGE
        )
    if not 1 <= args.expire_after_hours <= 8760:
        raise TeamCommandError("--expire-after-hours: from 1 to 8760", EXIT_USAGE)
    _run(
        ctx,
        url,
        lambda conn: approvals.set_policy(
            conn, profile.id, code, first, second, args.expire_after_hours
        ),
    )
    two = "" if second is None else f"; two approvals from {format_major(second, money)} {code}"
    print(
        f"{profile.name} {code}: one approval from {format_major(first, money)} {code}{two}; "
        f"pending approvals expire after {args.expire_after_hours} hours.",
        file=ctx.stdout,
    )
    return EXIT_OK


def audit_verify_command(args: argparse.Namespace, ctx: Context) -> int:
    """Check the chain; exit 4 naming the first broken row."""
    from cactus_desk.history import approvals as audit

    url = _team_store(ctx, "audit verify")
    check = _run(ctx, url, audit.verify)
    if check.intact:
        print(f"The audit trail holds: {check.rows} rows, the chain unbroken.", file=ctx.stdout)
        return EXIT_OK
    print(
        f"The audit trail is broken at row {check.broken_seq}: {check.problem}.",
        file=ctx.stdout,
    )
    return EXIT_BROKEN


def audit_export_command(args: argparse.Namespace, ctx: Context) -> int:
    """Write the trail as CSV to ``--output`` or stdout."""
    from cactus_desk.history import approvals as audit

    url = _team_store(ctx, "audit export")
    if args.output is None:
        _run(ctx, url, lambda conn: audit.export_csv(conn, ctx.stdout))
        return EXIT_OK
    if args.output.exists():
        raise TeamCommandError(f"{args.output} exists already; choose a new file", EXIT_USAGE)
    with args.output.open("x", encoding="utf-8", newline="") as stream:
        count = _run(ctx, url, lambda conn: audit.export_csv(conn, stream))
    print(f"Wrote {count} audit rows to {args.output}.", file=ctx.stdout)
    return EXIT_OK
