"""The words that tell a person how a payout ended (shared by the window and the command)."""

from __future__ import annotations

from cactus_desk.gateway.outcomes import (
    Accepted,
    NotSent,
    PayoutOutcome,
    RefusedUnverified,
    Rejected,
)
from cactus_desk.payouts.statuses import status_label

UNKNOWN_ADVICE = (
    "The gateway may have created this payout. Do not send it again; "
    "wait for its status or check with Cactus."
)
UNVERIFIED_ADVICE = (
    "The payout may still have been created. Do not send it again; check it with Cactus, "
    "then settle it in the history (Set final state)."
)

# Gateway text is shown as plain text and cut short: an HTML error page must not flood the form.
MAX_GATEWAY_TEXT = 300


def clip(text: str) -> str:
    """``text`` on one line, cut to ``MAX_GATEWAY_TEXT`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= MAX_GATEWAY_TEXT else text[: MAX_GATEWAY_TEXT - 1] + "…"


def outcome_text(outcome: PayoutOutcome, request_id: str) -> str:
    """The banner's sentence for ``outcome`` of the payout ``request_id``."""
    if isinstance(outcome, Accepted):
        return (
            f"Payout accepted: invoice {outcome.invoice_id}, status {status_label(outcome.status)}."
            f" Request id {request_id}."
        )
    if isinstance(outcome, Rejected) and outcome.signature_verified:
        message = clip(outcome.message).rstrip(".") or "no reason given"
        return (
            f"Payout rejected by the gateway: {message}. Nothing was paid; correct what it names "
            f"and send it as a new payout. Request id {request_id}."
        )
    if isinstance(outcome, Rejected | RefusedUnverified):
        message = clip(outcome.message).rstrip(".") or "no reason given"
        why = outcome.why if isinstance(outcome, RefusedUnverified) else "it is not signed"
        return (
            f"The gateway answered: {message}. This refusal could not be verified "
            f"({clip(why)}). {UNVERIFIED_ADVICE} Request id {request_id}."
        )
    if isinstance(outcome, NotSent):
        return outcome.reason.removeprefix("Not sent: ")
    reason = clip(outcome.reason)
    reason = reason if reason.endswith((".", "…")) else reason + "."
    # The client's reasons already say what to do; the advice is added only when one does not.
    advice = "" if "Do not send it again" in reason else f" {UNKNOWN_ADVICE}"
    return f"Outcome unknown: {reason}{advice} Request id {request_id}."
