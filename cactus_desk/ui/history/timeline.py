"""One payout's timeline in the history's details pane: every callback and manual change.

Gateway-verified statuses, imported callbacks, manual states (with who set them and why) and
rejected callbacks each read differently, so an operator never mistakes a hand-set state for
one the gateway confirmed. A payout that needs review says so above everything else.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from cactus_desk.callbacks.apply import Reason
from cactus_desk.callbacks.events import Event, EventOutcome, EventSource
from cactus_desk.callbacks.rules import can_settle_by_hand
from cactus_desk.history.types import HistoryRow, PayoutRecord
from cactus_desk.payouts.states import State
from cactus_desk.payouts.statuses import status_label
from cactus_desk.ui import style
from cactus_desk.ui.history.model import local_time

TIMELINE_HEADERS = ("Time", "Source", "Status", "Outcome", "Note or reason")
LOADING_DETAILS = "Loading…"
_MANUAL_FG = QColor(style.WARNING_FG)
_REJECTED_FG = QColor(style.ERROR_FG)
_MUTED_FG = QColor(style.MUTED_FG)


def can_reconcile(record: PayoutRecord | HistoryRow) -> bool:
    """True when an operator may set a final state: in doubt (Unknown, Refused, unverified),
    or Accepted and not final yet (the rule the store applies too)."""
    return can_settle_by_hand(State(record.state), record.gateway_status)


def source_text(event: Event) -> str:
    """Where the event came from, e.g. ``"Gateway (verified)"`` or ``"Manual by alice"``."""
    if event.source is EventSource.MANUAL:
        return f"Manual by {event.who}" if event.who else "Manual"
    where = "Gateway" if event.source is EventSource.GATEWAY else "Import"
    if event.outcome is EventOutcome.REJECTED:
        return f"{where} (rejected)"
    return f"{where} (verified)"


def reason_text(event: Event) -> str:
    """The note of a manual change, or why a callback changed nothing or what it said."""
    if event.reason:
        try:
            text = Reason(event.reason).text
        except ValueError:
            text = event.reason.replace("_", " ")
        if event.message and event.message != text:
            return f"{text}: {event.message}"
        return text
    return event.message


def timeline_row(event: Event) -> tuple[str, str, str, str, str]:
    """The cells of one timeline line."""
    return (
        local_time(event.received_at),
        source_text(event),
        event.status_text or "—",
        event.outcome.label,
        reason_text(event),
    )


def status_summary(record: PayoutRecord, events: list[Event]) -> str:
    """The record's status and who established it, e.g.
    ``"Manual: Declined (5) by alice — cabinet shows it declined"``."""
    if record.gateway_status is None:
        return f"{record.state.label}: no gateway status yet"
    label = status_label(record.gateway_status)
    if record.status_conflict:
        label += " · conflict: check (the latest verified status is shown)"
    if record.status_source == "manual":
        manual = [event for event in events if event.source is EventSource.MANUAL]
        if manual:
            last = manual[-1]
            who = f" by {last.who}" if last.who else ""
            note = f" — {last.message}" if last.message else ""
            return f"Manual: {label}{who}{note}"
        return f"Manual: {label}"
    sources = {
        event.source
        for event in events
        if event.verified
        and event.status == record.gateway_status
        and event.outcome is not EventOutcome.REJECTED
    }
    if EventSource.GATEWAY in sources:
        origin = "verified by a gateway callback"
    elif EventSource.IMPORT in sources:
        origin = "verified by an imported callback"
    else:
        origin = "from the gateway's answer"
    return f"{label} · {origin}"


class TimelinePanel(QWidget):
    """The selected payout's review flag, status source and event timeline.

    It reads nothing itself: the history panel reads the payout and its events on a worker
    and hands them over. ``reconcileRequested(record_id)`` asks for the "Set final state"
    dialog.
    """

    reconcileRequested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("historyTimelinePanel")
        self._loading_id: int | None = None
        self._record: PayoutRecord | None = None
        self._events: list[Event] = []

        self._review = QLabel(self)
        self._review.setObjectName("historyReviewLabel")
        self._review.setWordWrap(True)
        self._review.setTextFormat(Qt.TextFormat.PlainText)
        self._review.setStyleSheet(
            f"QLabel {{ background: {style.UNKNOWN_BG}; color: {style.UNKNOWN_FG}; "
            f"border: 1px solid {style.WARNING_FG}; border-radius: 3px; padding: 6px; "
            "font-weight: bold; }"
        )
        self._review.setVisible(False)

        self._status = QLabel(self)
        self._status.setObjectName("historyStatusSource")
        self._status.setWordWrap(True)
        self._status.setTextFormat(Qt.TextFormat.PlainText)
        self._reconcile = QPushButton("Set final state…", self)
        self._reconcile.setObjectName("reconcileButton")
        self._reconcile.setToolTip(
            "Record the final result confirmed by Cactus support or the merchant cabinet"
        )
        self._reconcile.setEnabled(False)
        self._reconcile.clicked.connect(self._reconcile_clicked)

        self._tree = QTreeWidget(self)
        self._tree.setObjectName("historyTimeline")
        self._tree.setAccessibleName("Payout timeline")
        self._tree.setColumnCount(len(TIMELINE_HEADERS))
        self._tree.setHeaderLabels(list(TIMELINE_HEADERS))
        self._tree.setRootIsDecorated(False)
        self._tree.setUniformRowHeights(True)
        self._tree.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        header = self._tree.header()
        header.setStretchLastSection(True)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self._empty_item_text = "No callbacks or manual changes yet."

        top = QHBoxLayout()
        top.addWidget(self._status, 1)
        top.addWidget(self._reconcile, 0, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._review)
        layout.addLayout(top)
        layout.addWidget(self._tree, 1)
        self.show_record(None)

    # -- public ---------------------------------------------------------------------------

    @property
    def record_id(self) -> int | None:
        """The payout shown, if any."""
        return self._record.id if self._record is not None else None

    @property
    def record(self) -> PayoutRecord | None:
        """The payout shown, as read with its timeline."""
        return self._record

    @property
    def events(self) -> list[Event]:
        """The events shown, oldest first."""
        return list(self._events)

    @property
    def reconcile_button(self) -> QPushButton:
        """ "Set final state…"."""
        return self._reconcile

    @property
    def tree(self) -> QTreeWidget:
        """The timeline lines."""
        return self._tree

    def review_text(self) -> str:
        """The review warning on show ("" when the payout does not need review)."""
        return self._review.text() if self._review.isVisibleTo(self) else ""

    def status_text(self) -> str:
        """The status line on show."""
        return self._status.text()

    def show_loading(self, record_id: int) -> None:
        """Say the payout ``record_id`` is being read (its timeline follows)."""
        self._record, self._events, self._loading_id = None, [], record_id
        self._tree.clear()
        self._review.setVisible(False)
        self._status.setText(LOADING_DETAILS)
        self._reconcile.setEnabled(False)

    def loading_id(self) -> int | None:
        """The payout whose timeline is being read, if any."""
        return self._loading_id

    def show_record(self, record: PayoutRecord | None, events: Sequence[Event] = ()) -> None:
        """Show ``record`` with its ``events``, oldest first (None clears the panel)."""
        self._record, self._loading_id = record, None
        self._events = list(events) if record is not None else []
        self._tree.clear()
        if record is None:
            self._review.setVisible(False)
            self._status.setText("Select a payout to see its timeline.")
            self._reconcile.setEnabled(False)
            return
        if record.needs_review:
            message = record.review_message or "a callback did not match what was sent"
            if record.status_conflict:
                self._review.setText(f"Conflict: check. {message}")
            else:
                self._review.setText(f"Needs review: {message}")
        self._review.setVisible(record.needs_review)
        self._status.setText(status_summary(record, self._events))
        self._reconcile.setEnabled(can_reconcile(record))
        items = [self._item(event) for event in self._events]
        if not items:
            item = QTreeWidgetItem(["", self._empty_item_text])
            item.setForeground(1, QBrush(_MUTED_FG))
            items.append(item)
        # All at once: the header sizes its columns to the contents once, not per line.
        self._tree.addTopLevelItems(items)

    def newest_event_id(self) -> int:
        """The id of the newest event shown (0 when none): a newer one means it is stale."""
        return self._events[-1].id if self._events else 0

    # -- internals ------------------------------------------------------------------------

    def _item(self, event: Event) -> QTreeWidgetItem:
        item = QTreeWidgetItem(list(timeline_row(event)))
        item.setToolTip(4, reason_text(event))
        if event.source is EventSource.MANUAL:
            bold = QFont()
            bold.setBold(True)
            for column in range(len(TIMELINE_HEADERS)):
                item.setForeground(column, QBrush(_MANUAL_FG))
            item.setFont(1, bold)
        elif event.outcome in (EventOutcome.REJECTED, EventOutcome.CONFLICT):
            for column in range(len(TIMELINE_HEADERS)):
                item.setForeground(column, QBrush(_REJECTED_FG))
        elif event.outcome is not EventOutcome.APPLIED:
            for column in range(len(TIMELINE_HEADERS)):
                item.setForeground(column, QBrush(_MUTED_FG))
        return item

    def _reconcile_clicked(self) -> None:
        if self._record is not None:
            self.reconcileRequested.emit(self._record.id)
