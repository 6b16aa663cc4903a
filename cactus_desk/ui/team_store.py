"""The window on a team store: which store it is on, and the team's live changes.

``StoreIndicator`` is the status bar's "Local" or "Team: host/db · login" (the person signed
in, never a password), with a tooltip, and a plain "unreachable" state while the team store
cannot be reached. ``TeamLive`` runs the history's ``ChangeListener`` (its own connection
and thread, in the Qt-free ``history/postgres/listen.py``) and brings its batches and states
to the GUI thread as signals; the window refreshes the History rows and the result banner
from them through the same port reads as the local history's change watch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QLabel, QWidget

from cactus_desk.ui import style
from cactus_desk.ui.workers import Runner

log = logging.getLogger(__name__)

UNREACHABLE_TEXT = "Team store unreachable — reconnecting…"
RECONNECTED_TEXT = "Team store reconnected"
RECONNECTED_SHOWN_MS = 10_000


#: Back-off between attempts to open a team store that could not be reached at start (as
#: the listener's: the first delay, doubled up to the last), in seconds.
REOPEN_BACKOFF_S = (0.25, 5.0)


def next_reconnect_delay(previous: float | None) -> float:
    """The wait before the next attempt: the first one, then doubled up to the cap."""
    first, cap = REOPEN_BACKOFF_S
    return first if previous is None else min(previous * 2, cap)


def team_label(url: str) -> tuple[str, str, str]:
    """``(host/db, host:port/db, login in the URL)`` of a store URL, for people."""
    from cactus_desk.history import check_store_url

    target = check_store_url(url)
    return f"{target.host}/{target.dbname}", target.label, target.user


class ReadProfiles:
    """A read-only view of profiles already read (``all``), for readers on the GUI thread."""

    def __init__(self, read: Callable[[], list[Any]]) -> None:
        self._read = read

    def all(self) -> list[Any]:
        """The profiles as last read."""
        return self._read()


class StoreIndicator(QLabel):
    """The store the window is on, in the status bar."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("storeIndicator")
        self._base = ""
        self._full = ""
        self._login = ""
        self.unreachable = False

    def show_local(self, location: str) -> None:
        """On this computer's own history (``location`` is its folder)."""
        self._base = ""
        self.setText("Local")
        self.setToolTip(f"The payout history on this computer ({location})")
        self.setStyleSheet("")

    def show_team(self, url: str, login: str = "") -> None:
        """On the team store at ``url``; ``login`` is the person signed in (when known)."""
        self._base, self._full, url_login = team_label(url)
        self._login = login or url_login or self._login
        self.unreachable = False
        self._paint()

    def set_login(self, login: str) -> None:
        """The person the database says is signed in (``session_user``)."""
        if login:
            self._login = login
            self._paint()

    def set_unreachable(self, unreachable: bool, message: str = "") -> None:
        """Show (or clear) that the team store cannot be reached right now."""
        self.unreachable = unreachable
        self._paint(message)

    def _paint(self, message: str = "") -> None:
        who = f" · {self._login}" if self._login else ""
        text = f"Team: {self._base}{who}"
        tip = (
            f"The team's shared payout history at {self._full}, "
            f"signed in as {self._login or 'the login of the store URL'}."
        )
        if self.unreachable:
            text += " — unreachable"
            tip += (
                "\n\nIt cannot be reached right now; Cactus Desk reconnects by itself. "
                "Nothing can be sent until then."
            )
            if message:
                tip += f"\n{message}"
            self.setStyleSheet(f"QLabel {{ color: {style.ERROR_FG}; font-weight: bold; }}")
        else:
            self.setStyleSheet("")
        self.setText(text)
        self.setToolTip(tip)


class TeamLive(QObject):
    """The team history's live changes, delivered on the GUI thread.

    ``changed`` carries a ``ChangeBatch``; ``stateChanged`` the listener's state
    (``connected``, ``unreachable``, ``reconnected``) and a message; ``signedIn`` the login.
    """

    changed = Signal(object)
    stateChanged = Signal(str, str)
    signedIn = Signal(str)

    def __init__(self, store: Any, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self._runner = Runner(self)
        self._listener: Any = None  # the adapter's ChangeListener
        self._stopped = False

    def start(self) -> None:
        """Ask who is signed in (on a worker) and start listening (its own thread)."""
        # Signals emitted on the listener's thread reach the slots queued, on the GUI thread.
        self._listener = self._store.change_listener(self.changed.emit, self.stateChanged.emit)
        self._listener.start()
        self._runner.run(
            self._store.signed_in_as,
            self._signed_in,
            lambda error: log.warning("the signed-in login could not be read: %s", error),
        )

    @property
    def listener(self) -> Any:
        """The listener, once started."""
        return self._listener

    def _signed_in(self, login: str) -> None:
        if not self._stopped:
            self.signedIn.emit(login)

    def stop(self) -> None:
        """Stop listening; safe to call twice."""
        self._stopped = True
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.stop()
