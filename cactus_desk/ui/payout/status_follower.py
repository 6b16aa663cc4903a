"""Keeps the result banner of the payout just sent up to date as its status moves on.

An accepted payout usually answers "Processing"; the gateway's callback says later whether it
was paid or declined. The follower looks at the history's change marker once a second and,
when something was committed, re-reads that one record (a primary-key read) and shows it.
Both reads run on a worker; an answer for a payout no longer followed is dropped. It stops
at a final status, when the banner is hidden or shows another payout.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer

from cactus_desk.callbacks.lifecycle import is_final
from cactus_desk.ui.payout.result_banner import ResultBanner
from cactus_desk.ui.workers import Runner

if TYPE_CHECKING:  # the history's types load with the history, after the window is usable
    from cactus_desk.history.port import HistoryStore
    from cactus_desk.history.types import PayoutRecord

log = logging.getLogger(__name__)

INTERVAL_MS = 1000
CHANNEL = "status-follower"


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
        self._runner = Runner(self)
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
        """Read the record on a worker if the history changed; stop once it is final."""
        store = self._history()
        if self._record_id is None or store is None or self._banner.text() != self._shown:
            self.stop()  # hidden by the person, or showing something else now
            return
        if self._runner.busy(CHANNEL):
            return  # the last look has not answered yet
        record_id, seen = self._record_id, self._version

        def read() -> tuple[int, PayoutRecord | None]:  # worker thread
            version = store.data_version()
            return version, (store.get(record_id) if version != seen else None)

        self._runner.run(
            read,
            lambda found: self._read(record_id, *found),
            lambda error: self._failed(record_id, error),
            channel=CHANNEL,
        )

    def _read(self, record_id: int, version: int, record: PayoutRecord | None) -> None:
        if record_id != self._record_id or self._banner.text() != self._shown:
            return  # stopped, or following another payout now
        self._version = version
        if record is None:
            return
        self._banner.show_record(record)
        self._shown = self._banner.text()
        if is_final(record.gateway_status):
            self.stop()

    def _failed(self, record_id: int, error: BaseException) -> None:
        if record_id != self._record_id:
            return
        from cactus_desk.history.types import HistoryError, HistoryUnavailableError  # loaded

        if isinstance(error, HistoryUnavailableError):
            # The team's database restarting, the file busy, or the store being replaced:
            # look again on the next tick (which stops if there is no history any more), so
            # the banner still catches up with a callback stored meanwhile.
            log.debug("a followed payout could not be read for now: %s", error)
            return
        if isinstance(error, (RuntimeError, HistoryError)):  # closed
            log.debug("stopped following a payout: %s", error)
        else:
            log.error("a followed payout could not be read", exc_info=error)
        self.stop()
