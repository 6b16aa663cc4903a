"""The child of the start-up benchmark: ``bare`` (an empty QMainWindow) or ``app ARGS...``.

It prints ``PAINT <monotonic ns>`` once the first main window has finished its first paint,
``RSS <MB>`` a second later, ``READY <monotonic ns>`` once the window is usable (below), and
quits when it has printed all three. For ``app`` it runs the normal entry point,
``cactus_desk.cli.main``, which finds the QApplication the probe made and uses it.

Usable ("ready") is the end of the first event-loop pass after a paint at which all of this
holds: the window says its start-up is finished (``is_ready()``, where it has one), the payout
form's profile choice holds a profile (where there is a form), and every widget of the window
that is visible and not hidden under an opaque child has been painted since it was last shown,
with no paint still pending. For the bare window that is its first paint.

Until that first paint the probe filters the events of the whole application (the window does
not exist before); from then on only those of the window, its native window and its widgets,
and it looks only at widgets. An object of one of Qt's private classes (the gesture manager a
scroll area starts, a line edit's text control) handed to Python as a plain QObject, by an
application-wide filter or by ``children()``, makes PySide6 create every class of QtCore,
QtGui and QtWidgets with all their enums: 50-90 ms inside the window's start that the app,
which hands Python no such object, never spends. Widgets created later are found before each
paint pass (an update request or an expose of the window), so their paints are seen.
"""

from __future__ import annotations

import sys
import time

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QComboBox, QMainWindow, QWidget
from shiboken6 import isValid

SETTLE_MS = 1000
READY_TIMEOUT_MS = 60_000


class FirstPaint(QObject):
    """Reports the first main window's first paint, and when the whole window is usable."""

    def __init__(self, app: QApplication) -> None:
        super().__init__()
        self._app = app
        self._seen = False
        self._window: QMainWindow | None = None
        self._painted: set[int] = set()
        self._check_queued = False
        self._ready = False
        self._settled = False
        # The widgets filtered one by one, by id; held so no id is reused while watched.
        self._watched: dict[int, QObject] = {}

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind == QEvent.Type.Paint:
            self._painted.add(id(watched))
            if not self._seen and isinstance(watched, QMainWindow):
                self._seen = True
                self._window = watched
                self._watch_window(watched)
                # Its children paint after it in this pass. Ids seen so far may belong to
                # wrappers gone since, whose ids a new widget could take: forget them.
                self._painted = {id(watched)}
                # A zero timer fires once this paint pass (children included) is done.
                QTimer.singleShot(0, self._first_painted)
                QTimer.singleShot(READY_TIMEOUT_MS, self._timed_out)
                # Readiness normally arrives with a paint; a state change without one (the
                # profile choice filled in) is caught by this frame-rate poll.
                self._poll = QTimer(self)
                self._poll.timeout.connect(self._check_ready)
                self._poll.start(16)
            elif self._seen and not self._ready and not self._check_queued:
                self._check_queued = True
                QTimer.singleShot(0, self._check_ready)
        elif kind == QEvent.Type.Show:
            self._painted.discard(id(watched))
        elif kind in _PAINT_PASSES and self._window is not None and not self._ready:
            self._watch_widgets(self._window)  # before the pass paints a new widget
        return False

    def _watch_window(self, window: QMainWindow) -> None:
        """Filter the window's own objects instead of the whole application's (see above).

        Called during the window's first paint: its widgets painted later in this pass are
        filtered by then."""
        self._app.removeEventFilter(self)
        self._watch(window)
        handle = window.windowHandle()
        if handle is not None:
            self._watch(handle)
        self._watch_widgets(window)

    def _watch_widgets(self, window: QMainWindow) -> None:
        for widget in window.findChildren(QWidget):
            if id(widget) not in self._watched:
                self._watch(widget)

    def _watch(self, target: QObject) -> None:
        self._watched[id(target)] = target
        target.installEventFilter(self)

    def _first_painted(self) -> None:
        print(f"PAINT {time.monotonic_ns()}", flush=True)
        QTimer.singleShot(SETTLE_MS, self._settle)
        self._check_ready()

    def _unpainted(self) -> list[QWidget]:
        window = self._window
        if window is None:
            return []
        widgets = [window, *window.findChildren(QWidget)]
        return [
            widget
            for widget in widgets
            if widget.isVisible()
            and not widget.visibleRegion().isEmpty()
            and not _covered(widget)
            and id(widget) not in self._painted
        ]

    def _check_ready(self) -> None:
        self._check_queued = False
        window = self._window
        if self._ready or window is None:
            return
        is_ready = getattr(window, "is_ready", None)
        if is_ready is not None and not is_ready():
            return
        combo = window.findChild(QComboBox, "profileCombo")
        if is_ready is not None and (combo is None or combo.currentIndex() < 0):
            return
        if self._unpainted():
            return
        self._ready = True
        self._poll.stop()
        for target in self._watched.values():
            if isValid(target):
                target.removeEventFilter(self)
        self._watched.clear()
        print(f"READY {time.monotonic_ns()}", flush=True)
        self._maybe_quit()

    def _timed_out(self) -> None:
        if not self._ready:
            names = [w.objectName() or type(w).__name__ for w in self._unpainted()]
            print(f"NOT_READY {' '.join(names[:20])}", flush=True)
            self._app.quit()

    def _settle(self) -> None:
        # Imported only now: the bare program must not pay for it before its paint either.
        from benchmarks.common import rss_mb

        print(f"RSS {rss_mb()}", flush=True)
        self._settled = True
        self._maybe_quit()

    def _maybe_quit(self) -> None:
        if self._ready and self._settled:
            self._app.quit()


def _covered(widget: QWidget) -> bool:
    """True when an opaque visible child fills ``widget`` (Qt then sends it no paint)."""
    rect = widget.rect()
    # Its widgets only: ``children()`` would wrap Qt's private objects too (see above).
    for child in widget.findChildren(QWidget, options=_DIRECT):
        if (
            child.isVisible()
            and not child.isWindow()
            and (child.autoFillBackground() or child.testAttribute(_OPAQUE))
            and child.geometry().contains(rect)
        ):
            return True
    return False


_QT = __import__("PySide6.QtCore", fromlist=["Qt"]).Qt
_OPAQUE = _QT.WidgetAttribute.WA_OpaquePaintEvent
_DIRECT = _QT.FindChildOption.FindDirectChildrenOnly
# The events that start a paint pass of the window: its update request, its native expose.
_PAINT_PASSES = (QEvent.Type.UpdateRequest, QEvent.Type.Expose)


def main(argv: list[str]) -> int:
    app = QApplication(sys.argv[:1])
    probe = FirstPaint(app)
    app.installEventFilter(probe)
    if argv[:1] == ["bare"]:
        window = QMainWindow()
        window.show()
        return app.exec()
    from cactus_desk.cli import main as cactus_desk

    return cactus_desk(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
