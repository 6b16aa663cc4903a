"""A desk's side of approvals (no Qt): what the Approvals tab and ``approvals`` commands use.

``send_approved`` is the one way an approved payout leaves: the database hands the send to
exactly one desk (``claim_send``), then the payout goes through ``SendService.send``, the
same path as every other payout. ``TeamApprovals`` is the port the window's tab takes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cactus_desk.approved_request import NotSendableHere, request_target, sending_profile
from cactus_desk.batch.sending import BatchOutcome
from cactus_desk.batch_approval import BatchNotSentError, outcome_text, send_approved_batch
from cactus_desk.history import approvals, check_store_url, open_history
from cactus_desk.history.approvals import ApprovalError, ApprovalRequest
from cactus_desk.history.types import HistoryError
from cactus_desk.instance_lock import InstanceLock
from cactus_desk.money import UnknownCurrencyError, format_major
from cactus_desk.payouts.payout import Payout
from cactus_desk.payouts.send import SendResult, SendService
from cactus_desk.secrets import SecretStore


class NotSentError(Exception):
    """The approved payout was not sent (nothing left this computer); the message says why."""


@dataclass(frozen=True)
class NoSalt:
    """This desk holds no salt for the payout's profile: another desk must send it."""

    message: str


def amount_text(request: ApprovalRequest, *, grouping: bool = False) -> str:
    """The amount in major units (``1500.50``; grouped ``1 500.50`` for people)."""
    try:
        return format_major(request.amount_minor, request.currency, grouping=grouping)
    except UnknownCurrencyError:
        return f"{request.amount_minor} minor units"


def summary(request: ApprovalRequest) -> str:
    """What the confirm dialog shows, for the approver (the full fields are never card data)."""
    env = "LIVE: this sends real money" if request.environment == "live" else "SANDBOX"
    lines = [
        env,
        f"Profile:     {request.profile_name}",
        f"Amount:      {amount_text(request, grouping=True)} {request.currency} "
        f"= {request.amount_minor} minor units",
        f"Method:      {request.method}",
        f"Site login:  {request.site_login}",
        *(f"{name + ':':<12} {value}" for name, value in request.fields().items()),
        f"Request ID:  {request.request_id}",
        f"Maker:       {request.maker}",
        f"Approvals:   {len(request.approvers)} of {request.required}"
        + (f" ({', '.join(request.approvers)})" if request.approvers else ""),
    ]
    return "\n".join(lines)


#: Rows a batch's summary lists; the rest are counted (the totals cover every row).
SUMMARY_ROWS = 200


def _money(amount_minor: int, currency: str) -> str:
    try:
        return f"{format_major(amount_minor, currency, grouping=True)} {currency}"
    except UnknownCurrencyError:
        return f"{amount_minor} minor units of {currency}"


def totals_text(request: ApprovalRequest) -> str:
    """A batch's totals, ``3 rows: 1 500.00 RUB; 1 row: 20.00 USD`` (else the amount)."""
    if not request.is_batch:
        return f"{amount_text(request, grouping=True)} {request.currency}"
    return "; ".join(
        f"{total.rows} row{'s' if total.rows != 1 else ''}: "
        f"{_money(total.amount_minor, total.currency)}"
        for total in request.totals
    )


def batch_summary(request: ApprovalRequest, rows: list[approvals.BatchApprovalRow]) -> str:
    """What the batch's confirmation showed, for the approver, and its rows (never card data:
    card rows cannot wait for approval)."""
    env = "LIVE: this sends real money" if request.environment == "live" else "SANDBOX"
    count = sum(total.rows for total in request.totals)
    lines = [
        env,
        f"Batch:       {request.batch_id}, {count} rows, approved or rejected as one",
        f"Profile:     {request.profile_name}",
        *(
            f"Total {total.currency}:   {total.rows} payouts, "
            f"{_money(total.amount_minor, total.currency)}"
            for total in request.totals
        ),
        f"Maker:       {request.maker}",
        f"Approvals:   {len(request.approvers)} of {request.required}"
        + (f" ({', '.join(request.approvers)})" if request.approvers else ""),
        "Rows:",
    ]
    for row in rows[:SUMMARY_ROWS]:
        fields = ", ".join(f"{name}={value}" for name, value in row.fields().items())
        lines.append(
            f"  line {row.line}: {row.request_id}  {_money(row.amount_minor, row.currency)}  "
            f"{row.method} to {row.site_login}" + (f" ({fields})" if fields else "")
        )
    if count > len(rows[:SUMMARY_ROWS]):
        lines.append(f"  … and {count - len(rows[:SUMMARY_ROWS])} more rows")
    return "\n".join(lines)


def send_approved(
    data_dir: Path,
    store: str,
    approval_id: int,
    *,
    password: str | None = None,
    service: SendService | None = None,
    niceness: int = 0,
) -> SendResult | NoSalt | BatchOutcome:
    """Claim the approved request ``approval_id`` and send it from this desk (a batch: every
    row, see ``batch_approval.send_approved_batch``) (``password``
    for the approvals' connections; the history and profiles take the keyring's).
    ``service``: the window's own send service (the window holds the data folder's lock and
    its history is open), else the folder is locked and the history opened here.

    Raises ``NotSentError`` (nothing left: not approved, claimed by another desk, profile
    changed, history or keyring unusable) and ``ApprovalError`` (the database refused).
    """
    url = check_store_url(store).url
    with approvals.approvals_connection(url, password) as conn:
        request = approvals.get(conn, approval_id)
    if request.is_batch:
        return _send_batch(data_dir, url, request, password, service, niceness)
    try:
        found = sending_profile(data_dir, url, request, "payout")
    except NotSendableHere as exc:
        raise NotSentError(str(exc)) from None
    if isinstance(found, str):
        return NoSalt(found)
    profile, target = found, request_target(request)
    payout = Payout(
        target,
        request.request_id,
        request.site_login,
        request.method,
        request.currency,
        request.amount_minor,
        request.fields(),
    )
    if service is not None:
        if service.history is None:  # e.g. the team store unreachable: nothing is claimed
            raise NotSentError("No history is open on this desk to record the payout in.")
        with approvals.approvals_connection(url, password) as conn:
            approvals.claim_send(conn, approval_id)
        return service.send(payout, profile)
    lock = InstanceLock(data_dir)
    if data_dir.is_dir() and not lock.acquire():
        raise NotSentError(lock.message)
    try:
        try:
            history = open_history(data_dir, url)
        except HistoryError as exc:
            raise NotSentError(str(exc)) from None
        service = SendService(history, lambda chosen: SecretStore().get_salt(chosen.id))
        try:
            # One winner: another desk's claim is refused here and it sends nothing.
            with approvals.approvals_connection(url, password) as conn:
                approvals.claim_send(conn, approval_id)
            return service.send(payout, profile)
        finally:
            service.close()
            history.close()
    finally:
        lock.release()


def _send_batch(
    data_dir: Path,
    url: str,
    request: ApprovalRequest,
    password: str | None,
    service: SendService | None,
    niceness: int = 0,
) -> BatchOutcome | NoSalt:
    try:
        sent = send_approved_batch(
            data_dir, url, request, password=password, service=service, niceness=niceness
        )
    except BatchNotSentError as exc:
        raise NotSentError(str(exc)) from None
    return NoSalt(sent) if isinstance(sent, str) else sent


@dataclass(frozen=True)
class ApprovalView:
    """One request as the tab shows it: the request, its summary and the duplicate check."""

    request: ApprovalRequest
    summary: str
    similar: tuple[str, ...]


class TeamApprovals:
    """The approvals of one team history, as this desk's login (the window's port).

    Every method does network and SQL: call them on a worker, never the GUI thread.
    """

    def __init__(
        self,
        store: str,
        data_dir: Path,
        *,
        password: str | None = None,
        service: Callable[[], SendService] | None = None,
        niceness: int = 0,
    ) -> None:
        """``password``: the login's, else the keyring's for the URL, else ``PGPASSWORD``;
        ``service``: the window's send service (see ``send_approved``); ``niceness``: how far
        a batch's sending threads go below the caller's priority."""
        self.url = check_store_url(store).url
        self.data_dir = data_dir
        self._password = password
        self._service = service
        self._niceness = niceness
        self._listener: Any = None
        self._listening: Any = None

    def get(self, approval_id: int) -> ApprovalRequest:
        """One request as it stands now (any state)."""
        with approvals.approvals_connection(self.url, self._password) as conn:
            return approvals.get(conn, approval_id)

    def login(self) -> str:
        """The login this desk works as."""
        with approvals.approvals_connection(self.url, self._password) as conn:
            return approvals.session_login(conn)

    def requests(self) -> list[ApprovalView]:
        """The requests still open (awaiting approval, or approved and not sent), newest first."""
        with approvals.approvals_connection(self.url, self._password) as conn:
            found = approvals.list_requests(conn, open_only=True)
            return [
                ApprovalView(
                    request,
                    batch_summary(request, approvals.batch_rows(conn, request.id, SUMMARY_ROWS)),
                    (),
                )
                if request.is_batch
                else ApprovalView(
                    request, summary(request), tuple(approvals.similar_sent(conn, request))
                )
                for request in found
            ]

    def approve(self, approval_id: int, note: str) -> str:
        """Approve; the state after it (APPROVED when complete)."""
        with approvals.approvals_connection(self.url, self._password) as conn:
            return approvals.approve(conn, approval_id, note)

    def reject(self, approval_id: int, reason: str) -> None:
        """Reject with a reason."""
        with approvals.approvals_connection(self.url, self._password) as conn:
            approvals.reject(conn, approval_id, reason)

    def withdraw(self, approval_id: int) -> None:
        """Withdraw this login's own request."""
        with approvals.approvals_connection(self.url, self._password) as conn:
            approvals.withdraw(conn, approval_id)

    def send(self, approval_id: int) -> str:
        """Send an approved request from this desk; the outcome in words."""
        try:
            result = send_approved(
                self.data_dir,
                self.url,
                approval_id,
                password=self._password,
                service=self._service() if self._service is not None else None,
                niceness=self._niceness,
            )
        except (NotSentError, ApprovalError) as exc:
            return f"Not sent: {exc}"
        if isinstance(result, NoSalt):
            return result.message
        if isinstance(result, BatchOutcome):
            return outcome_text(result)
        return f"{result.code}: {result.message}"

    def wait_for_change(self, timeout_s: float) -> bool:
        """Block up to ``timeout_s`` for another desk's change (LISTEN/NOTIFY); the first call
        starts listening and answers True at once."""
        if self._listener is None:
            self._listening = approvals.approvals_connection(self.url, self._password)
            self._listener = self._listening.__enter__()
            approvals.listen(self._listener)
            # A change between the caller's first read and LISTEN sent no notice it could
            # hear: report one, so the caller reads again now that nothing is missed.
            return True
        return approvals.wait_for_change(self._listener, timeout_s)

    def close(self) -> None:
        """Close the listening connection."""
        if self._listening is not None:
            self._listening.__exit__(None, None, None)
            self._listening = self._listener = None
