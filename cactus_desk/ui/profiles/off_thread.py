"""Profile store calls that may go over the network, kept off the GUI thread.

On a team store the profiles are in PostgreSQL: each read or write is a round trip (or a
connection timeout). ``profile_call`` runs such a call with ``ui.off_thread.call_off_gui``
(the GUI thread keeps painting meanwhile) and returns its result or raises its error, so the
dialogs keep their plain call-and-answer shape. This computer's own profiles file is read
and written in place, as before: a few kilobytes on local disk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from cactus_desk.profiles import ProfileStore, ProfileStoreError
from cactus_desk.ui.off_thread import WAIT_MS, NoAnswerInTime, call_off_gui

T = TypeVar("T")


def is_remote(store: object) -> bool:
    """True for a profile store that is not this computer's own file."""
    return not isinstance(store, ProfileStore)


def profile_call(store: object, action: Callable[[], T], msecs: int = WAIT_MS) -> T:
    """``action()`` (a call on ``store``), off the GUI thread when ``store`` is remote."""
    if not is_remote(store):
        return action()
    try:
        return call_off_gui(action, msecs)
    except NoAnswerInTime:
        raise ProfileStoreError("The team's profiles did not answer in time; try again.") from None
