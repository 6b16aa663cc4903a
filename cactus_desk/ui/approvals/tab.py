"""The Approvals tab: the team's payouts waiting for approval, approve / reject / withdraw.

It takes a port (``approvals_desk.TeamApprovals`` or anything shaped like it) and calls it
only on workers. Another desk's change arrives by NOTIFY: a low-priority worker waits on the
port's ``wait_for_change`` and the tab reads the list again. ``count_changed`` carries the
number of requests this login can act on, for the tab's badge.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol

from PySide6.QtCore import QThreadPool, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from cactus_desk.approvals_desk import ApprovalView, totals_text
from cactus_desk.ui import style
from cactus_desk.ui.workers import Runner

COLUMNS = ("ID", "State", "Amount", "Profile", "Recipient", "Maker", "Submitted", "Approvals")
#: Why an expired request's Approve and Reject are disabled (shown in its details).
EXPIRED_NOTE = (
    "EXPIRED: its time for approval ran out, so it can no longer be approved or sent; "
    "the maker submits it again if it is still wanted."
)
#: Seconds one wait for NOTIFY lasts before the worker checks whether the tab still lives.
LISTEN_SECONDS = 1.0


class ApprovalsPort(Protocol):
    """What the tab needs from the team history (``approvals_desk.TeamApprovals``)."""

    def login(self) -> str: ...
    def requests(self) -> list[ApprovalView]: ...
    def approve(self, approval_id: int, note: str) -> str: ...
    def reject(self, approval_id: int, reason: str) -> None: ...
    def withdraw(self, approval_id: int) -> None: ...
    def send(self, approval_id: int) -> str: ...
    def wait_for_change(self, timeout_s: float) -> bool: ...
    def close(self) -> None: ...


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


class ApprovalsTab(QWidget):
    """Payouts awaiting approval; the selected one's summary, note, and the actions."""

    count_changed = Signal(int)
    #: The list was read again (another desk's change, or this one's).
    listed = Signal()

    def __init__(self, port: ApprovalsPort, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._port = port
        self._runner = Runner(self)
        # Its own thread: the wait for NOTIFY blocks, and must never hold up another job.
        listen_pool = QThreadPool(self)
        listen_pool.setMaxThreadCount(1)
        self._listen_runner = Runner(self, listen_pool, low_priority=True)
        self._login = ""
        self._views: list[ApprovalView] = []
        self._wanted: int | None = None  # a request to select once it is listed
        self._stopped = False

        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.itemSelectionChanged.connect(self._selected)
        self.details = QPlainTextEdit(self)
        self.details.setReadOnly(True)
        self.note = QLineEdit(self)
        self.note.setPlaceholderText("Note (why you approve) or reason (why you reject)")
        self.approve_button = QPushButton("Approve", self)
        self.reject_button = QPushButton("Reject", self)
        self.withdraw_button = QPushButton("Withdraw", self)
        self.send_button = QPushButton("Send approved", self)
        self.status = QLabel("", self)
        self.status.setWordWrap(True)
        self.approve_button.clicked.connect(self._approve)
        self.reject_button.clicked.connect(self._reject)
        self.withdraw_button.clicked.connect(self._withdraw)
        self.send_button.clicked.connect(self._send)

        buttons = QHBoxLayout()
        for button in (
            self.approve_button,
            self.reject_button,
            self.withdraw_button,
            self.send_button,
        ):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 3)
        layout.addWidget(self.details, 2)
        layout.addWidget(self.note)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        self._enable(None)
        self._runner.run(port.login, self._logged_in, self._failed)
        style.flat_scroll_bars(self)

    # -- reading ------------------------------------------------------------------------

    def _logged_in(self, login: object) -> None:
        self._login = str(login)
        self.refresh()
        self._listen()

    def refresh(self) -> None:
        """Read the open requests again (on a worker)."""
        self._runner.run(self._port.requests, self._show, self._failed, channel="list")

    def _listen(self) -> None:
        if self._stopped:
            return
        self._listen_runner.run(
            lambda: self._port.wait_for_change(LISTEN_SECONDS),
            self._heard,
            self._listen_failed,
            channel="listen",
        )

    def _heard(self, changed: object) -> None:
        if changed:
            self.refresh()
        self._listen()

    def _listen_failed(self, error: BaseException) -> None:
        self.status.setText(f"Live updates stopped: {error}")

    def select_request(self, approval_id: int) -> None:
        """Select request ``approval_id``, now if it is listed, else once it is."""
        self._wanted = approval_id
        if self._select_wanted():
            return
        self.refresh()

    def _select_wanted(self) -> bool:
        for row, view in enumerate(self._views):
            if view.request.id == self._wanted:
                self._wanted = None
                self.table.selectRow(row)
                return True
        return False

    def _show(self, views: object) -> None:
        assert isinstance(views, list)
        chosen = self._wanted if self._wanted is not None else self.selected_id()
        self._views = views
        self.table.setRowCount(len(views))
        for row, view in enumerate(views):
            request = view.request
            cells = (
                str(request.id),
                request.state,
                totals_text(request),
                request.profile_name,
                f"Batch {request.batch_id}"
                if request.is_batch
                else f"{request.site_login} ({request.method})",
                request.maker,
                _when(request.created_at),
                f"{len(request.approvers)}/{request.required}",
            )
            for column, text in enumerate(cells):
                self.table.setItem(row, column, QTableWidgetItem(text))
            if request.id == chosen:
                self.table.selectRow(row)
        if self._wanted is not None and any(view.request.id == self._wanted for view in views):
            self._wanted = None
        self.count_changed.emit(self.actionable())
        self._selected()
        self.listed.emit()

    def actionable(self) -> int:
        """Requests this login may approve: awaiting approval, someone else's, not yet by it."""
        return sum(
            1
            for view in self._views
            if view.request.state == "AWAITING_APPROVAL"
            and view.request.maker != self._login
            and self._login not in view.request.approvers
        )

    def selected_id(self) -> int | None:
        """The selected request's id."""
        view = self._current()
        return view.request.id if view is not None else None

    def _current(self) -> ApprovalView | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows or rows[0].row() >= len(self._views):
            return None
        return self._views[rows[0].row()]

    def _selected(self) -> None:
        view = self._current()
        if view is None:
            self.details.setPlainText("")
        else:
            similar = (
                "REPEAT: sent in the 24 hours before: " + ", ".join(view.similar)
                if view.similar
                else "Repeats were checked row by row when the batch was imported."
                if view.request.is_batch
                else "No similar payout in the 24 hours before."
            )
            expired = f"\n{EXPIRED_NOTE}" if view.request.state == "EXPIRED" else ""
            self.details.setPlainText(
                f"{view.summary}\nSubmitted: {_when(view.request.created_at)}, expires "
                f"{_when(view.request.expires_at)}\n{similar}{expired}"
            )
        self._enable(view)

    def _enable(self, view: ApprovalView | None) -> None:
        awaiting = view is not None and view.request.state == "AWAITING_APPROVAL"
        own = view is not None and view.request.maker == self._login
        self.approve_button.setEnabled(awaiting)
        self.reject_button.setEnabled(awaiting)
        self.withdraw_button.setEnabled(awaiting and own)
        # A batch this login claimed and did not finish sending is resumed by the same button.
        resumable = (
            view is not None
            and view.request.is_batch
            and view.request.state == "SENDING"
            and view.request.send_claimed_by == self._login
        )
        self.send_button.setEnabled(
            (view is not None and view.request.state == "APPROVED") or resumable
        )

    # -- acting -------------------------------------------------------------------------

    def _act(self, fn: Any, done: str) -> None:
        self.status.setText("Working…")

        def finished(result: object) -> None:
            self.status.setText(done if result is None else f"{done} {result}")
            self.refresh()

        def refused(error: BaseException) -> None:
            # The list may be stale (e.g. the request expired meanwhile): read it again.
            self._failed(error)
            self.refresh()

        self._runner.run(fn, finished, refused)

    def _approve(self) -> None:
        view = self._current()
        note = self.note.text().strip()
        if view is None:
            return
        if not note:
            self.status.setText("Write a note: why is this payout approved?")
            self.note.setFocus()
            return
        approval_id = view.request.id

        def approve_and_send() -> str:
            state = self._port.approve(approval_id, note)
            if state != "APPROVED":
                return "It waits for another approver."
            return self._port.send(approval_id)

        self.note.clear()
        self._act(approve_and_send, f"Approved request {approval_id}.")

    def _reject(self) -> None:
        view = self._current()
        reason = self.note.text().strip()
        if view is None:
            return
        if not reason:
            self.status.setText("Write a reason: why is this payout rejected?")
            self.note.setFocus()
            return
        approval_id = view.request.id
        self.note.clear()
        self._act(
            lambda: self._port.reject(approval_id, reason),
            f"Rejected request {approval_id}: it will never be sent.",
        )

    def _withdraw(self) -> None:
        view = self._current()
        if view is not None:
            approval_id = view.request.id
            self._act(lambda: self._port.withdraw(approval_id), f"Withdrew request {approval_id}.")

    def _send(self) -> None:
        view = self._current()
        if view is not None:
            approval_id = view.request.id
            self._act(lambda: self._port.send(approval_id), f"Request {approval_id}:")

    def _failed(self, error: BaseException) -> None:
        self.status.setText(str(error))

    def stop(self) -> None:
        """Stop listening and close the port (the window is closing)."""
        self._stopped = True
        self._listen_runner.invalidate("listen")
        self._listen_runner.wait_idle(int(LISTEN_SECONDS * 1000) + 5000)
        self._runner.wait_idle()
        self._port.close()


def attach_approvals_tab(tabs: QTabWidget, port: ApprovalsPort) -> ApprovalsTab:
    """Add the Approvals tab to ``tabs`` (a team history only); its title carries the count
    of payouts this login can approve, e.g. "Approvals (2)"."""
    tab = ApprovalsTab(port)
    index = tabs.addTab(tab, "Approvals")

    def badge(count: int) -> None:
        tabs.setTabText(tabs.indexOf(tab), f"Approvals ({count})" if count else "Approvals")

    tab.count_changed.connect(badge)
    tabs.setTabToolTip(index, "Payouts waiting for a second person's approval")
    return tab
