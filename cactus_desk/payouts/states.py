"""Where one payout attempt stands in Cactus Desk's own history."""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """The life of an attempt: written as SUBMITTING, then exactly one outcome."""

    SUBMITTING = "SUBMITTING"  # written before any byte leaves; still here = in doubt
    ACCEPTED = "ACCEPTED"  # the gateway created the invoice (signed, echoed answer)
    REJECTED = "REJECTED"  # the gateway said no
    UNKNOWN = "UNKNOWN"  # no trustworthy answer; never resend automatically
    NOT_SENT = "NOT_SENT"  # stopped before sending (e.g. the salt could not be read)

    @property
    def label(self) -> str:
        """The word shown to a person."""
        return _LABELS[self]

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
}
