"""The child of the start-up benchmark: ``bare`` (an empty QMainWindow) or ``app ARGS...``.

It prints ``PAINT <monotonic ns>`` once the first main window has finished its first paint,
``RSS <MB>`` a second later, and quits. For ``app`` it runs the normal entry point,
``cactus_desk.cli.main``, which finds the QApplication the probe made and uses it.
"""

from __future__ import annotations

import sys
import time

from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QMainWindow

SETTLE_MS = 1000


class FirstPaint(QObject):
    """Reports when the first main window's first paint is over."""

    def __init__(self, app: QApplication) -> None:
        super().__init__()
        self._app = app
        self._seen = False

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (
            not self._seen
            and event.type() == QEvent.Type.Paint
            and isinstance(watched, QMainWindow)
        ):
            self._seen = True
            # A zero timer fires once this paint pass (children included) is done.
            QTimer.singleShot(0, self._painted)
        return False

    def _painted(self) -> None:
        print(f"PAINT {time.monotonic_ns()}", flush=True)
        QTimer.singleShot(SETTLE_MS, self._settled)

    def _settled(self) -> None:
        # Imported only now: the bare program must not pay for it before its paint either.
        from benchmarks.common import rss_mb

        print(f"RSS {rss_mb()}", flush=True)
        self._app.quit()


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
