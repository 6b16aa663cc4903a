"""The three things a payout attempt can come to: accepted, rejected, or unknown."""

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


@dataclass(frozen=True)
class Accepted:
    """The gateway created the invoice; its answer is signed and echoes the request."""

    invoice_id: str
    status: int
    message: str
    response: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rejected:
    """The gateway said no (``success: false`` or a boolean ``status: false``)."""

    message: str
    response: dict[str, Any] = field(default_factory=dict)
    signature_verified: bool = False
    http_status: int | None = None


@dataclass(frozen=True)
class Unknown:
    """No answer that can be trusted; the payout may or may not exist. Never resend it."""

    reason: str
    kind: UnknownKind
    detail: str = ""
    http_status: int | None = None
    response_text: str | None = None


PayoutOutcome = Accepted | Rejected | Unknown
