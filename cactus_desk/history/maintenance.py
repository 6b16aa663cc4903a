"""Background upkeep of an open history for processes without an event loop (the receiver).

The window runs the same port operation from a timer on a worker; this is the thread form.
"""

from __future__ import annotations

import logging
import threading

from cactus_desk.history.port import HistoryMaintenance
from cactus_desk.history.types import HistoryClosedError, HistoryError

log = logging.getLogger(__name__)

# How often a writing process runs a maintenance pass, and how soon again when it left work.
INTERVAL_S = 1.0
SOON_S = 0.05


class MaintenanceThread:
    """Calls ``store.run_maintenance`` every ``interval_s`` on a daemon thread until stopped."""

    def __init__(self, store: HistoryMaintenance, interval_s: float = INTERVAL_S) -> None:
        self._store = store
        self._interval = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="history-upkeep", daemon=True)
        self.passes = 0

    def start(self) -> MaintenanceThread:
        """Start the thread; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop and wait for the pass in progress (a few tens of milliseconds at most)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

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
