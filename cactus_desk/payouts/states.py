"""Where one payout attempt stands in Cactus Desk's own history."""

from __future__ import annotations

from enum import StrEnum

from cactus_desk.payouts.statuses import status_name


class State(StrEnum):
    """The life of an attempt: written as SUBMITTING, then exactly one outcome."""

    SUBMITTING = "SUBMITTING"  # written before any byte leaves; still here = in doubt
    ACCEPTED = "ACCEPTED"  # the gateway created the invoice (signed, echoed answer)
    REJECTED = "REJECTED"  # the gateway said no, signed and echoing the request_id
    UNKNOWN = "UNKNOWN"  # no trustworthy answer; never resend automatically
    NOT_SENT = "NOT_SENT"  # stopped before sending (e.g. the salt could not be read)
    SETTLED = "SETTLED"  # given a final status by hand; the gateway never confirmed accepting it
    # The gateway's words said no, but they could not be verified: possibly paid.
    REFUSED_UNVERIFIED = "REFUSED_UNVERIFIED"

    @property
    def label(self) -> str:
        """The word shown to a person."""
        return _LABELS[self]

    @property
    def in_doubt(self) -> bool:
        """True when the payout may or may not exist at the gateway (a person settles it)."""
        return self in IN_DOUBT

    @property
    def is_outcome(self) -> bool:
        """True once the attempt has left SUBMITTING."""
        return self is not State.SUBMITTING


_LABELS = {
    State.SUBMITTING: "Submitting",
    State.ACCEPTED: "Accepted",
    State.REJECTED: "Rejected",
    State.UNKNOWN: "Unknown",
    State.NOT_SENT: "Not sent",
    State.SETTLED: "Settled manually",
    State.REFUSED_UNVERIFIED: "Refused, unverified",
}

IN_DOUBT = frozenset({State.UNKNOWN, State.REFUSED_UNVERIFIED})
"""States whose money is in doubt: never "nothing paid", settled by hand or sent again."""


def state_text(state: State, gateway_status: int | None) -> str:
    """The State column's words: ``"Settled manually: Success"`` names the status set by hand."""
    if state is State.SETTLED and gateway_status is not None:
        return f"{state.label}: {status_name(gateway_status)}"
    return state.label
