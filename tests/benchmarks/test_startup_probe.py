"""The start-up probe sees every widget's paint, also of widgets added after the first paint."""

from __future__ import annotations

import pytest
from pytestqt.qtbot import QtBot

from benchmarks import startup_probe


def _main_window(qtbot: QtBot) -> tuple[object, list[bool]]:
    """A main window that says when its start is over (as the app's does), and that flag."""
    from PySide6.QtWidgets import QComboBox, QMainWindow, QVBoxLayout, QWidget

    started = [False]

    class Window(QMainWindow):
        def is_ready(self) -> bool:
            return started[0]

    window = Window()
    central = QWidget(window)
    QVBoxLayout(central)
    combo = QComboBox(central)
    combo.setObjectName("profileCombo")
    central.layout().addWidget(combo)
    window.setCentralWidget(central)
    window.resize(400, 300)
    qtbot.addWidget(window)
    return window, started


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> object:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    probe = startup_probe.FirstPaint(app)  # type: ignore[arg-type]
    monkeypatch.setattr(probe, "_maybe_quit", lambda: None)  # the test's app keeps running
    app.installEventFilter(probe)  # type: ignore[union-attr]
    yield probe
    app.removeEventFilter(probe)  # type: ignore[union-attr]


def test_ready_waits_for_the_paint_of_a_widget_added_after_the_first_paint(
    qtbot: QtBot, probe: startup_probe.FirstPaint, capsys: pytest.CaptureFixture[str]
) -> None:
    from PySide6.QtWidgets import QLabel

    window, started = _main_window(qtbot)
    window.show()  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: probe._seen)
    qtbot.wait(50)
    assert not probe._ready  # the start is not over
    late = QLabel("added after the first paint")
    window.centralWidget().layout().addWidget(late)  # type: ignore[attr-defined]
    window.findChild(startup_probe.QComboBox, "profileCombo").addItem("Main shop")  # type: ignore[attr-defined]
    started[0] = True
    qtbot.waitUntil(lambda: probe._ready, timeout=5000)
    # Ready came after the late label's own paint, seen through the filter put on it.
    assert id(late) in probe._painted
    assert "READY" in capsys.readouterr().out


def test_a_widget_never_painted_keeps_the_window_from_being_ready(
    qtbot: QtBot, probe: startup_probe.FirstPaint
) -> None:
    from PySide6.QtWidgets import QLabel

    window, started = _main_window(qtbot)
    window.show()  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: probe._seen)
    window.findChild(startup_probe.QComboBox, "profileCombo").addItem("Main shop")  # type: ignore[attr-defined]
    late = QLabel("never painted")
    late.setUpdatesEnabled(False)  # Qt sends it no paint
    window.centralWidget().layout().addWidget(late)  # type: ignore[attr-defined]
    started[0] = True
    qtbot.wait(300)
    assert not probe._ready
    assert late in probe._unpainted()
    late.setUpdatesEnabled(True)
    qtbot.waitUntil(lambda: probe._ready, timeout=5000)
