"""A payout a team's policy holds for approval: asked before sending, submitted instead.

On a team history the send path first asks the database how many approvals the payout
needs; above the threshold it is recorded AWAITING_APPROVAL and nothing is sent. The
database's gate refuses the send of a held payout anyway, so a desk that skipped this
question would record nothing and send nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO

from cactus_desk.history import approvals, check_store_url
from cactus_desk.history.approvals import ApprovalError, approvals_connection
from cactus_desk.history.types import HistoryError
from cactus_desk.payouts.payout import Payout

EXIT_SUBMITTED = 6
EXIT_ERROR = 1
EXIT_DENIED = 4  # as ``payout send``'s "not sent": nothing left this computer


def approvals_needed(store: str | None, payout: Payout) -> int:
    """0 on this computer's own history; else what the team's policy asks (0, 1 or 2).

    Raises ``HistoryError`` when the team history cannot be asked.
    """
    if not store:
        return 0
    with approvals_connection(check_store_url(store).url) as conn:
        return approvals.required_approvals(
            conn, payout.target.profile_id, payout.currency, payout.amount_minor
        )


def thresholds(store: str) -> dict[tuple[str, str], int]:
    """The team's policies: (profile id, currency) -> the minor units from which a payout
    waits for approval. Raises ``HistoryError`` when the team history cannot be asked."""
    with approvals_connection(check_store_url(store).url) as conn:
        return approvals.policy_thresholds(conn)


def submit_payout(store: str, payout: Payout) -> int:
    """Record ``payout`` as awaiting approval (nothing is sent); the request's id.

    Raises ``ApprovalError`` (refused, e.g. a card payout) and ``HistoryError``.
    """
    with approvals_connection(check_store_url(store).url) as conn:
        return approvals.submit(
            conn,
            payout.target.profile_name,
            payout.wire_body(),
            payout.target.profile_id,
            payout.target.environment,
        )


@dataclass(frozen=True)
class Submitted:
    """A payout recorded as awaiting approval: nothing was sent to the gateway."""

    approval_id: int
    request_id: str
    needed: int

    @property
    def message(self) -> str:
        """What the desk tells the maker."""
        people = "one approval" if self.needed == 1 else "two approvals by different people"
        return (
            f"Submitted for approval as request {self.approval_id} (request id "
            f"{self.request_id}): the team's policy asks {people} for this amount. It awaits "
            "approval; nothing was sent to the gateway."
        )


def submit_if_held(store: str, payout: Payout) -> Submitted | None:
    """The window's send on a team history: None when the policy does not hold ``payout``
    (send it as usual); else it is submitted for approval, as ``payout send`` does.

    Raises ``ApprovalError`` (refused, e.g. a card payout) and ``HistoryError``.
    """
    needed = approvals_needed(store, payout)
    if not needed:
        return None
    return Submitted(submit_payout(store, payout), payout.request_id, needed)


def submit(store: str, payout: Payout, needed: int, out: TextIO, err: TextIO) -> int:
    """Record ``payout`` as awaiting approval; print what happened; the exit status."""
    try:
        approval_id = submit_payout(store, payout)
    except ApprovalError as exc:
        print(f"cactus-desk: error: {exc} Nothing was sent.", file=err)
        return EXIT_DENIED
    except HistoryError as exc:
        print(f"cactus-desk: error: {exc} Nothing was sent.", file=err)
        return EXIT_ERROR
    people = "one approval" if needed == 1 else "two approvals by different people"
    print(
        f"Submitted for approval as request {approval_id}: the team's policy asks {people} "
        f"for this amount. Nothing was sent; an approver runs: cactus-desk approvals approve "
        f"{approval_id} --note TEXT",
        file=out,
    )
    return EXIT_SUBMITTED
