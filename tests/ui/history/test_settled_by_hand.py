"""Issue 11 item 16: a payout settled by hand that the gateway never accepted never reads
"Accepted", in the result banner, the history or the confirm dialog's duplicate warning."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from cactus_desk.callbacks.reconcile import set_final_state
from cactus_desk.payouts.states import State
from cactus_desk.sandbox import Fault
from tests.ui.conftest import PayoutDriver


def test_an_unknown_payout_settled_by_hand_says_so_in_the_banner_and_the_duplicate_warning(
    driver: PayoutDriver, qtbot: QtBot
) -> None:
    window, form = driver.window, driver.form
    assert window.sandbox is not None
    window.sandbox.set_fault(Fault.BAD_SIGNATURE, times=1)
    request_id = driver.send("sbp", "RUB")
    record = driver.record(request_id)
    assert record.state is State.UNKNOWN
    assert form.banner.kind() == "unknown"

    set_final_state(window.history, record.id, 4, "Cabinet shows it paid", who="olga")
    qtbot.waitUntil(lambda: form.banner.kind() == "settled", timeout=5_000)
    assert form.banner.title() == "Settled manually:"
    assert form.banner.text().startswith("Settled manually: Success, set by hand")
    assert "accepted" not in form.banner.text().replace("never confirmed accepting", "")
    assert driver.record(request_id).state is State.SETTLED

    form.new_request_id()
    driver.fill("sbp", "RUB")
    dialog = driver.open_confirm()
    listing = dialog.findChild(QLabel, "duplicateList")
    assert listing is not None
    assert listing.text().endswith(f"{request_id} · Settled manually: Success")
    assert "Accepted" not in listing.text()
    dialog.reject()
