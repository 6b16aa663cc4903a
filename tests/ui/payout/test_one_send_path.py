"""The window's form and the resend dialog send through the one ``SendService``, on a worker,
and show what happened from the result's code alone."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from cactus_desk.payouts.payout import Payout
from cactus_desk.payouts.send import SendCode, SendResult, SendService
from cactus_desk.payouts.states import State
from cactus_desk.profiles import Profile
from cactus_desk.sandbox import Fault
from cactus_desk.ui.main_window import MainWindow
from tests.ui.conftest import PayoutDriver
from tests.ui.test_safety_ui import CARD_EXAMPLE, open_resend_dialog


class Spy:
    """Records the calls to one ``SendService`` method, then runs it (or answers itself)."""

    def __init__(self, real: Any, answer: SendResult | None = None) -> None:
        self.real = real
        self.answer = answer
        self.calls: list[tuple[Any, ...]] = []
        self.threads: list[threading.Thread] = []

    def method(self) -> Any:
        """The function to put in the class's place."""

        def spying(service: SendService, *args: Any) -> SendResult:
            self.calls.append(args)
            self.threads.append(threading.current_thread())
            return self.answer if self.answer is not None else self.real(service, *args)

        return spying


def test_the_form_sends_through_the_service_on_a_worker(
    window: MainWindow, driver: PayoutDriver, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = Spy(SendService.send)
    monkeypatch.setattr(SendService, "send", spy.method())
    request_id = driver.send("card", "RUB")

    [(payout, profile)] = spy.calls
    assert isinstance(payout, Payout) and isinstance(profile, Profile)
    assert payout.request_id == request_id and profile.id == window.sandbox_profile.id
    assert spy.threads[0] is not threading.main_thread()  # never on the GUI thread
    record = driver.record(request_id)
    assert record.state is State.ACCEPTED
    assert record.request == payout.recorded_body()  # what was stored is the one payout's
    assert driver.form.banner.kind() == "accepted"


@pytest.mark.parametrize(
    ("code", "may_have_left", "kind", "new_id"),
    [
        (SendCode.NOT_SENT, False, "error", True),
        (SendCode.HISTORY_UNAVAILABLE, False, "error", False),
        (SendCode.REQUEST_ID_TAKEN, False, "warning", False),
        (SendCode.OUTCOME_NOT_SAVED, True, "warning", False),
        (SendCode.FAILED, True, "warning", False),
    ],
)
def test_the_form_shows_the_result_by_its_code(
    window: MainWindow,
    driver: PayoutDriver,
    monkeypatch: pytest.MonkeyPatch,
    code: SendCode,
    may_have_left: bool,
    kind: str,
    new_id: bool,
) -> None:
    message = f"A message the window shows as it is ({code})."
    answer = SendResult(code, "", message, id_used=may_have_left, may_have_left=may_have_left)
    monkeypatch.setattr(SendService, "send", Spy(SendService.send, answer).method())
    request_id = driver.send("card", "RUB")
    assert driver.form.banner.kind() == kind
    assert driver.form.banner.text() == message
    # Only a payout that certainly ended gets a new request id; the others keep theirs on show.
    assert (driver.form.request_id_edit.text() != request_id) is new_id
    assert window.sandbox is not None and window.sandbox.requests_received == 0


def test_the_resend_dialog_sends_through_the_same_controller_and_service(
    window: MainWindow, driver: PayoutDriver, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = window.sandbox
    assert sandbox is not None
    sandbox.set_fault(Fault.RESET, times=1)  # the first answer is lost: UNKNOWN
    request_id = driver.send("card", "RUB")
    record = driver.record(request_id)
    assert record.state is State.UNKNOWN

    spy = Spy(SendService.resend)
    monkeypatch.setattr(SendService, "resend", spy.method())
    dialog = open_resend_dialog(window, qtbot, request_id)
    dialog.field_edit("card_number").setText(CARD_EXAMPLE)
    dialog.confirm_edit.setText(request_id)
    controller = window.send_controller
    with qtbot.waitSignal(dialog.resent, timeout=10_000) as resent:
        qtbot.mouseClick(dialog.send_button(), Qt.MouseButton.LeftButton)
        # In flight on the window's own controller: the form cannot send for that profile.
        assert controller.is_sending(record.profile_id)
        assert [job.resend_of for job in controller.jobs()] == [record.id]
        assert not driver.form.can_send()

    [(record_id, profile, reentered)] = spy.calls
    assert record_id == record.id and profile.id == record.profile_id
    assert isinstance(reentered, Mapping) and reentered == {"card_number": CARD_EXAMPLE}
    assert spy.threads[0] is not threading.main_thread()
    result = resent.args[1]
    # The gateway had it: the same request id is refused, and the payout stays in doubt.
    assert isinstance(result, SendResult) and result.code is SendCode.UNKNOWN and result.resend
    assert driver.record(request_id).state is State.UNKNOWN
    assert driver.record(request_id).send_attempts == 2
    assert driver.form.banner.kind() == "unknown"
    assert len(sandbox.invoices) == 1


def test_a_refused_resend_keeps_the_dialog_open_with_the_results_message(
    window: MainWindow, driver: PayoutDriver, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = window.sandbox
    assert sandbox is not None
    sandbox.set_fault(Fault.RESET, times=1)
    request_id = driver.send("card", "RUB")
    refusal = SendResult(SendCode.RESEND_REFUSED, request_id, "Refused for a reason shown as is.")
    monkeypatch.setattr(SendService, "resend", Spy(SendService.resend, refusal).method())
    dialog = open_resend_dialog(window, qtbot, request_id)
    dialog.field_edit("card_number").setText(CARD_EXAMPLE)
    dialog.confirm_edit.setText(request_id)
    resent: list[object] = []
    dialog.resent.connect(lambda *args: resent.append(args))
    qtbot.mouseClick(dialog.send_button(), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.is_busy(), timeout=10_000)
    assert dialog.isVisible() and resent == []
    assert dialog.problem.text() == "Refused for a reason shown as is."
    assert dialog.field_edit("card_number").isEnabled()
    assert not window.send_controller.is_sending()
    assert driver.record(request_id).state is State.UNKNOWN
