"""The gateway's numeric invoice status (cactus-api.md §4, shared by its sister products)."""

from __future__ import annotations

from enum import IntEnum


class GatewayStatus(IntEnum):
    """Invoice status codes 1–7 as the gateway sends them."""

    INITIAL = 1
    AWAITING_CONFIRMATION = 2
    PROCESSING = 3
    SUCCESS = 4
    DECLINE = 5
    ERROR = 6
    UNKNOWN = 7

    @property
    def label(self) -> str:
        """The name shown to a person, e.g. ``"Awaiting confirmation"``."""
        return _LABELS[self]


_LABELS = {
    GatewayStatus.INITIAL: "Initial",
    GatewayStatus.AWAITING_CONFIRMATION: "Awaiting confirmation",
    GatewayStatus.PROCESSING: "Processing",
    GatewayStatus.SUCCESS: "Success",
    GatewayStatus.DECLINE: "Declined",
    GatewayStatus.ERROR: "Error",
    GatewayStatus.UNKNOWN: "Unknown",
}


def status_label(code: int | None) -> str:
    """Render a status code: ``"Processing (3)"``, ``"Status 12 (unrecognised)"``, or ``""``."""
    if code is None:
        return ""
    try:
        status = GatewayStatus(code)
    except ValueError:
        return f"Status {code} (unrecognised)"
    return f"{status.label} ({int(status)})"


def status_name(code: int) -> str:
    """A status's name alone, e.g. ``"Success"``; ``"status 12"`` for one not recognised."""
    try:
        return GatewayStatus(code).label
    except ValueError:
        return f"status {code}"
