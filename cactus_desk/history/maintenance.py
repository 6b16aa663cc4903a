"""Background upkeep of an open history for processes without an event loop (the receiver).

The window runs the same port operation from a timer on a worker; this is the thread form.
It also takes the daily backup of a local history (most of a minute on a big one) beside the
upkeep, so neither callbacks nor the WAL checkpoints wait for it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from cactus_desk.history.port import HistoryMaintenance
from cactus_desk.history.types import BackupError, HistoryClosedError, HistoryError

log = logging.getLogger(__name__)

# How often a writing process runs a maintenance pass, and how soon again when it left work.
INTERVAL_S = 1.0
SOON_S = 0.05
# How often the upkeep looks whether the daily backup is due (a listing of the backup folder),
# and how soon after the start it first looks.
BACKUP_CHECK_S = 600.0
FIRST_BACKUP_CHECK_S = 5.0

# Takes the daily backup when it is due; abandons it when the callable it is given says so.
DailyBackup = Callable[[Callable[[], bool]], object]


class MaintenanceThread:
    """Calls ``store.run_maintenance`` every ``interval_s`` on a daemon thread until stopped.

    With ``daily_backup``, a second daemon thread calls it soon after the start and then
    every ``backup_check_s``; ``stop`` abandons a backup in progress (its partial files are
    removed) rather than waiting for it.
    """

    def __init__(
        self,
        store: HistoryMaintenance,
        interval_s: float = INTERVAL_S,
        *,
        daily_backup: DailyBackup | None = None,
        backup_check_s: float = BACKUP_CHECK_S,
        first_backup_check_s: float = FIRST_BACKUP_CHECK_S,
    ) -> None:
        self._store = store
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="history-upkeep", daemon=True)
        self._daily_backup = daily_backup
        self._backup_waits = (first_backup_check_s, backup_check_s)
        self._backup_thread = threading.Thread(
            target=self._backup_loop, name="history-backup", daemon=True
        )
        self.passes = 0
        self.backups_taken = 0

    def start(self) -> MaintenanceThread:
        """Start the thread(s); returns self."""
        self._thread.start()
        if self._daily_backup is not None:
            self._backup_thread.start()
        return self

    def stop(self) -> None:
        """Stop and wait for the pass in progress (a few tens of milliseconds at most) and for
        a backup in progress to be abandoned (within one of its steps)."""
        self._stop.set()
        for thread in (self._thread, self._backup_thread):
            if thread.is_alive():
                thread.join()

    def __enter__(self) -> MaintenanceThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _loop(self) -> None:
        wait = self._interval
        while not self._stop.wait(wait):
            try:
                report = self._store.run_maintenance()
            except HistoryClosedError:
                return
            except HistoryError as exc:  # busy or unreadable now: the next pass tries again
                log.warning("history upkeep skipped: %s", exc)
                wait = self._interval
                continue
            self.passes += 1
            wait = SOON_S if report.more else self._interval

    def _backup_loop(self) -> None:
        assert self._daily_backup is not None
        wait, every = self._backup_waits
        while not self._stop.wait(wait):
            wait = every
            try:
                taken = self._daily_backup(self._stop.is_set)
            except BackupError as exc:  # also an abandoned one; the next look tries again
                if not self._stop.is_set():
                    log.warning("the daily backup was not taken: %s", exc)
                continue
            if taken is not None:
                self.backups_taken += 1
                log.info("daily backup taken")
