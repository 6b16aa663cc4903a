"""Live statuses: the sandbox's callbacks reach the window, and other processes' writes show up.

``LiveStatuses`` runs the callback receiver in this process for the embedded sandbox and lets
the sandbox's finalizer post to it, so a payout moves from Processing to Success or Declined
while the window is open. It starts after the window's first paint, on a worker thread, so
start-up never waits for uvicorn. The history notices new records (the port's
``newest_record_id``) without reloading the table.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QObject, QTimer, Signal

from cactus_desk.history.port import HistoryStore
from cactus_desk.ui.workers import Runner

if TYPE_CHECKING:
    from cactus_desk.receiver import BackgroundReceiver
    from cactus_desk.sandbox import SandboxGateway
    from cactus_desk.sandbox.finalizer import Finalizer

log = logging.getLogger(__name__)

#: Seconds the embedded sandbox waits before it finalizes an accepted payout.
DEFAULT_FINALIZE_AFTER = 5.0
NO_RECEIVER_MESSAGE = (
    "Live statuses need the receiver extra (pip install 'cactus-desk[receiver]'): "
    "sandbox payouts stay Processing."
)


class _NoReceiverExtra(Exception):
    """uvicorn is not installed."""


class LiveStatuses(QObject):
    """The embedded sandbox's callbacks, received in this process and written to ``store``.

    Invoices the sandbox accepts before the receiver is up wait and are finalized once it is.
    Without uvicorn it reports ``unavailable`` and the window works on without live statuses.
    """

    started = Signal(str)  # the callback URL
    unavailable = Signal(str)  # a message for the status bar

    def __init__(
        self,
        store: HistoryStore,
        sandbox: SandboxGateway,
        *,
        finalize_after: float = DEFAULT_FINALIZE_AFTER,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._store = store
        self._sandbox = sandbox
        self._finalize_after = finalize_after
        self._runner = Runner(self)
        self._lock = threading.Lock()
        self._receiver: BackgroundReceiver | None = None
        self._finalizer: Finalizer | None = None
        self._waiting: list[dict[str, Any]] = []
        self._starting = False
        self._stopped = False
        self._message = ""
        self._watched: QObject | None = None
        sandbox.on_accept = self._accepted

    @property
    def callback_url(self) -> str | None:
        """Where the sandbox posts its callbacks, once the receiver runs."""
        with self._lock:
            return self._receiver.url if self._receiver is not None else None

    @property
    def finalizer(self) -> Finalizer | None:
        """The sandbox's finalizer, once started."""
        return self._finalizer

    @property
    def message(self) -> str:
        """Why live statuses are off (empty while they work or are starting)."""
        return self._message

    def is_running(self) -> bool:
        """True once callbacks are being received."""
        with self._lock:
            return self._finalizer is not None

    def start_after_first_paint(self, window: QObject) -> None:
        """Start once ``window`` has painted (start-up does not wait for the receiver)."""
        self._watched = window
        window.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self._watched and event.type() == QEvent.Type.Paint:
            watched.removeEventFilter(self)
            self._watched = None
            QTimer.singleShot(0, self.start)
        return False

    def start(self) -> None:
        """Start the receiver and the finalizer on a worker thread (once)."""
        with self._lock:
            if self._starting or self._stopped:
                return
            self._starting = True
        self._runner.run(self._start_in_background, self._on_started, self._on_failed)

    def stop(self) -> None:
        """Stop the finalizer, then the receiver; safe to call twice, and during start()."""
        if self._watched is not None:
            self._watched.removeEventFilter(self)
            self._watched = None
        with self._lock:
            self._stopped = True
            finalizer, self._finalizer = self._finalizer, None
            receiver, self._receiver = self._receiver, None
            self._waiting.clear()
        if self._sandbox.on_accept == self._accepted:
            self._sandbox.on_accept = None
        if finalizer is not None:
            finalizer.stop()
        if receiver is not None:
            receiver.stop()

    # -- worker thread ----------------------------------------------------------------------

    def _accepted(self, invoice: dict[str, Any]) -> None:  # the sandbox's handler thread
        with self._lock:
            if self._finalizer is None:
                if not self._stopped:
                    self._waiting.append(invoice)
                return
            finalizer = self._finalizer
        finalizer.schedule(invoice)

    def _start_in_background(self) -> str:
        from cactus_desk.receiver import BackgroundReceiver, CallbackApp, ReceiverError
        from cactus_desk.receiver.serve import require_uvicorn
        from cactus_desk.sandbox.finalizer import Finalizer

        try:
            require_uvicorn()
        except ReceiverError:
            raise _NoReceiverExtra from None
        sandbox = self._sandbox
        app = CallbackApp(
            self._store, sandbox.salt, merchant_id=sandbox.merchant_id, site_id=sandbox.site_id
        )
        receiver = BackgroundReceiver(app).start()
        finalizer = Finalizer(sandbox.salt, receiver.url, delay=self._finalize_after).start()
        with self._lock:
            if not self._stopped:
                self._receiver, self._finalizer = receiver, finalizer
                waiting, self._waiting = self._waiting, []
                for invoice in waiting:
                    finalizer.schedule(invoice)
                return receiver.url
        # The window closed while this was starting.
        finalizer.stop()
        receiver.stop()
        return ""

    # -- GUI thread -------------------------------------------------------------------------

    def _on_started(self, url: str) -> None:
        if url:
            log.info("live statuses: sandbox callbacks go to %s", url)
            self.started.emit(url)

    def _on_failed(self, error: BaseException) -> None:
        if isinstance(error, _NoReceiverExtra):
            self._message = NO_RECEIVER_MESSAGE
        else:
            log.error("live statuses could not start", exc_info=error)
            self._message = f"Live statuses are off: {error}"
        with self._lock:
            self._waiting.clear()
        self.unavailable.emit(self._message)
