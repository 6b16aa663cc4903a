"""``cactus-desk batch``: templates, validating a batch file and sending it.

``batch send`` sends through the window's own send path (``payouts.send.SendService``), each
row recorded before it is sent with a request id derived from the file and the row; running
it again on the same file resumes that batch: only rows never recorded are sent, and rows
left in doubt (UNKNOWN) are never resent.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from cactus_desk.payout_command import (
    EXIT_ERROR,
    EXIT_IN_DOUBT,
    EXIT_NOT_SENT,
    EXIT_REJECTED,
    EXIT_USAGE,
    Context,
)

if TYPE_CHECKING:
    from cactus_desk.batch.reading import Table
    from cactus_desk.batch.sending import BatchOutcome, Progress, RowResult
    from cactus_desk.batch.validate import Batch
    from cactus_desk.history.port import HistoryStore
    from cactus_desk.profiles import Profile

EXIT_OK = 0
EXIT_BAD_ROWS = 1  # validate: at least one row has an error

SEND_EPILOG = """\
Each row is recorded in the history before it is sent, with the request id
cb-<batch>-<line> (the batch is named by the profile and the file's SHA-256) unless the
file has a request_id column. Running the command again on the same file resumes the batch:
rows already in the history are not sent again, whatever their state; a row whose outcome is
unknown is never resent. --pay-failed-again sends the rows that were refused (verifiably, or
never sent) as a new batch with new request ids.

Exit status:
  0  every row accepted (now or in an earlier run)
  1  the file, history, profiles or keyring could not be used; nothing was sent
  2  a row is invalid, or the batch was not confirmed; nothing was sent
  3  at least one row was refused (see the report); none is in doubt
  4  cancelled, or rows were not sent (nothing left this computer for those rows)
  5  at least one row is in doubt: it may exist at the gateway; do not send it again
  6  on a team history, the batch's total needs approval: it was submitted for approval
     as one request and nothing was sent (an approver's desk sends it once approved)
"""


def add_parser(commands: Any, handler: Callable[[argparse.Namespace, Any], int]) -> None:
    """Add ``batch template|validate|send`` to the ``cactus-desk`` subcommands."""
    batch = commands.add_parser("batch", help="batch payouts from CSV or spreadsheet files")
    actions = batch.add_subparsers(dest="batch_command", metavar="ACTION")
    actions.required = True
    template = actions.add_parser("template", help="write a template for a method")
    template.add_argument("--method", required=True, metavar="M", help="wire name, e.g. card")
    template.add_argument(
        "--output", required=True, type=Path, metavar="FILE", help="FILE.xlsx or FILE.csv"
    )
    template.set_defaults(handler=handler)
    validate = actions.add_parser(
        "validate", help="check every row; print each bad row (exit 1 when any)"
    )
    validate.add_argument("file", type=Path, metavar="FILE")
    validate.add_argument("--profile", required=True, metavar="P", help="the profile's name")
    validate.set_defaults(handler=handler)
    send = actions.add_parser(
        "send",
        help="send a batch file (running it again resumes it)",
        epilog=SEND_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    send.add_argument("file", type=Path, metavar="FILE")
    send.add_argument("--profile", required=True, metavar="P", help="the profile's name")
    send.add_argument("--yes", action="store_true", help="send without asking")
    send.add_argument(
        "--concurrency", type=int, default=None, metavar="N", help="payouts in flight (default 4)"
    )
    send.add_argument(
        "--report", type=Path, metavar="FILE", help="also write the report here (.xlsx or .csv)"
    )
    send.add_argument(
        "--pay-failed-again",
        action="store_true",
        help="send the refused rows of this file's batch as a new batch",
    )
    send.set_defaults(handler=handler)


def run(args: argparse.Namespace, ctx: Context) -> int:
    """Run ``batch <action>``; return the exit status."""
    if args.batch_command == "template":
        return _template(args, ctx)
    table = _read(args.file, ctx)
    if table is None:
        return EXIT_USAGE
    profile = _profile(args.profile, ctx)
    if profile is None:
        return EXIT_USAGE
    if args.batch_command == "validate":
        return _validate(table, profile, ctx)
    from cactus_desk.instance_lock import InstanceLock

    # Like ``payout send``: the window settles interrupted attempts when it starts, so a
    # batch is sent only while no window holds the folder.
    lock = InstanceLock(ctx.data_dir)
    if ctx.data_dir.is_dir() and not lock.acquire():
        return _fail(ctx, f"{lock.message} Send the batch from the window instead.", EXIT_ERROR)
    try:
        return _send(args, ctx, table, profile)
    finally:
        lock.release()


def _template(args: argparse.Namespace, ctx: Context) -> int:
    from cactus_desk.batch.template import write_template
    from cactus_desk.catalog import UnknownMethodError, load_catalog

    try:
        method = load_catalog().method(args.method)
    except UnknownMethodError:
        known = ", ".join(spec.wire for spec in load_catalog().methods)
        return _fail(ctx, f"--method {args.method}: no such method (known: {known})", EXIT_USAGE)
    if args.output.suffix.lower() not in (".xlsx", ".csv"):
        return _fail(ctx, "--output: name a .xlsx or .csv file", EXIT_USAGE)
    try:
        write_template(method, args.output)
    except OSError as exc:
        return _fail(ctx, f"--output: cannot write {args.output} ({exc.strerror})", EXIT_ERROR)
    print(f"Template for {method.label} ({method.wire}) written to {args.output}", file=ctx.stdout)
    return EXIT_OK


def _read(path: Path, ctx: Context) -> Table | None:
    from cactus_desk.batch.reading import BatchFileError, read_table

    try:
        return read_table(path)
    except BatchFileError as exc:
        _fail(ctx, str(exc), EXIT_USAGE)
        return None


def _profile(name: str, ctx: Context) -> Profile | None:
    from cactus_desk.history import open_profiles
    from cactus_desk.profiles import ProfileNotFoundError, ProfileStoreError

    try:
        return open_profiles(ctx.data_dir, ctx.store).get(name)
    except ProfileNotFoundError as exc:
        _fail(ctx, f"--profile: {exc.args[0] if exc.args else exc}", EXIT_USAGE)
    except ProfileStoreError as exc:
        _fail(ctx, str(exc), EXIT_USAGE)
    return None


def _balances(profile: Profile) -> Callable[[], dict[str, Decimal]]:
    def read() -> dict[str, Decimal]:
        from cactus_desk.gateway.client import CactusClient
        from cactus_desk.secrets import SecretStore

        salt = SecretStore().get_salt(profile.id)
        if not salt:
            raise LookupError("no site salt on this desk")
        client = CactusClient(profile.base_url, read_timeout=30, ca_bundle=profile.ca_bundle)
        try:
            answer = client.balance(profile.merchant_id, profile.site_id, salt)
        finally:
            client.close()
        return {
            entry.currency.upper(): Decimal(str(entry.available))
            for entry in answer.balances
            if entry.currency
        }

    return read


def _checked(
    table: Table, profile: Profile, ctx: Context, store: HistoryStore | None, name: str = ""
) -> Batch:
    from cactus_desk.batch.columns import MappingMemory, mapping_for
    from cactus_desk.batch.validate import validate_batch

    mapping = mapping_for(table.headers, MappingMemory(ctx.data_dir))
    return validate_batch(
        table, mapping, profile, history=store, balances=_balances(profile), file_name=name
    )


def _print_problems(batch: Batch, out: TextIO) -> None:
    for problem in batch.problems:
        print(f"error: {problem}", file=out)
    for row in batch.bad_rows:
        for key, message in row.errors.items():
            print(f"line {row.line}: {key}: {message}", file=out)


def _print_warnings(batch: Batch, out: TextIO) -> None:
    for warning in batch.warnings:
        print(f"warning: {warning}", file=out)
    for row in batch.rows:
        for warning in row.warnings:
            print(f"warning: line {row.line}: {warning}", file=out)


def _print_totals(batch: Batch, out: TextIO) -> None:
    counts = batch.counts()
    for code in sorted(batch.totals):
        balance = ""
        if code in batch.balances:
            cur = batch.profile.currency(code)
            from cactus_desk.money import format_major

            balance = f" (available {format_major(batch.balances[code], cur)})"
        print(
            f"  {code}: {counts.get(code, 0)} payouts, {batch.total_text(code)}{balance}", file=out
        )


def _open_store(ctx: Context) -> HistoryStore | None:
    from cactus_desk.history import open_history
    from cactus_desk.history.types import HistoryOpenError

    try:
        return open_history(ctx.data_dir, ctx.store)
    except HistoryOpenError as exc:
        _fail(ctx, str(exc), EXIT_ERROR)
        return None


def _validate(table: Table, profile: Profile, ctx: Context) -> int:
    store = _open_store(ctx)
    if store is None:
        return EXIT_ERROR
    try:
        batch = _checked(table, profile, ctx, store)
    finally:
        store.close()
    _print_problems(batch, ctx.stdout)
    _print_warnings(batch, ctx.stdout)
    bad = len(batch.bad_rows)
    print(
        f"{len(batch.rows)} rows, {bad} with errors; batch {batch.batch_id}, "
        f"file SHA-256 {batch.file_sha256}",
        file=ctx.stdout,
    )
    _print_totals(batch, ctx.stdout)
    return EXIT_OK if batch.ok else EXIT_BAD_ROWS


def _send(args: argparse.Namespace, ctx: Context, table: Table, profile: Profile) -> int:
    from cactus_desk.payouts.recovery import recover_interrupted
    from cactus_desk.payouts.send import SendService
    from cactus_desk.secrets import SecretStore

    ctx.start_logging()
    store = _open_store(ctx)
    if store is None:
        return EXIT_ERROR
    secrets = SecretStore()
    service = SendService(store, lambda chosen: secrets.get_salt(chosen.id))
    try:
        # This process holds the folder: rows a killed run left SUBMITTING get their
        # truthful state (not sent, or unknown) and are then never sent again here.
        recover_interrupted(store)
        batch = _checked(table, profile, ctx, store, args.file.name)
        if args.pay_failed_again and batch.ok:
            from cactus_desk.batch.sending import existing_records, failed_again_batch

            batch = failed_again_batch(batch, existing_records(store, batch))
        if not batch.ok:
            _print_problems(batch, ctx.stderr)
            print("Nothing was sent.", file=ctx.stderr)
            return EXIT_USAGE
        held = _held(ctx, batch)
        if held is None:
            return EXIT_ERROR
        if held:
            return _submit(args, ctx, batch, held)
        refusal = _confirm(args, ctx, batch)
        if refusal is not None:
            return _fail(ctx, refusal, EXIT_USAGE)
        outcome = _run(args, ctx, batch, service)
        return _finish(args, ctx, batch, store, outcome)
    finally:
        service.close()
        store.close()


def _held(ctx: Context, batch: Batch) -> int | None:
    """0 on this computer's own history or below the team's thresholds; else the approvals
    the team's policy asks for the batch; None (said why) when the policy cannot be read."""
    if not ctx.store:
        return 0
    from cactus_desk.batch_approval import batch_approvals_needed
    from cactus_desk.history.types import HistoryError

    try:
        return batch_approvals_needed(ctx.store, batch)
    except HistoryError as exc:
        _fail(ctx, f"the team's approval policies could not be read ({exc}); nothing was sent", 1)
        return None


def _submit(args: argparse.Namespace, ctx: Context, batch: Batch, needed: int) -> int:
    """Submit the held batch for approval as one unit; nothing is sent."""
    from cactus_desk.batch_approval import submit_batch
    from cactus_desk.history.approvals import ApprovalError
    from cactus_desk.history.types import HistoryError
    from cactus_desk.payout_approval import EXIT_SUBMITTED

    people = "one approval" if needed == 1 else "two approvals by different people"
    print(
        f"The team's approval policy asks {people} for this batch's total: it is submitted "
        "for approval as one request, and nothing is sent now.",
        file=ctx.stdout,
    )
    refusal = _confirm(args, ctx, batch, question="Submit this batch for approval?")
    if refusal is not None:
        return _fail(ctx, refusal.replace("nothing was sent", "nothing was submitted"), EXIT_USAGE)
    try:
        submitted = submit_batch(ctx.store or "", batch, needed)
    except ApprovalError as exc:
        return _fail(ctx, f"{exc} Nothing was sent.", EXIT_NOT_SENT)
    except HistoryError as exc:
        return _fail(ctx, f"{exc} Nothing was sent.", EXIT_ERROR)
    print(
        f"{submitted.message} An approver runs: cactus-desk approvals approve "
        f"{submitted.approval_id} --note TEXT",
        file=ctx.stdout,
    )
    return EXIT_SUBMITTED


def _confirm(
    args: argparse.Namespace, ctx: Context, batch: Batch, question: str = "Send this batch?"
) -> str | None:
    profile = batch.profile
    out = ctx.stdout
    env = (
        "LIVE: this sends real money" if profile.environment == "live" else "SANDBOX: no real money"
    )
    print(env, file=out)
    print(f"Profile:  {profile.name}", file=out)
    parent = f" (the refused rows of batch {batch.parent})" if batch.parent else ""
    print(f"Batch:    {batch.batch_id}{parent}, {len(batch.rows)} rows", file=out)
    _print_totals(batch, out)
    _print_warnings(batch, out)
    out.flush()
    unconfirmed = [code for code in batch.totals if profile.needs_units_confirmation(code)]
    if unconfirmed:
        return (
            "the first LIVE payout in " + ", ".join(sorted(unconfirmed)) + " needs its minor "
            "units confirmed: send one payout in that currency from the window (or with "
            "`cactus-desk payout send` on a terminal) first; nothing was sent"
        )
    if args.yes:
        return None
    if not ctx.stdin.isatty():
        return "not confirmed: add --yes to send this batch without a terminal; nothing was sent"
    print(f"{question} [y/N] ", end="", file=out, flush=True)
    if ctx.stdin.readline().strip().lower() not in ("y", "yes"):
        return "not confirmed; nothing was sent"
    return None


def _run(args: argparse.Namespace, ctx: Context, batch: Batch, service: Any) -> BatchOutcome:
    from cactus_desk.batch.sending import DEFAULT_CONCURRENCY, send_batch

    tty = ctx.stderr.isatty()
    step = max(1, len(batch.rows) // 20)

    def show(result: RowResult, progress: Progress) -> None:
        if tty or progress.done % step == 0 or progress.done == progress.total:
            print(_bar(progress), end="\r" if tty else "\n", file=ctx.stderr, flush=True)

    outcome = send_batch(
        batch, service, concurrency=args.concurrency or DEFAULT_CONCURRENCY, on_row=show
    )
    if tty:
        print(file=ctx.stderr)
    return outcome


def _bar(progress: Progress) -> str:
    width = 30
    filled = width * progress.done // max(progress.total, 1)
    eta = progress.eta_seconds()
    left = f", ETA {eta:.0f}s" if eta is not None and progress.done < progress.total else ""
    return (
        f"[{'#' * filled}{'.' * (width - filled)}] {progress.done}/{progress.total} "
        f"accepted {progress.accepted}, refused {progress.refused}, in doubt "
        f"{progress.in_doubt}, already sent {progress.skipped}{left}"
    )


def _finish(
    args: argparse.Namespace, ctx: Context, batch: Batch, store: HistoryStore, outcome: BatchOutcome
) -> int:
    from cactus_desk.batch.report import report_rows, write_report
    from cactus_desk.batch.sending import ALREADY, CANCELLED, existing_records
    from cactus_desk.payouts.send import MAY_HAVE_LEFT, SendCode
    from cactus_desk.payouts.states import State

    records = existing_records(store, batch)
    lines = report_rows(batch, records)
    folder = ctx.data_dir / "batch-reports"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{batch.batch_id}.csv", folder / f"{batch.batch_id}.xlsx"]
    if args.report is not None:
        paths.append(args.report)
    for path in paths:
        try:
            write_report(path, lines)
        except OSError as exc:
            print(
                f"warning: the report {path} could not be written ({exc.strerror})", file=ctx.stderr
            )
    for result in outcome.results:
        if result.code not in (SendCode.ACCEPTED, ALREADY):
            print(f"line {result.line}: {result.request_id}: {result.message}", file=ctx.stdout)
    states = [records[row.request_id].state for row in batch.rows if row.request_id in records]
    accepted = sum(1 for state in states if state is State.ACCEPTED)
    print(
        f"Batch {batch.batch_id}: {len(batch.rows)} rows, {accepted} accepted, "
        f"{outcome.count(ALREADY)} were already in the history. Report: "
        + ", ".join(str(path) for path in paths),
        file=ctx.stdout,
    )
    if any(state.in_doubt for state in states) or outcome.count(*MAY_HAVE_LEFT):
        return EXIT_IN_DOUBT
    if outcome.count(CANCELLED) or len(states) < len(batch.rows):
        return EXIT_NOT_SENT
    if any(state in (State.REJECTED, State.NOT_SENT) for state in states):
        return EXIT_REJECTED
    return EXIT_OK


def _fail(ctx: Context, message: str, code: int) -> int:
    print(f"cactus-desk: error: {message}", file=ctx.stderr)
    return code
