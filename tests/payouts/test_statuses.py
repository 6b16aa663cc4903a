from __future__ import annotations

import pytest

from cactus_desk.payouts.states import State
from cactus_desk.payouts.statuses import GatewayStatus, status_label


@pytest.mark.parametrize(
    ("code", "label"),
    [
        (1, "Initial (1)"),
        (2, "Awaiting confirmation (2)"),
        (3, "Processing (3)"),
        (4, "Success (4)"),
        (5, "Declined (5)"),
        (6, "Error (6)"),
        (7, "Unknown (7)"),
        (12, "Status 12 (unrecognised)"),
        (0, "Status 0 (unrecognised)"),
        (None, ""),
    ],
)
def test_status_label(code: int | None, label: str) -> None:
    assert status_label(code) == label


def test_gateway_status_names_match_the_documented_enum() -> None:
    assert GatewayStatus(2).name == "AWAITING_CONFIRMATION"
    assert GatewayStatus.DECLINE.label == "Declined"


def test_states_have_labels_and_only_submitting_is_not_an_outcome() -> None:
    assert [state.label for state in State] == [
        "Submitting",
        "Accepted",
        "Rejected",
        "Unknown",
        "Not sent",
        "Settled manually",
        "Refused, unverified",
    ]
    assert [state for state in State if not state.is_outcome] == [State.SUBMITTING]
    assert State("ACCEPTED") is State.ACCEPTED
