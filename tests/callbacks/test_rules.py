"""The storage-free rules: the dialog's button and the store's check say the same."""

from __future__ import annotations

import pytest

from cactus_desk.callbacks.rules import ReconcileError, can_settle_by_hand, final_state_change
from cactus_desk.payouts.states import State

STATUSES = (None, 1, 2, 3, 4, 5, 6, 7)


def _record(state: State, status: int | None) -> dict[str, object]:
    return {
        "state": str(state),
        "gateway_status": status,
        "invoice_id": None,
        "request_id": "po-1",
        "message": "m",
        "detail": "",
    }


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("status", STATUSES)
def test_settling_by_hand_is_allowed_exactly_where_the_store_allows_it(
    state: State, status: int | None
) -> None:
    try:
        final_state_change(_record(state, status), 1, 4, "note", None, "olga", 0)
    except ReconcileError:
        allowed = False
    else:
        allowed = True
    assert can_settle_by_hand(state, status) is allowed


def test_in_doubt_and_open_accepted_payouts_may_be_settled_by_hand() -> None:
    assert can_settle_by_hand(State.UNKNOWN, None)
    assert can_settle_by_hand(State.REFUSED_UNVERIFIED, None)
    assert can_settle_by_hand(State.ACCEPTED, 3)
    assert not can_settle_by_hand(State.ACCEPTED, 4)
    assert not can_settle_by_hand(State.REJECTED, None)
    assert not can_settle_by_hand(State.SUBMITTING, None)
