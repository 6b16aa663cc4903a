"""Desktop alerts: a system tray notification when a payout is declined or needs review.

``AlertWatcher`` looks at the history's new events on a worker (whoever wrote them: this
window's receiver, a receiver service, another desk) and reads the rows they touched; a
Declined status, a signed refusal or a review flag raises ``alert``. On this computer's
history it looks every few seconds; on a team store the window has it look on each of the
store's change notices, with only a slow safety look of its own (``TEAM_POLL_MS``).
``TrayNotifier`` shows it in the system tray, or in the status bar where there is no tray.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QLabel, QStatusBar, QSystemTrayIcon

from cactus_desk.payouts.statuses import GatewayStatus
from cactus_desk.ui import style
from cactus_desk.ui.workers import Runner

if TYPE_CHECKING:  # the history's modules load with the history, not at the window's start
    from cactus_desk.history.port import HistoryReader
    from cactus_desk.history.types import HistoryRow

log = logging.getLogger(__name__)
POLL_MS = 3_000
#: On a team store the change notices drive the looks; this timer only backs them up.
TEAM_POLL_MS = 30_000
BATCH = 500


@dataclass(frozen=True)
class Alert:
    """One notification: a title and a line, for the payout ``record_id``."""

    title: str
    message: str
    record_id: int


def alerts_for(rows: list[HistoryRow], declined_ids: set[int]) -> list[Alert]:
    """The alerts for rows touched by new events (``declined_ids``: a Declined callback)."""
    found: list[Alert] = []
    for row in rows:
        money = f"{row.request_id} ({row.currency})"
        if row.id in declined_ids or row.gateway_status == GatewayStatus.DECLINE:
            found.append(Alert("Payout declined", f"{money} was declined by the gateway.", row.id))
        elif row.needs_review:
            found.append(Alert("Payout needs review", f"{money}: {row.message}", row.id))
    return found


class AlertWatcher(QObject):
    """Raises ``alert`` for payouts declined or flagged since it started."""

    alert = Signal(object)  # an Alert

    def __init__(
        self, store: Callable[[], HistoryReader | None], parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._store = store
        self._runner = Runner(self)
        self._after: int | None = None
        self._again = False  # a look was asked for while one was on its way
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self.look)

    def start(self, interval_ms: int | None = None) -> None:
        """Start from the newest event now (older ones raise nothing), looking again every
        ``interval_ms`` (``POLL_MS`` when not given)."""
        self._timer.setInterval(POLL_MS if interval_ms is None else interval_ms)
        self._timer.start()
        self.look()

    def interval_ms(self) -> int:
        """How long the watcher's own timer waits between looks."""
        return self._timer.interval()

    def stop(self) -> None:
        """Stop looking."""
        self._timer.stop()

    def watching(self) -> bool:
        """True once the first look has found where the new events start."""
        return self._after is not None

    def busy(self) -> bool:
        """True while a look is on its way."""
        return self._runner.busy()

    def look(self) -> None:
        """Read the new events and their rows on a worker."""
        store = self._store()
        if store is None:
            return
        if self._runner.busy():  # a notice during a look: look once more after it
            self._again = True
            return
        self._again = False
        after = self._after

        def read() -> tuple[int, list[Alert]]:  # worker thread
            if after is None:
                return store.last_event_id(), []
            events = store.events_since(after, BATCH)
            if not events:
                return after, []
            touched = {e.record_id for e in events if e.record_id is not None}
            declined = {e.record_id for e in events if e.record_id is not None and e.status == 5}
            rows = store.rows_by_id(sorted(touched)) if touched else []
            return events[-1].id, alerts_for(rows, declined)

        self._runner.run(read, self._read, self._failed)

    def _failed(self, error: BaseException) -> None:
        log.warning("alerts: %s", error)
        self._look_again()

    def _read(self, result: tuple[int, list[Alert]]) -> None:
        self._after, alerts = result
        for item in alerts:
            self.alert.emit(item)
        self._look_again()

    def _look_again(self) -> None:
        if self._again and self._timer.isActive():
            self.look()


class TrayNotifier(QObject):
    """Shows alerts in the system tray and the status bar; keeps the last fifty."""

    def __init__(self, icon: QIcon, status_bar: QStatusBar, parent: QObject | None = None):
        super().__init__(parent)
        # The latest alert stays in the status bar (beside, never over, its messages).
        self.label = QLabel(status_bar)
        self.label.setObjectName("alertLabel")
        self.label.setStyleSheet(f"QLabel {{ color: {style.WARNING_FG}; }}")
        status_bar.addWidget(self.label)
        self.shown: list[Alert] = []
        self.tray: QSystemTrayIcon | None = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            self.tray = QSystemTrayIcon(icon, self)
            self.tray.setToolTip("Cactus Desk")
            self.tray.show()

    def show(self, item: Alert) -> None:
        """Notify about ``item``."""
        self.shown = [*self.shown[-49:], item]
        if self.tray is not None and QSystemTrayIcon.supportsMessages():
            self.tray.showMessage(
                item.title, item.message, QSystemTrayIcon.MessageIcon.Warning, 10_000
            )
        self.label.setText(f"{item.title}: {item.message}")
