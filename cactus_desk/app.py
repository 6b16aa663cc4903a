"""Start the window: ``run(argv)`` for the command line, ``build_main_window(argv)`` for tests.

PySide6 and the screens are imported inside the functions, so ``cactus-desk --help`` and the
no-display check answer without loading Qt.

``run`` shows the window's light shell first, builds what a payout needs (profiles, the
payout form, the balance, the sandbox) right after its first paint, and once that usable
window has painted, starts the rest off the GUI thread (the history opens on a worker, the
balance is fetched) and installs the exception hook, the version and the icon. So the
window appears about as fast as an empty one and is usable soon after;
``build_main_window`` does all of it, waiting for the history, before returning.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import cactus_desk
from cactus_desk import APP_NAME, ORG_NAME, paths

if TYPE_CHECKING:
    from PySide6.QtCore import QEvent, QObject
    from PySide6.QtWidgets import QMainWindow, QWidget

    from cactus_desk.ui.exception_hook import ExceptionHook
    from cactus_desk.ui.main_window import MainWindow

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2

# If no paint comes (a window started minimised), the start-up is finished after this long.
FINISH_FALLBACK_MS = 1000
# pydantic looks for plugins in every installed package's metadata on its first model (about
# as long as the rest of pydantic's import); the app uses none. Set unless already chosen.
PYDANTIC_PLUGINS = ("PYDANTIC_DISABLE_PLUGINS", "__all__")

NO_DISPLAY_MESSAGE = (
    "cactus-desk: no display: run it in a desktop session, or set QT_QPA_PLATFORM=offscreen "
    "for a headless run"
)


class UsageError(ValueError):
    """The window's arguments are wrong; the message says which and why."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= 600:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 and at most 600 seconds")
    return value


def _folder(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must name a folder, not be empty")
    return text


def build_parser() -> argparse.ArgumentParser:
    """The arguments the window understands (the CLI passes its own through)."""
    parser = _Parser(prog="cactus-desk", add_help=False)
    parser.add_argument("--sandbox", action="store_true")
    parser.add_argument("--data-dir", metavar="DIR", type=_folder)
    parser.add_argument(
        "--store",
        metavar="URL",
        type=_folder,
        help="the team history (postgresql://...), or 'local' for this computer's",
    )
    parser.add_argument(
        "--read-timeout",
        type=_seconds,
        metavar="SECONDS",
        help="read timeout for the embedded sandbox profile (tests use a short one)",
    )
    parser.add_argument(
        "--finalize-after",
        type=_seconds,
        metavar="SECONDS",
        help="seconds before the embedded sandbox finalizes an accepted payout (default 5)",
    )
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse the window's arguments; raises UsageError with a readable message."""
    return build_parser().parse_args(argv)


def display_available(environ: Mapping[str, str] | None = None) -> bool:
    """False on Linux with neither a display nor a chosen Qt platform (Qt would abort)."""
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return True
    return any(env.get(name) for name in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"))


def _set_application_names() -> None:
    from PySide6.QtGui import QGuiApplication

    QGuiApplication.setApplicationName(APP_NAME)
    QGuiApplication.setOrganizationName(ORG_NAME)


def _set_application_version_and_icon() -> None:
    # Both cost a little (package metadata, the SVG icon engine): not before the first paint.
    from PySide6.QtGui import QGuiApplication, QIcon

    from cactus_desk.resources import resource_path

    QGuiApplication.setApplicationVersion(cactus_desk.__version__)
    try:
        icon = resource_path("icons/cactus-desk.svg")
    except FileNotFoundError:
        return
    if icon.is_file():
        QGuiApplication.setWindowIcon(QIcon(str(icon)))


def build_main_window(argv: list[str], *, settle_heap: bool = False) -> QMainWindow:
    """Build the main window from the command-line arguments without entering the event loop.

    A ``QApplication`` must exist. ``--sandbox`` starts the embedded sandbox gateway and selects
    its in-memory profile; ``--data-dir DIR`` chooses the data folder; ``--read-timeout S``
    shortens the sandbox profile's read timeout; ``--finalize-after S`` sets how long the sandbox
    waits before it sends a payout's final callback. With ``settle_heap`` the heap is settled
    once the start is over, as ``run`` does (``settle_heap_after_start``). Raises UsageError
    for bad arguments.
    """
    args = parse_args(list(argv))
    window = _build_shell(args)
    _finish(window, args)
    _set_application_version_and_icon()
    if settle_heap:
        settle_heap_after_start(window)
    window.wait_started()
    return window


def settle_heap_after_start(window: MainWindow) -> None:
    """``heap.settle_heap`` once ``window``'s start is over (its ``startSettled``)."""
    from cactus_desk.heap import settle_heap

    window.startSettled.connect(settle_heap)


def _build_shell(args: argparse.Namespace) -> MainWindow:
    """The window's shell (title, menus, "Loading…" in the status bar); takes the instance lock."""
    from PySide6.QtWidgets import QApplication

    from cactus_desk.ui.pyside_imports import quicken_feature_check

    quicken_feature_check()  # before the window's modules are imported
    from cactus_desk.ui.main_window import MainWindow

    if QApplication.instance() is None:
        raise RuntimeError("build_main_window needs a QApplication; create one first")
    from cactus_desk.store_choice import chosen_store

    _set_application_names()
    data_dir = paths.data_dir(args.data_dir)
    return MainWindow(
        data_dir,
        sandbox_read_timeout=args.read_timeout,
        sandbox_finalize_after=args.finalize_after,
        # --store, else $CACTUS_DESK_STORE, else `team connect`'s default (a small file)
        store_url=chosen_store(data_dir, args.store),
    )


def _finish(window: MainWindow, args: argparse.Namespace) -> None:
    """What the first paint does not need and a payout does: the window's parts, the sandbox."""
    window.finish_startup()
    if args.sandbox and window.is_ready():
        window.start_sandbox()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _report_start_failure(message: str) -> None:
    from PySide6.QtWidgets import QApplication, QMessageBox

    print(f"cactus-desk: error: {message}", file=sys.stderr)
    if QApplication.platformName() != "offscreen":  # nobody could dismiss it headless
        QMessageBox.critical(None, APP_NAME, f"Cactus Desk could not start:\n\n{message}")


def _after_first_paint(window: QWidget, action: Callable[[], None]) -> QObject:
    """Call ``action`` once, when ``window``'s next paint is over (or after a fallback delay).

    ``window`` is any widget: a main window whose central widget covers it is not painted
    itself, its central widget is.

    Returns the watcher; keep it alive until then.
    """
    from PySide6.QtCore import QEvent, QObject, QTimer

    class FirstPaint(QObject):
        def __init__(self) -> None:
            super().__init__(window)
            self._done = False
            window.installEventFilter(self)
            QTimer.singleShot(FINISH_FALLBACK_MS, self, self._fire)

        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if watched is window and event.type() == QEvent.Type.Paint and not self._done:
                # A zero timer runs once this paint pass, children included, is over.
                QTimer.singleShot(0, self, self._fire)
            return False

        def _fire(self) -> None:
            if not self._done:
                self._done = True
                window.removeEventFilter(self)
                action()

    return FirstPaint()


def _start_logging(args: argparse.Namespace) -> Path | None:
    """Log to the data folder's log file; the path, or None (with a warning) when it cannot."""
    from cactus_desk.logs import setup_logging

    explicit = bool(args.data_dir or os.environ.get(paths.ENV_HOME))
    data = paths.data_dir(args.data_dir)
    try:
        return setup_logging(paths.log_dir(data, explicit_data_dir=explicit))
    except OSError as exc:
        print(f"cactus-desk: warning: not logging to a file: {exc}", file=sys.stderr)
        return None


def run(argv: list[str] | None = None) -> int:
    """Open the main window and run the event loop; return the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parse_args(arguments)
    except UsageError as exc:
        print(f"cactus-desk: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not display_available():
        print(NO_DISPLAY_MESSAGE, file=sys.stderr)
        return EXIT_USAGE

    from PySide6.QtWidgets import QApplication

    os.environ.setdefault(*PYDANTIC_PLUGINS)
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "cactus-desk"])
    try:
        window = _build_shell(args)
    except Exception as exc:  # a start-up failure gets one readable line, never a traceback
        _report_start_failure(_one_line(exc))
        return EXIT_FAILURE
    hooks: list[ExceptionHook] = []
    watchers: list[QObject] = []
    log_paths: list[Path | None] = []

    def fail(message: str) -> None:
        logging.getLogger(__name__).error("start-up failed: %s", message)
        _report_start_failure(message)
        app.exit(EXIT_FAILURE)
        window.shutdown()
        window.hide()

    def finish() -> None:
        log_paths.append(_start_logging(args))
        try:
            _finish(window, args)
        except Exception as exc:  # as if before the show: one readable line, exit code 1
            fail(_one_line(exc))
            return
        # The rest once this usable window has painted: nothing of it delays that paint.
        watchers.append(_after_first_paint(window.centralWidget() or window, background))

    def background() -> None:
        from cactus_desk.ui.exception_hook import install_exception_hook

        window.startupFailed.connect(fail)  # e.g. a history that cannot be opened
        settle_heap_after_start(window)
        window.start_background()
        # From here an unexpected error is logged and explained, and the window carries on.
        hooks.append(install_exception_hook(window, log_paths[0]))
        _set_application_version_and_icon()

    watcher = _after_first_paint(window, finish)
    window.show()
    try:
        return app.exec()
    finally:
        watcher.deleteLater()
        for later in watchers:
            later.deleteLater()
        for hook in hooks:
            hook.uninstall()
        window.shutdown()  # after a quit that bypassed closeEvent, too
