"""What a payout attempt can come to: accepted, rejected (verified), refused but unverified,
unknown, or not sent at all."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class UnknownKind(StrEnum):
    """Why an answer could not be trusted."""

    CONNECT = "connect"  # could not connect; the request most likely never left
    TIMEOUT = "timeout"  # sent, no answer in time: the gateway may have created the payout
    NETWORK = "network"  # connection reset or broken mid-exchange
    HTTP_ERROR = "http_error"  # 5xx or another unexpected HTTP status
    MALFORMED = "malformed"  # not JSON, HTML, or JSON of the wrong shape
    BAD_SIGNATURE = "bad_signature"  # success without a valid signature
    ECHO_MISMATCH = "echo_mismatch"  # success that does not echo what was sent
    INTERRUPTED = "interrupted"  # Cactus Desk stopped mid-send; found on the next start
    DUPLICATE_REQUEST = "duplicate_request"  # a resend was refused: the request_id exists
    RESEND_REFUSED = "resend_refused"  # a resend was refused; the first send may still exist
    TOO_SLOW = "too_slow"  # the answer did not arrive whole within the total deadline
    TOO_LARGE = "too_large"  # the answer was larger than any payout answer can be


@dataclass(frozen=True)
class Accepted:
    """The gateway created the invoice; its answer is signed and echoes the request."""

    invoice_id: str
    status: int
    message: str
    response: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rejected:
    """The gateway said no, verifiably: signed with the site's salt, echoing the request_id.

    Only such a refusal proves that no money moved; the client returns ``RefusedUnverified``
    for any other one. A ``Rejected`` whose ``signature_verified`` is False is still recorded
    as unverified.
    """

    message: str
    response: dict[str, Any] = field(default_factory=dict)
    signature_verified: bool = False
    http_status: int | None = None


@dataclass(frozen=True)
class RefusedUnverified:
    """The gateway's words say no, but nothing proves they are its words about this payout.

    Unsigned, signed with another salt, not echoing the request_id, arriving with an HTTP
    error status, or carrying an invoice_id or a numeric status: the payout may exist, so
    it counts as possibly paid until a person settles it.
    """

    message: str
    why: str
    response: dict[str, Any] = field(default_factory=dict)
    http_status: int | None = None


@dataclass(frozen=True)
class NotSent:
    """The payout never left this computer (no connection, no salt): nothing was paid.

    ``cause`` is what stopped it in a few words (e.g. "could not connect to …"), for callers
    that word the outcome themselves (a resend, whose first send may still have paid).
    """

    reason: str
    detail: str = ""
    cause: str = ""


@dataclass(frozen=True)
class Unknown:
    """No answer that can be trusted; the payout may or may not exist. Never resend it."""

    reason: str
    kind: UnknownKind
    detail: str = ""
    http_status: int | None = None
    response_text: str | None = None


PayoutOutcome = Accepted | Rejected | RefusedUnverified | Unknown | NotSent
