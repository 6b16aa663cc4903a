"""A call the GUI thread needs an answer to, made on a thread of its own.

For the few places that must answer in line (a dialog opening with what the store says): the
call runs on a short-lived thread while the GUI thread keeps painting and handling input in
a local event loop (``workers.wait_for``), then its result is returned or its error raised.
On a team store such a call is a network round trip, or a connection timeout.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from cactus_desk.ui.workers import wait_for

T = TypeVar("T")

#: Longer than the team store's connection timeout, so its own error is what is shown.
WAIT_MS = 60_000


class NoAnswerInTime(TimeoutError):
    """The call did not answer within the wait."""


def call_off_gui(action: Callable[[], T], msecs: int = WAIT_MS) -> T:
    """``action()`` run on its own thread, the event loop running meanwhile."""
    answer: list[tuple[bool, object]] = []

    def run() -> None:
        try:
            answer.append((True, action()))
        except BaseException as exc:  # handed to the caller on the GUI thread
            answer.append((False, exc))

    threading.Thread(target=run, name="cactus-off-gui", daemon=True).start()
    if not wait_for(lambda: bool(answer), msecs):
        raise NoAnswerInTime("No answer in time; try again.")
    ok, value = answer[0]
    if not ok:
        raise value  # type: ignore[misc]
    return value  # type: ignore[return-value]
