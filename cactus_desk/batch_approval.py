"""A batch a team's policy holds for approval: submitted as one unit instead of sent, and
sent by the approving desk once approved.

On a team history a batch is judged on each currency's total (a row at or above the
threshold makes its currency's total so too). A held batch is submitted as one approval
request carrying every row's exact body; nothing is sent. Once approved, the desk that
approved it (or any desk of the maker or an approver holding the salt) claims it atomically
and sends it through ``batch.sending.send_batch``: the one send path, each row recorded
before it is sent with the row's derived request id, bounded concurrency, and no row already
in the history (in doubt included) sent again. The database's gate refuses the rows of a held
batch to everyone but the claimant of the approved batch.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cactus_desk.approved_request import NotSendableHere, request_target, sending_profile
from cactus_desk.batch.sending import (
    ALREADY,
    DEFAULT_CONCURRENCY,
    BatchOutcome,
    Control,
    Progress,
    RowResult,
    send_batch,
)
from cactus_desk.batch.validate import Batch, BatchRow
from cactus_desk.history import approvals, check_store_url, open_history
from cactus_desk.history.approvals import ApprovalError, ApprovalRequest, approvals_connection
from cactus_desk.history.types import HistoryError
from cactus_desk.instance_lock import InstanceLock
from cactus_desk.payouts.payout import Payout
from cactus_desk.payouts.recovery import recover_interrupted
from cactus_desk.payouts.send import MAY_HAVE_LEFT, SendCode, SendService
from cactus_desk.profiles import Profile
from cactus_desk.secrets import SecretStore


class BatchNotSentError(Exception):
    """The approved batch was not sent (nothing left this computer); the message says why."""


@dataclass(frozen=True)
class BatchSubmitted:
    """A batch recorded as one request awaiting approval: nothing was sent to the gateway."""

    approval_id: int
    batch_id: str
    rows: int
    needed: int

    @property
    def message(self) -> str:
        """What the desk tells the maker."""
        people = "one approval" if self.needed == 1 else "two approvals by different people"
        return (
            f"Submitted batch {self.batch_id} ({self.rows} rows) for approval as request "
            f"{self.approval_id}: the team's policy asks {people} for its total. It awaits "
            "approval in the Approvals tab; nothing was sent to the gateway."
        )


def batch_approvals_needed(store: str, batch: Batch) -> int:
    """What the team's policy asks for ``batch`` (0, 1 or 2), judged on each currency's total.

    Raises ``HistoryError`` when the team history cannot be asked.
    """
    with approvals_connection(check_store_url(store).url) as conn:
        return approvals.required_for_totals(conn, batch.profile.id, _totals(batch))


def _totals(batch: Batch) -> dict[str, int]:
    totals: dict[str, int] = {}
    for row in batch.rows:
        if row.payout is not None:
            currency = row.payout.currency
            totals[currency] = totals.get(currency, 0) + row.payout.amount_minor
    return totals


def submit_batch(store: str, batch: Batch, needed: int) -> BatchSubmitted:
    """Record the checked ``batch`` as one request awaiting approval; nothing is sent.

    Raises ``ApprovalError`` (refused; card rows are named) and ``HistoryError``.
    """
    if not batch.ok:
        raise ValueError("The batch has errors; fix them before submitting it.")
    profile = batch.profile
    bodies = [(row.line, row.payout.wire_body()) for row in batch.rows if row.payout is not None]
    details = {
        "batch_id": batch.batch_id,
        "file_sha256": batch.file_sha256,
        "file_name": batch.file_name,
        "parent": batch.parent,
    }
    with approvals_connection(check_store_url(store).url) as conn:
        approval_id = approvals.submit_batch(
            conn,
            profile_id=profile.id,
            profile_name=profile.name,
            environment=profile.environment,
            merchant_id=profile.merchant_id,
            site_id=profile.site_id,
            batch_id=batch.batch_id,
            details=details,
            bodies=bodies,
        )
    return BatchSubmitted(approval_id, batch.batch_id, len(bodies), needed)


def submit_if_held(store: str | None, batch: Batch) -> BatchSubmitted | None:
    """On a team history: None when the policy does not hold ``batch`` (send it as usual),
    else it is submitted for approval as one unit and nothing is sent. None on this
    computer's own history.

    Raises ``ApprovalError`` (refused, e.g. card rows) and ``HistoryError``.
    """
    if not store:
        return None
    needed = batch_approvals_needed(store, batch)
    if not needed:
        return None
    return submit_batch(store, batch, needed)


def approved_batch(
    request: ApprovalRequest, rows: list[approvals.BatchApprovalRow], profile: Profile
) -> Batch:
    """The batch to send, rebuilt from what was approved: every row's exact body."""
    details = json.loads(request.request_json)
    target = request_target(request)
    built = []
    for index, row in enumerate(rows):
        payout = Payout(
            target,
            row.request_id,
            row.site_login,
            row.method,
            row.currency,
            row.amount_minor,
            row.fields(),
        )
        built.append(
            BatchRow(
                index=index, line=row.line, values={}, request_id=row.request_id, payout=payout
            )
        )
    batch = Batch(
        batch_id=str(request.batch_id),
        file_sha256=str(details.get("file_sha256") or ""),
        profile=profile,
        rows=built,
        columns=(),
        parent=details.get("parent"),
        file_name=str(details.get("file_name") or ""),
    )
    for total in request.totals:
        batch.totals[total.currency] = total.amount_minor
    return batch


OnRow = Callable[[RowResult, Progress], None]


def send_approved_batch(
    data_dir: Path,
    store: str,
    request: ApprovalRequest,
    *,
    password: str | None = None,
    service: SendService | None = None,
    on_row: OnRow | None = None,
    control: Control | None = None,
    niceness: int = 0,
) -> BatchOutcome | str:
    """Claim the approved batch ``request`` and send its rows from this desk; a text instead
    when this desk holds no salt for its profile (another desk sends it).

    A batch this login claimed before (SENDING: e.g. the desk stopped mid-batch) is resumed:
    rows already recorded are never sent again, in doubt ones included.

    Raises ``BatchNotSentError`` and ``ApprovalError`` (the database refused the claim).
    """
    url = check_store_url(store).url
    try:
        found = sending_profile(data_dir, url, request, "batch")
    except NotSendableHere as exc:
        raise BatchNotSentError(str(exc)) from None
    if isinstance(found, str):
        return found
    profile = found
    if service is not None:
        if service.history is None:  # nothing is claimed then
            raise BatchNotSentError("No history is open on this desk to record the batch in.")
        return _claim_and_send(url, password, request, profile, service, on_row, control, niceness)
    # The folder is locked and the history open before the claim: a claim is never made by
    # a desk that could not go on to send.
    lock = InstanceLock(data_dir)
    if data_dir.is_dir() and not lock.acquire():
        raise BatchNotSentError(lock.message)
    try:
        try:
            history = open_history(data_dir, url)
        except HistoryError as exc:
            raise BatchNotSentError(str(exc)) from None
        own = SendService(history, lambda chosen: SecretStore().get_salt(chosen.id))
        try:
            # This process holds the folder: rows a stopped run left SUBMITTING get their
            # truthful state first, and are then never sent again.
            recover_interrupted(history)
            return _claim_and_send(url, password, request, profile, own, on_row, control, niceness)
        finally:
            own.close()
            history.close()
    finally:
        lock.release()


def _claim_and_send(
    url: str,
    password: str | None,
    request: ApprovalRequest,
    profile: Profile,
    service: SendService,
    on_row: OnRow | None,
    control: Control | None,
    niceness: int = 0,
) -> BatchOutcome:
    with approvals_connection(url, password) as conn:
        me = approvals.session_login(conn)
        resuming = request.state == "SENDING" and request.send_claimed_by == me
        if not resuming:
            # One winner: another desk's claim is refused here and it sends nothing.
            request = approvals.claim_send(conn, request.id)
        rows = approvals.batch_rows(conn, request.id)
    batch = approved_batch(request, rows, profile)
    return send_batch(
        batch,
        service,
        concurrency=DEFAULT_CONCURRENCY,
        control=control,
        on_row=on_row,
        niceness=niceness,
    )


def outcome_text(outcome: BatchOutcome) -> str:
    """``Batch abc: 3 rows, 3 accepted, 0 refused, 0 in doubt, 0 already recorded``."""
    refused = outcome.count(SendCode.REJECTED, SendCode.NOT_SENT, SendCode.REQUEST_ID_TAKEN)
    return (
        f"Batch {outcome.batch_id}: {len(outcome.results)} rows, "
        f"{outcome.count(SendCode.ACCEPTED)} accepted, {refused} refused, "
        f"{outcome.count(*MAY_HAVE_LEFT)} in doubt, {outcome.count(ALREADY)} already recorded."
    )


__all__ = [
    "ApprovalError",
    "BatchNotSentError",
    "BatchSubmitted",
    "approved_batch",
    "batch_approvals_needed",
    "outcome_text",
    "send_approved_batch",
    "submit_batch",
    "submit_if_held",
]
