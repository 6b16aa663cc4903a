"""A payout a team's policy holds for approval: asked before sending, submitted instead.

On a team history the send path first asks the database how many approvals the payout
needs; above the threshold it is recorded AWAITING_APPROVAL and nothing is sent. The
database's gate refuses the send of a held payout anyway, so a desk that skipped this
question would record nothing and send nothing.
"""

from __future__ import annotations

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


def submit(store: str, payout: Payout, needed: int, out: TextIO, err: TextIO) -> int:
    """Record ``payout`` as awaiting approval; print what happened; the exit status."""
    try:
        with approvals_connection(check_store_url(store).url) as conn:
            approval_id = approvals.submit(
                conn,
                payout.target.profile_name,
                payout.wire_body(),
                payout.target.profile_id,
                payout.target.environment,
            )
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
