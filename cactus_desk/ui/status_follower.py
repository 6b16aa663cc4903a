"""Keeps the result banner of the payout just sent up to date as its status moves on.

An accepted payout usually answers "Processing"; the gateway's callback says later whether it
was paid or declined. The follower looks at the history's change marker once a second and,
when something was committed, re-reads that one record (a primary-key read) and shows it.
It stops at a final status, when the banner is hidden or shows another payout.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

from cactus_desk.callbacks.lifecycle import is_final
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.types import HistoryError
from cactus_desk.ui.result_banner import ResultBanner

log = logging.getLogger(__name__)

INTERVAL_MS = 1000


class StatusFollower(QObject):
    """Follows one history record into ``banner``; ``follow`` replaces the one followed."""

    def __init__(
        self,
        banner: ResultBanner,
        history: Callable[[], HistoryStore | None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._banner = banner
        self._history = history
        self._record_id: int | None = None
        self._shown = ""
        self._version: int | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(INTERVAL_MS)
        self._timer.timeout.connect(self.check)

    def follow(self, record_id: int) -> None:
        """Start following ``record_id``, whose outcome the banner shows now."""
        self._record_id = record_id
        self._shown = self._banner.text()
        self._version = None  # the first check reads the record, whatever the marker says
        self._timer.start()

    def stop(self) -> None:
        """Stop following (a new send started, or the window closes)."""
        self._record_id = None
        self._timer.stop()

    def following(self) -> int | None:
        """The record followed, or None."""
        return self._record_id

    def check(self) -> None:
        """Show the record's status if the history changed; stop once it is final."""
        store = self._history()
        if self._record_id is None or store is None or self._banner.text() != self._shown:
            self.stop()  # hidden by the person, or showing something else now
            return
        try:
            version = store.data_version()
            if version == self._version:
                return
            self._version = version
            record = store.get(self._record_id)
        except (RuntimeError, HistoryError) as exc:  # closed or replaced
            log.debug("stopped following a payout: %s", exc)
            self.stop()
            return
        self._banner.show_record(record)
        self._shown = self._banner.text()
        if is_final(record.gateway_status):
            self.stop()
