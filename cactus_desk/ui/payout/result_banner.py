"""The banner that tells the person how their last payout ended."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, ClassVar

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

from cactus_desk.gateway.outcomes import Accepted, PayoutOutcome
from cactus_desk.payouts.describe import clip, outcome_text
from cactus_desk.payouts.states import State, state_text
from cactus_desk.payouts.statuses import GatewayStatus, status_label
from cactus_desk.ui import style

if TYPE_CHECKING:
    from cactus_desk.history.types import PayoutRecord
    from cactus_desk.payouts.send import SendCode, SendResult


@cache
def _result_kinds() -> dict[SendCode, str]:
    """The banner's look for each way a send can end; the rest (a request id already in the
    history, an outcome not saved, a failure after recording) may have left: "Check the
    history". The send service loads with the first send, not with the banner."""
    from cactus_desk.payouts.send import SendCode

    return {
        SendCode.ACCEPTED: "accepted",
        SendCode.REJECTED: "rejected",
        SendCode.REFUSED_UNVERIFIED: "refused_unverified",
        SendCode.UNKNOWN: "unknown",
        SendCode.NOT_SENT: "error",
        SendCode.INVALID: "error",
        SendCode.HISTORY_UNAVAILABLE: "error",
        SendCode.NEEDS_CONFIRMATION: "error",
        SendCode.RESEND_REFUSED: "error",
        SendCode.BUSY: "error",
    }


def final_text(record: PayoutRecord) -> tuple[str, str] | None:
    """(kind, sentence) for a payout whose status is final, else None."""
    invoice, request_id = record.invoice_id or "?", record.request_id
    if record.state is State.SETTLED and record.gateway_status is not None:
        return "settled", (
            f"{state_text(record.state, record.gateway_status)}, set by hand; the gateway never "
            f"confirmed accepting this payout. Request id {request_id}."
        )
    if record.state is not State.ACCEPTED:
        return None
    if record.gateway_status == GatewayStatus.SUCCESS:
        return "paid", (
            f"Payout paid: invoice {invoice}, status {status_label(record.gateway_status)}."
            f" Request id {request_id}."
        )
    if record.gateway_status == GatewayStatus.DECLINE:
        reason = clip(record.description).rstrip(".")
        return "declined", (
            f"Payout declined after the gateway accepted it: invoice {invoice}, status "
            f"{status_label(record.gateway_status)}{f' ({reason})' if reason else ''}. "
            f"Nothing was paid. Request id {request_id}."
        )
    return None


class ResultBanner(QFrame):
    """A coloured strip with the outcome of the last send; hidden until there is one."""

    _COLOURS: ClassVar[dict[str, tuple[str, str]]] = {
        "accepted": (style.ACCEPTED_BG, style.ACCEPTED_FG),
        "paid": (style.ACCEPTED_BG, style.ACCEPTED_FG),
        "rejected": (style.REJECTED_BG, style.REJECTED_FG),
        "declined": (style.REJECTED_BG, style.REJECTED_FG),
        "settled": (style.UNKNOWN_BG, style.UNKNOWN_FG),
        "unknown": (style.UNKNOWN_BG, style.UNKNOWN_FG),
        "refused_unverified": (style.UNKNOWN_BG, style.UNKNOWN_FG),
        "error": (style.REJECTED_BG, style.REJECTED_FG),
        "warning": (style.UNKNOWN_BG, style.UNKNOWN_FG),
        "awaiting": (style.UNKNOWN_BG, style.UNKNOWN_FG),
        "approved": (style.ACCEPTED_BG, style.ACCEPTED_FG),
    }
    _TITLES: ClassVar[dict[str, str]] = {
        "accepted": "Accepted",
        "paid": "Paid",
        "rejected": "Rejected",
        "declined": "Declined",
        "settled": "Settled manually",
        "unknown": "Unknown outcome",
        "refused_unverified": State.REFUSED_UNVERIFIED.label,
        "error": "Not sent",
        "warning": "Check the history",
        "awaiting": "Awaiting approval",
        "approved": "Approved",
    }

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("resultBanner")
        self.setAccessibleName("Result of the last payout")
        self._kind = ""
        # The colours set: a style sheet is slow to apply, so kinds that share them keep it.
        self._styled: tuple[str, str] | None = None
        self._title = QLabel()
        self._title.setTextFormat(Qt.TextFormat.PlainText)
        self._title.setStyleSheet("font-weight: bold;")
        self._text = QLabel()
        self._text.setTextFormat(Qt.TextFormat.PlainText)
        self._text.setWordWrap(True)
        self._text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Hide this message")
        close.setAccessibleName("Hide result")
        close.clicked.connect(self.clear)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self._title, 0, Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self._text, 1)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self.setVisible(False)

    def kind(self) -> str:
        """``"accepted"``, ``"paid"``, ``"rejected"``, ``"declined"``, ``"settled"``,
        ``"unknown"``, ``"refused_unverified"``, ``"error"``, ``"warning"``, or ``""`` when
        hidden."""
        return self._kind

    def title(self) -> str:
        """The bold word(s) in front of the message, e.g. ``"Not sent:"``."""
        return self._title.text()

    def text(self) -> str:
        """The message shown."""
        return self._text.text()

    def show_outcome(self, outcome: PayoutOutcome, request_id: str) -> None:
        """Show how the payout ``request_id`` ended."""
        from cactus_desk.payouts.send import outcome_code

        kind = _result_kinds()[outcome_code(outcome)]
        self._show(kind, outcome_text(outcome, request_id))

    def show_result(self, result: SendResult) -> None:
        """Show how a send ended, from its code: "Not sent" only when nothing can have left."""
        kind = _result_kinds().get(result.code, "warning")
        if kind == "error" and result.may_have_left:
            kind = "warning"  # e.g. a resend that never left: the first send is still in doubt
        self._show(kind, result.message)

    def show_record(self, record: PayoutRecord) -> None:
        """Show the latest word on a payout already sent: its status as the history has it."""
        final = final_text(record)
        if final is not None:
            self._show(*final)
        elif record.state is State.ACCEPTED and record.invoice_id:
            status = record.gateway_status or GatewayStatus.INITIAL
            self.show_outcome(
                Accepted(record.invoice_id, status, record.message), record.request_id
            )

    def show_awaiting(self, message: str) -> None:
        """Show that the payout was submitted for approval (nothing was sent yet)."""
        self._show("awaiting", message)

    def show_approved(self, message: str) -> None:
        """Show that a payout submitted for approval was approved (its send follows)."""
        self._show("approved", message)

    def show_error(self, message: str) -> None:
        """Show a problem that stopped the payout before it left (nothing was sent)."""
        self._show("error", message)

    def show_warning(self, message: str) -> None:
        """Show a problem after which the payout may or may not have left: not "Not sent"."""
        self._show("warning", message)

    def clear(self) -> None:
        """Hide the banner."""
        self._kind = ""
        self._text.clear()
        self.setVisible(False)

    def _show(self, kind: str, message: str) -> None:
        self._kind = kind
        bg, fg = self._COLOURS[kind]
        if (bg, fg) != self._styled:
            self.setStyleSheet(
                f"#resultBanner {{ background: {bg}; border: 1px solid {fg}; "
                f"border-radius: 4px; }} #resultBanner QLabel {{ color: {fg}; }}"
            )
            self._styled = (bg, fg)
        self._title.setText(self._TITLES[kind] + ":")
        self._text.setText(message)
        self.setAccessibleDescription(message)
        self.setVisible(True)
