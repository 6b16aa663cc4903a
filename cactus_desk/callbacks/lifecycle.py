"""How the gateway's invoice status moves: which status may follow which.

Statuses only move forward. 1, 2 and 3 are steps of processing; 6 (error) and 7 (unknown)
need a person but are not final; 4 (success) and 5 (declined) are final and never move back.
Callbacks can arrive late, twice or out of order, so each one is compared with the current
status rather than applied blindly.
"""

from __future__ import annotations

from enum import StrEnum

from cactus_desk.payouts.statuses import GatewayStatus

FINAL = frozenset({GatewayStatus.SUCCESS, GatewayStatus.DECLINE})
NEEDS_REVIEW = frozenset({GatewayStatus.ERROR, GatewayStatus.UNKNOWN})
# A verified callback with one of these shows the gateway created the invoice.
PROVES_INVOICE = frozenset({GatewayStatus.PROCESSING, GatewayStatus.SUCCESS, GatewayStatus.DECLINE})

# A strict order, so the same set of callbacks ends in the same status whatever their order.
_RANK = {
    GatewayStatus.INITIAL: 1,
    GatewayStatus.AWAITING_CONFIRMATION: 2,
    GatewayStatus.PROCESSING: 3,
    GatewayStatus.ERROR: 4,
    GatewayStatus.UNKNOWN: 5,
    GatewayStatus.SUCCESS: 6,
    GatewayStatus.DECLINE: 6,
}


class Transition(StrEnum):
    """What a new status does to the current one."""

    APPLY = "apply"  # moves the status forward
    DUPLICATE = "duplicate"  # the status already stands
    STALE = "stale"  # an earlier status arriving late
    CONFLICT = "conflict"  # a different final status after a final one


def is_known(status: int) -> bool:
    """True for the gateway's statuses 1–7."""
    return status in _RANK


def is_final(status: int | None) -> bool:
    """True for success (4) and declined (5)."""
    return status in FINAL


def rank(status: int | None) -> int:
    """The position of ``status`` in the forward order; 0 for none or an unrecognised code."""
    if status is None:
        return 0
    return _RANK.get(status, 0)  # type: ignore[call-overload]


def transition(current: int | None, new: int) -> Transition:
    """Classify moving from ``current`` (None: no status yet) to ``new``."""
    if current is None:
        return Transition.APPLY
    if new == current:
        return Transition.DUPLICATE
    if is_final(current):
        return Transition.CONFLICT if is_final(new) else Transition.STALE
    return Transition.APPLY if rank(new) > rank(current) else Transition.STALE


def later_status(current: int | None, new: int | None) -> int | None:
    """The status that stands after ``new`` is seen, given ``current``."""
    if new is None:
        return current
    if current is None or transition(current, new) is Transition.APPLY:
        return new
    return current
