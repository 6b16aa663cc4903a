"""Start-up and shutdown: arguments, no display, first run, the sandbox profile, restart."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDialog, QLabel, QPushButton
from pytestqt.qtbot import QtBot

from cactus_desk import APP_NAME, ORG_NAME, __version__, app
from cactus_desk.history import open_history
from cactus_desk.payouts.payout import Payout, PayoutTarget
from cactus_desk.payouts.send import SendCode
from cactus_desk.payouts.states import State
from cactus_desk.profiles import Profile, ProfileStore
from cactus_desk.sandbox import Fault
from cactus_desk.ui.main_window import MainWindow
from tests.memory_keyring import MemoryKeyring
from tests.ui.conftest import PayoutDriver


def _build(qtbot: QtBot, argv: list[str]) -> MainWindow:
    window = app.build_main_window(argv)
    assert isinstance(window, MainWindow)
    qtbot.addWidget(window)
    return window


def _run_offscreen(code: str, *, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh Python with the offscreen Qt platform."""
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=check,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        timeout=60,
    )


def test_without_a_display_run_explains_and_returns_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "platform", "linux")
    for name in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    assert app.run(["--sandbox"]) == 2
    err = capsys.readouterr().err
    assert "no display: run it in a desktop session" in err
    assert "QT_QPA_PLATFORM=offscreen" in err


def test_bad_arguments_are_refused_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert app.run(["--read-timeout", "soon"]) == 2
    assert "'soon' is not a number of seconds" in capsys.readouterr().err
    with pytest.raises(app.UsageError, match="unrecognized arguments: --bogus"):
        app.build_main_window(["--bogus"])


def test_the_application_is_named_and_has_an_icon(window: MainWindow) -> None:
    assert QApplication.applicationName() == APP_NAME
    assert QApplication.organizationName() == ORG_NAME
    assert QApplication.applicationVersion() == __version__
    assert not QApplication.windowIcon().isNull()


def test_sandbox_selects_an_in_memory_profile_that_is_never_saved(
    window: MainWindow, memory_keyring: MemoryKeyring, data_home: Path
) -> None:
    profile = window.form.current_profile()
    assert profile is not None and profile.name == "Sandbox"
    assert profile.environment == "sandbox"
    assert window.sandbox is not None and profile.base_url == window.sandbox.base_url
    assert not window.showing_empty_state()
    # Not in profiles.json, and its salt is not in the keyring: memory only.
    assert window.profiles.all() == []
    assert not (data_home / "profiles.json").exists()
    assert memory_keyring.passwords == {}
    assert window.secrets.get_salt(profile.id) == window.sandbox.salt


def test_first_run_offers_the_sandbox_and_a_new_profile(qtbot: QtBot, data_home: Path) -> None:
    window = _build(qtbot, [])
    window.show()
    try:
        assert window.showing_empty_state()
        assert window.sandbox is None

        qtbot.mouseClick(window.empty_state.new_profile_button, Qt.MouseButton.LeftButton)
        dialog = window.findChild(QDialog, "profileDialog")
        assert dialog is not None and dialog.isVisible()
        dialog.reject()

        qtbot.mouseClick(window.empty_state.sandbox_button, Qt.MouseButton.LeftButton)
        assert not window.showing_empty_state()
        assert window.sandbox is not None
        assert window.form.current_profile().name == "Sandbox"
    finally:
        window.shutdown()


def test_a_saved_profile_skips_the_first_run_page(qtbot: QtBot, data_home: Path) -> None:
    ProfileStore(data_home).add(
        Profile(name="Acme", base_url="https://pay.example.com", merchant_id="m", site_id=7)
    )
    window = _build(qtbot, [])
    try:
        assert not window.showing_empty_state()
        assert window.form.profile_combo.currentText() == "Acme · LIVE"
    finally:
        window.shutdown()


def test_a_damaged_profile_file_is_reported_not_fatal(qtbot: QtBot, data_home: Path) -> None:
    data_home.mkdir(parents=True, exist_ok=True)
    (data_home / "profiles.json").write_text("{broken", encoding="utf-8")
    window = _build(qtbot, [])
    try:
        assert window.showing_empty_state()
        assert "is damaged" in window.empty_state.problem.text()
    finally:
        window.shutdown()


def test_the_menus_open_profiles_and_about(window: MainWindow) -> None:
    manager = window.open_profiles()
    assert manager.objectName() == "profileManagerDialog" and manager.isVisible()
    manager.close()
    about = window.open_about()
    assert about.objectName() == "aboutDialog" and about.isVisible()
    about.close()
    titles = [action.text() for action in window.menuBar().actions()]
    assert titles == ["&File", "&Help"]


def test_a_payout_is_in_the_history_after_a_restart(qtbot: QtBot, tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = _build(qtbot, ["--sandbox", "--data-dir", str(data)])
    request_id = PayoutDriver(first, qtbot).send("sbp", "RUB")
    first.close()
    assert first.sandbox is not None

    second = _build(qtbot, ["--data-dir", str(data)])
    try:
        second.tabs.setCurrentIndex(1)
        assert second.history_panel.select_request(request_id)
        records = list(second.history.iter_records())
        assert [r.request_id for r in records] == [request_id]
    finally:
        second.shutdown()


def test_closing_stops_the_sandbox_and_closes_the_store(window: MainWindow) -> None:
    sandbox = window.sandbox
    assert sandbox is not None
    port = sandbox.port
    window.close()
    assert not window.isVisible()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    profile = window.sandbox_profile
    payout = Payout(
        target=PayoutTarget.of(profile),
        request_id="po-after-close",
        site_login="alice",
        method="sbp",
        currency="RUB",
        amount_minor=1000,
        fields={"phone_number": "79990000000", "phone_holder": "Ivan Petrov"},
    )
    refused = window.send_controller.send(payout, profile)  # no send is taken once closed
    assert refused is not None and refused.code is SendCode.NOT_SENT


def test_closing_during_a_send_waits_for_its_outcome(
    driver: PayoutDriver, qtbot: QtBot, data_home: Path
) -> None:

    window = driver.window
    assert window.sandbox is not None
    window.sandbox.set_fault(Fault.LATENCY, delay=0.5)
    driver.fill("card", "RUB")
    request_id = driver.form.request_id_edit.text()
    driver.confirm(driver.open_confirm())
    window.close()
    assert window.isVisible()  # still open: the attempt must get its outcome first
    box = window.quit_question  # asked first; the answer: close once it is recorded
    assert box is not None
    box.findChild(QPushButton, "closeWhenRecordedButton").click()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=5000)
    with open_history(data_home) as store:
        [record] = store.iter_records()
    assert record.request_id == request_id
    assert record.state is State.ACCEPTED


def test_start_up_leaves_the_sandbox_and_the_history_screen_unloaded(tmp_path: Path) -> None:
    code = (
        "import sys, json\n"
        "from PySide6.QtWidgets import QApplication\n"
        "from cactus_desk.app import build_main_window\n"
        "qapp = QApplication([])\n"
        f"w = build_main_window(['--data-dir', {str(tmp_path)!r}])\n"
        "loaded = [m for m in ('cactus_desk.sandbox', 'cactus_desk.ui.history.panel',"
        " 'cactus_desk.ui.profiles.editor', 'cactus_desk.ui.profiles.manager',"
        " 'cactus_desk.ui.dialogs.about') if m in sys.modules]\n"
        "w.shutdown()\n"
        "print(json.dumps(loaded))\n"
    )
    result = _run_offscreen(code, check=True)
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_run_opens_the_window_and_returns_0_when_it_is_closed(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from PySide6.QtCore import QTimer\n"
        "from PySide6.QtWidgets import QApplication\n"
        "from cactus_desk import app\n"
        "qapp = QApplication([])\n"
        "def close(tries=1000):\n"
        "    titles = [w.windowTitle() for w in qapp.topLevelWidgets() if w.isVisible()]\n"
        "    if not any('[' in title for title in titles) and tries:\n"
        "        QTimer.singleShot(10, lambda: close(tries - 1))\n"
        "        return\n"
        "    print(titles)\n"
        "    qapp.closeAllWindows()\n"
        "QTimer.singleShot(0, close)\n"
        f"sys.exit(app.run(['--sandbox', '--data-dir', {str(tmp_path)!r}]))\n"
    )
    result = _run_offscreen(code)
    assert result.returncode == 0, result.stderr
    assert "Sandbox [sandbox]" in result.stdout
    assert (tmp_path / "logs" / "cactus-desk.log").exists()


# -- the first paint: a light shell; then the usable window; the rest after its paint -------

#: Modules the window must not wait for before its first paint.
HEAVY_MODULES = (
    "httpx",
    "pydantic",
    "keyring",
    "sqlite3",
    "cactus_desk.profiles",
    "cactus_desk.secrets",
    "cactus_desk.history.sqlite.store",
    "cactus_desk.sandbox",
    "cactus_desk.ui.payout.form",
)
#: What the first payout does not need: none of it loads (or runs) before the window is usable.
NOT_BEFORE_READY = (
    "httpx",
    "pydantic",
    "cactus_desk.profiles",
    "keyring",
    "sqlite3",
    "cactus_desk.secrets",
    "cactus_desk.gateway.client",
    "cactus_desk.history.sqlite.store",
    "cactus_desk.history.sqlite.opening",
    "cactus_desk.sandbox",
    "cactus_desk.ui.history.panel",
    "cactus_desk.ui.exception_hook",
    # The send path and the gateway's pydantic models load with the first Send.
    "cactus_desk.payouts.send",
    "cactus_desk.payouts.payout",
    "cactus_desk.payouts.draft_model",
    "cactus_desk.gateway.models",
    "cactus_desk.ui.payout.confirm_dialog",
    # The history's port and types load with the history.
    "cactus_desk.history.types",
    "cactus_desk.history.port",
)

# `cactus-desk --data-dir DIR` the normal way (cli.main), with a probe that records what is
# loaded at the main window's first paint and when the window is ready (form built, profile
# chosen), and on which thread each heavy module is imported and the history opened.
FIRST_PAINT_PROBE = """
import json, sys, threading
from PySide6.QtCore import QEvent, QObject, QTimer
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QPushButton, QWidget
from cactus_desk import cli
import cactus_desk.history

HEAVY = {heavy!r}
LATE = {late!r}
qapp = QApplication([])
report = {{"imports": {{}}}}


class Watch:
    # An import hook that only notes who imports a late module first, and when.
    def find_spec(self, name, path=None, target=None):
        if name in LATE and name not in report["imports"]:
            report["imports"][name] = {{
                "gui_thread": threading.current_thread() is threading.main_thread(),
                "before_ready": "ready" not in report,
            }}
        return None


sys.meta_path.insert(0, Watch())
opened_on = []
real_open = cactus_desk.history.open_history_fast


def open_history_fast(data_dir):
    opened_on.append(threading.current_thread() is threading.main_thread())
    return real_open(data_dir)


cactus_desk.history.open_history_fast = open_history_fast


class Probe(QObject):
    window = None

    def eventFilter(self, watched, event):
        if (
            self.window is None
            and event.type() == QEvent.Type.Paint
            and isinstance(watched, QMainWindow)
        ):
            self.window = watched
            report["loaded_at_paint"] = [m for m in HEAVY if m in sys.modules]
            report["ready_at_paint"] = watched.is_ready()
            report["status_at_paint"] = watched.statusBar().currentMessage()
            send = watched.findChild(QPushButton, "sendButton")
            report["send_button_at_paint"] = send is not None
            QTimer.singleShot(0, self.wait_until_ready)
        return False

    def wait_until_ready(self, tries=500):
        window = self.window
        if not window.is_ready() and tries:
            QTimer.singleShot(1, lambda: self.wait_until_ready(tries - 1))
            return
        report["ready"] = window.is_ready()
        report["loaded_at_ready"] = [m for m in LATE if m in sys.modules]
        report["profile"] = window.form.profile_combo.currentText()
        report["history_note"] = window.findChild(QLabel, "historyNote").text()
        report["opening_at_ready"] = window.history_opening()
        report["opened_at_ready"] = bool(opened_on)
        report["form_at_ready"] = self.layout_of(window)
        # The method panels built: only the current method's.
        report["panels_at_ready"] = sorted(
            w.objectName() for w in window.findChildren(QWidget)
            if w.objectName().startswith("panel_")
        )
        report["method_at_ready"] = window.form.method()
        self.wait_for_history()

    @staticmethod
    def layout_of(window):
        # Where the form and its Send button sit in the window: nothing may move later.
        form = window.form
        corner = form.send_button.mapTo(window, form.send_button.rect().topLeft())
        box = form.geometry()
        return [box.x(), box.y(), box.width(), box.height(), corner.x(), corner.y()]

    def wait_for_history(self, tries=1000):
        window = self.window
        # The history, and the real profiles in place of the start's plain reading.
        profile_kind = type(window.form.current_profile()).__name__
        send_loaded = "cactus_desk.payouts.send" in sys.modules
        if (window.history_opening() or profile_kind != "Profile" or not send_loaded) and tries:
            QTimer.singleShot(10, lambda: self.wait_for_history(tries - 1))
            return
        report["opened_on_gui_thread"] = opened_on
        report["profile_kind_later"] = profile_kind
        report["profile_later"] = window.form.profile_combo.currentText()
        report["history_empty"] = window.history.count() == 0
        report["status_later"] = window.statusBar().currentMessage()
        report["balance"] = window.balance_widget.text()
        qapp.processEvents()
        report["form_later"] = self.layout_of(window)
        qapp.closeAllWindows()


probe = Probe()
qapp.installEventFilter(probe)
report["code"] = cli.main(["--data-dir", {data!r}])
print(json.dumps(report))
"""


def _first_paint_report(tmp_path: Path) -> dict:
    data = tmp_path / "desk"
    ProfileStore(data).add(
        Profile(name="Main shop", base_url="https://pay.example.com", merchant_id="m", site_id=7)
    )
    code = FIRST_PAINT_PROBE.format(heavy=HEAVY_MODULES, late=NOT_BEFORE_READY, data=str(data))
    result = _run_offscreen(code)
    assert result.returncode == 0, result.stderr
    report: dict = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def test_the_window_paints_before_the_heavy_parts_load_then_finishes(tmp_path: Path) -> None:
    report = _first_paint_report(tmp_path)
    # At the first paint: the shell only, saying it is loading, with nothing to send from.
    assert report["loaded_at_paint"] == []
    assert report["ready_at_paint"] is False
    assert report["status_at_paint"] == "Loading…"
    assert report["send_button_at_paint"] is False
    # Right after it: the profile and the form are there; later the history too.
    assert report["ready"] is True
    assert report["profile"] == "Main shop · LIVE"
    assert report["history_empty"] is True
    assert report["status_later"] == ""
    assert report["code"] == 0


def test_the_window_is_usable_before_the_history_keyring_and_network_load(
    tmp_path: Path,
) -> None:
    report = _first_paint_report(tmp_path)
    # Usable with none of what the first payout does not need loaded, let alone run.
    assert report["ready"] is True and report["profile"] == "Main shop · LIVE"
    assert report["loaded_at_ready"] == []
    assert report["opened_at_ready"] is False
    assert report["opening_at_ready"] is False  # it starts only once this window has painted
    assert report["history_note"] == "Opening history…"
    early = {name: where for name, where in report["imports"].items() if where["before_ready"]}
    assert early == {}
    # Of the payout form's method panels only the one on show is built before it is usable.
    assert report["panels_at_ready"] == [f"panel_{report['method_at_ready']}"]
    # The history opened on a worker, and SQLite and the store were imported there too.
    assert report["opened_on_gui_thread"] == [False]
    for name in ("sqlite3", "cactus_desk.history.sqlite.store"):
        assert report["imports"][name]["gui_thread"] is False, name
    # The start read the profiles without pydantic; the real ones, loaded on a worker, took
    # their place after the paint, the same profile still chosen.
    # The send service loads ahead of the first Send, on a worker too.
    for name in ("pydantic", "cactus_desk.profiles", "cactus_desk.payouts.send"):
        assert report["imports"][name]["gui_thread"] is False, name
    assert report["profile_kind_later"] == "Profile"
    assert report["profile_later"] == "Main shop · LIVE"
    # After the paint the balance is asked for (no salt in the keyring here: it says so).
    assert report["balance"].startswith(("Balance: loading", "Balance unavailable"))
    assert report["history_empty"] is True
    # What came after the usable window did not move the form.
    assert report["form_later"] == report["form_at_ready"]


def test_a_history_that_cannot_be_opened_after_the_first_paint_fails_the_start(
    tmp_path: Path,
) -> None:
    data = tmp_path / "desk"
    (data / "history.sqlite3").mkdir(parents=True)  # a folder where the database should be
    code = (
        "import sys\n"
        "from cactus_desk import app\n"
        f"sys.exit(app.run(['--data-dir', {str(data)!r}]))\n"
    )
    result = _run_offscreen(code)
    assert result.returncode == 1
    assert "cactus-desk: error: The payout history cannot be opened" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_window_finishes_on_first_use_and_a_closed_shell_stays_closed(
    qtbot: QtBot, data_home: Path
) -> None:
    shell = MainWindow(data_home)
    qtbot.addWidget(shell)
    assert not shell.is_ready()
    assert shell.form.profile_combo.count() == 0  # asking for a part finishes the window
    assert shell.is_ready() and shell.showing_empty_state()
    shell.shutdown()

    closed = MainWindow(data_home)  # the lock was released by the shutdown above
    qtbot.addWidget(closed)
    closed.close()
    closed.finish_startup()  # the paint's timer firing after a quick close does nothing
    assert not closed.is_ready()
    with pytest.raises(RuntimeError, match="closed before it finished"):
        _ = closed.form
    MainWindow(data_home).shutdown()  # and the data folder is free again


def test_the_history_tab_says_opening_until_the_history_opens_on_a_worker(
    qtbot: QtBot, data_home: Path
) -> None:
    ProfileStore(data_home).add(
        Profile(name="Acme", base_url="https://pay.example.com", merchant_id="m", site_id=7)
    )
    window = MainWindow(data_home)
    qtbot.addWidget(window)
    window.show()
    window.finish_startup()  # the usable window: a profile chosen, the form built
    try:
        assert window.is_ready() and window.form.profile_combo.currentText() == "Acme · LIVE"
        assert not window.history_opening()
        note = window.findChild(QLabel, "historyNote")
        window._tabs.setCurrentIndex(1)  # the tab itself, not window.tabs: that would wait
        qtbot.waitUntil(note.isVisible)  # Qt shows a new central widget's children queued
        assert note.text() == "Opening history…"
        assert window.balance_widget.text() == "Balance: loading for Acme…"
        assert not window.balance_widget.is_busy()  # held back until the window has painted

        window.start_background()
        assert window.history_opening()
        qtbot.waitUntil(lambda: not window.history_opening(), timeout=10_000)
        # Opened, and the tab on show now holds the history panel instead of the note. The
        # panel joins a visible tab, which Qt shows by a queued event: the history can have
        # arrived in one pass of the event loop and the show still be pending (a loaded
        # machine), so its showing is waited for; the note is hidden at once.
        assert window.history.count() == 0
        assert not note.isVisible()
        qtbot.waitUntil(window.history_panel.isVisible)
        assert not note.isVisible()
        qtbot.waitUntil(lambda: "loading" not in window.balance_widget.text(), timeout=10_000)
    finally:
        window.shutdown()


def test_a_window_closed_while_the_history_opens_releases_the_folder(
    qtbot: QtBot, data_home: Path
) -> None:
    window = MainWindow(data_home)
    qtbot.addWidget(window)
    window.finish_startup()
    window.start_background()
    window.close()  # at once: the opening may still be running on its worker
    assert not window.history_opening()  # waited for, and whatever it opened was closed
    second = app.build_main_window(["--data-dir", str(data_home)])
    qtbot.addWidget(second)
    try:
        assert second.history.count() == 0
    finally:
        second.shutdown()


def test_the_start_reads_plain_profiles_and_the_store_takes_over_on_first_use(
    qtbot: QtBot, data_home: Path
) -> None:
    ProfileStore(data_home).add(
        Profile(name="Acme", base_url="https://pay.example.com", merchant_id="m", site_id=7)
    )
    window = MainWindow(data_home)
    qtbot.addWidget(window)
    window.finish_startup()  # the usable window, before anything after its paint
    try:
        start = window.form.current_profile()
        assert start is not None and type(start).__name__ == "ProfileSnapshot"
        assert start.name == "Acme" and start.is_live
        # A profile saved meanwhile (a profile dialog uses the store) shows at once.
        beta = window.profiles.add(
            Profile(name="Beta", base_url="https://pay.example.com", merchant_id="b", site_id=8)
        )
        window.reload_profiles(beta.id)
        assert window.form.current_profile() == beta
        assert [p.name for p in window.all_profiles()] == ["Acme", "Beta"]
        assert all(isinstance(p, Profile) for p in window.all_profiles())
    finally:
        window.shutdown()


_SETTLE_CODE = """
import gc, sys
from PySide6.QtCore import QCoreApplication, QEventLoop, QThread
from PySide6.QtWidgets import QApplication
qt = QApplication([])
from cactus_desk import app
window = app.build_main_window(["--data-dir", sys.argv[1], "--sandbox"], settle_heap={settle})
for _ in range(3000):
    if window.start_settled() and (gc.get_freeze_count() or not {settle}):
        break
    QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
    QThread.msleep(5)
for _ in range(20):  # a freeze would follow the settling within a pass or two
    QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
print("SETTLED", window.start_settled(), "FROZEN", gc.get_freeze_count())
window.shutdown()
"""


@pytest.mark.parametrize("settle", [True, False])
def test_the_heap_is_settled_once_the_start_is_over_only_when_asked(
    tmp_path: Path, settle: bool
) -> None:
    code = _SETTLE_CODE.replace("{settle}", str(settle))
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "desk")],
        capture_output=True,
        text=True,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        timeout=120,
        check=False,
    )
    words = done.stdout.split()
    assert "SETTLED" in words, done.stderr[-2000:]
    assert words[words.index("SETTLED") + 1] == "True"
    frozen = int(words[words.index("FROZEN") + 1])
    # The start's modules, classes and functions: tens of thousands of objects.
    assert frozen > 20_000 if settle else frozen == 0
