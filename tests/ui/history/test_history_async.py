"""The history panel never reads the store on the GUI thread, and its answers arrive in order.

Every store call made while the panel is opened, filtered, sorted, searched, scrolled to the
middle and the end, shows details and follows a callback written by another connection goes
through a proxy that records the thread it ran on. Gates (``threading.Event``) hold chosen
reads on their worker, so the tests see the placeholders, the dropped stale answers and the
capped count deterministically, never by timing luck.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt, QThread
from PySide6.QtWidgets import QComboBox, QLineEdit, QPlainTextEdit
from pytestqt.qtbot import QtBot

from cactus_desk.callbacks.apply import apply_callback
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.history.types import HistoryFilter, HistoryUnavailableError
from cactus_desk.profiles import ProfileStore
from cactus_desk.ui import workers
from cactus_desk.ui.history import model as history_model
from cactus_desk.ui.history import panel as history_panel
from cactus_desk.ui.history.model import LOADING_TEXT, PAGE_SIZE, Column, HistoryModel, Role
from cactus_desk.ui.history.panel import HistoryPanel
from cactus_desk.ui.history.timeline import LOADING_DETAILS
from cactus_desk.ui.payout.result_banner import ResultBanner
from cactus_desk.ui.payout.status_follower import StatusFollower
from tests.callbacks.helpers import SALT, accepted_record, callback
from tests.ui.history.test_history_view import (  # noqa: F401 - fixtures
    BIG,
    ROWS,
    _bulk_history,
    big_store,
    owned_model,
    profiles,
    store,
    template,
)

WAIT_MS = 10_000
_GATES: list[Gate] = []


@pytest.fixture(autouse=True)
def _open_gates_after_each_test() -> Iterator[None]:
    """A test that fails while a gate holds a read must not leave a worker held."""
    yield
    while _GATES:
        _GATES.pop().release()


def on_gui_thread() -> bool:
    """True on the GUI thread, by Qt's account and by Python's."""
    app = QCoreApplication.instance()
    assert app is not None
    by_qt = QThread.currentThread() is app.thread()
    by_python = threading.current_thread() is threading.main_thread()
    return by_qt or by_python


class Gate:
    """Holds the calls it matches on their worker until ``release()``."""

    def __init__(self, when: Callable[..., bool]) -> None:
        self.when = when
        self.entered = threading.Event()  # a matching call is being held
        self._open = threading.Event()
        _GATES.append(self)

    def release(self) -> None:
        self._open.set()

    def hold(self, name: str) -> None:
        self.entered.set()
        assert self._open.wait(WAIT_MS), f"the gate on {name} never opened"


class ThreadCheckingStore:
    """A ``HistoryStore`` proxy recording, for every call, its name and whether it ran on
    the GUI thread; a ``gate`` holds chosen calls on their worker."""

    def __init__(self, inner: HistoryStore) -> None:
        self._store = inner
        self.calls: list[tuple[str, bool]] = []
        self.gates: dict[str, Gate] = {}
        self._lock = threading.Lock()

    def gate(self, name: str, when: Callable[..., bool]) -> Gate:
        """Hold calls of ``name`` whose arguments match ``when`` until released."""
        self.gates[name] = Gate(when)
        return self.gates[name]

    def on_gui(self) -> list[str]:
        """The calls that ran on the GUI thread."""
        with self._lock:
            return [name for name, gui in self.calls if gui]

    def names(self) -> set[str]:
        with self._lock:
            return {name for name, _ in self.calls}

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._store, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.calls.append((name, on_gui_thread()))
            gate = self.gates.get(name)
            if gate is not None and gate.when(*args, **kwargs):
                gate.hold(name)
            return target(*args, **kwargs)

        return call


def test_the_proxy_tells_the_gui_thread_from_a_worker(
    qapp: QCoreApplication,
    store: HistoryStore,  # noqa: F811
) -> None:
    """The check itself can fail: a call made here, on the GUI thread, is recorded as such."""
    checked = ThreadCheckingStore(store)
    checked.newest_record_id()
    assert checked.on_gui() == ["newest_record_id"]
    worker = threading.Thread(target=checked.data_version)
    worker.start()
    worker.join()
    assert checked.on_gui() == ["newest_record_id"]


def _combo(panel: HistoryPanel, name: str) -> QComboBox:
    combo = panel.findChild(QComboBox, name)
    assert combo is not None
    return combo


def _settle(panel: HistoryPanel) -> None:
    assert panel.wait_until_idle(WAIT_MS)


def _visible_ready(panel: HistoryPanel) -> bool:
    view, model = panel.view, panel.model
    if not model.is_idle():
        return False
    top, bottom = view.rowAt(0), view.rowAt(view.viewport().height() - 1)
    bottom = model.rowCount() - 1 if bottom < 0 else bottom
    rows = range(max(top, 0), bottom + 1)
    return all(model.data(model.index(row, 0)) != LOADING_TEXT for row in rows)


def test_no_history_interaction_reads_the_store_on_the_gui_thread(
    qtbot: QtBot,
    tmp_path: Path,
    profiles: ProfileStore,  # noqa: F811
) -> None:
    path = tmp_path / "history.sqlite3"
    _bulk_history(path, BIG).close()
    real = SqliteHistoryStore(path)
    other = SqliteHistoryStore(path)  # as the receiver process writes it
    checked = ThreadCheckingStore(real)
    try:
        record_id = accepted_record(other, "po-cb", merchant_id="m_demo")
        # Open.
        panel = HistoryPanel(checked, profiles)  # type: ignore[arg-type]
        qtbot.addWidget(panel)
        panel.resize(1200, 700)
        panel.show()
        qtbot.waitExposed(panel)
        qtbot.waitUntil(lambda: _visible_ready(panel), timeout=WAIT_MS)
        _settle(panel)
        assert panel.model.total() == BIG + 1
        view = panel.view

        # Every filter alone and combined, then sorts with them.
        states, currencies = (
            _combo(panel, "historyStateCombo"),
            _combo(panel, "historyCurrencyCombo"),
        )
        profiles_combo = _combo(panel, "historyProfileCombo")
        states.setCurrentIndex(states.findText("Accepted"))
        _settle(panel)
        currencies.setCurrentIndex(currencies.findData("USD"))
        _settle(panel)
        profiles_combo.setCurrentIndex(1)
        _settle(panel)
        for column in (Column.AMOUNT, Column.SITE_LOGIN, Column.STATE):
            view.sortByColumn(column, Qt.SortOrder.DescendingOrder)
            qtbot.waitUntil(lambda: _visible_ready(panel), timeout=WAIT_MS)
        for combo in (states, currencies, profiles_combo):
            combo.setCurrentIndex(0)
            _settle(panel)
        view.sortByColumn(Column.TIME, Qt.SortOrder.DescendingOrder)
        _settle(panel)

        # A 1–2 character and a 3+ character search.
        edit = panel.findChild(QLineEdit, "historyFilterEdit")
        for text in ("u", "user1", ""):
            edit.setText(text)  # applied by the typing delay's timer
            qtbot.waitUntil(lambda t=text: panel.model.history_filter.text == t, timeout=WAIT_MS)
            qtbot.waitUntil(lambda: _visible_ready(panel), timeout=WAIT_MS)
        _settle(panel)

        # The middle, then the end, of the history.
        bar = view.verticalScrollBar()
        bar.setValue(bar.maximum() // 2)
        qtbot.waitUntil(lambda: _visible_ready(panel), timeout=WAIT_MS)
        assert abs(view.rowAt(0) - panel.model.total() // 2) <= PAGE_SIZE
        view.scrollToBottom()
        qtbot.waitUntil(lambda: _visible_ready(panel), timeout=WAIT_MS)
        assert panel.model.index(panel.model.total() - 1, Column.REQUEST_ID).data() == "po-00000"
        view.scrollToTop()
        qtbot.waitUntil(lambda: _visible_ready(panel), timeout=WAIT_MS)

        # Details of the payout on top (the one a callback will move).
        row = panel.model.row_of(record_id)
        assert row == 0
        view.selectRow(row)
        details = panel.findChild(QPlainTextEdit, "historyDetails")
        qtbot.waitUntil(lambda: "po-cb" in details.toPlainText(), timeout=WAIT_MS)

        # A verified callback written by another connection shows up in place.
        apply_callback(other, callback(4, "po-cb"), SALT, merchant_id="m_demo", site_id=7)
        cell = panel.model.index(0, Column.GATEWAY_STATUS)
        qtbot.waitUntil(lambda: cell.data() == "Success (4)", timeout=WAIT_MS)
        qtbot.waitUntil(lambda: len(panel.timeline.events) == 1, timeout=WAIT_MS)
        panel.refresh()
        assert panel.select_request("po-00017")
        _settle(panel)
    finally:
        other.close()
    assert checked.on_gui() == []
    # The session did exercise every kind of read the panel makes.
    assert {
        "count",
        "page",
        "details",
        "rows_by_id",
        "newest_record_id",
        "data_version",
        "distinct_currencies",
        "distinct_profiles",
    } <= checked.names()
    panel.stop()
    real.close()


def _following(
    qtbot: QtBot, history: HistoryStore, proxy: ThreadCheckingStore, request_id: str
) -> tuple[ResultBanner, StatusFollower, int]:
    """A banner whose follower, reading through ``proxy``, has read a new accepted payout."""
    banner = ResultBanner()
    qtbot.addWidget(banner)
    record_id = accepted_record(history, request_id, merchant_id="m_demo")
    follower = StatusFollower(banner, lambda: proxy, None)  # type: ignore[arg-type, return-value]
    follower.follow(record_id)
    follower.check()
    qtbot.waitUntil(lambda: "get" in proxy.names(), timeout=WAIT_MS)
    return banner, follower, record_id


def test_the_status_follower_reads_on_a_worker(
    qtbot: QtBot,
    store: HistoryStore,  # noqa: F811
) -> None:
    checked = ThreadCheckingStore(store)
    _banner, follower, _record_id = _following(qtbot, store, checked, "po-follow")
    apply_callback(store, callback(4, "po-follow"), SALT, merchant_id="m_demo", site_id=7)
    qtbot.waitUntil(lambda: follower.following() is None, timeout=WAIT_MS)  # final: stops
    assert checked.on_gui() == []


class RestartingStore(ThreadCheckingStore):
    """Its change marker cannot be read while ``down`` is set (a database restarting)."""

    def __init__(self, inner: HistoryStore) -> None:
        super().__init__(inner)
        self.down = threading.Event()
        self.failed = 0

    def data_version(self) -> int:
        if self.down.is_set():
            self.failed += 1
            raise HistoryUnavailableError("The team's database cannot be reached")
        return int(self.__getattr__("data_version")())  # recorded, as every proxied call


def test_the_status_follower_keeps_following_while_the_history_is_unreachable(
    qtbot: QtBot,
    store: HistoryStore,  # noqa: F811
) -> None:
    restarting = RestartingStore(store)
    banner, follower, record_id = _following(qtbot, store, restarting, "po-restart")
    restarting.down.set()
    qtbot.waitUntil(lambda: restarting.failed >= 2, timeout=WAIT_MS)  # looked again after one
    assert follower.following() == record_id
    # A callback stored meanwhile (the receiver reconnected first) still reaches the banner.
    apply_callback(store, callback(4, "po-restart"), SALT, merchant_id="m_demo", site_id=7)
    restarting.down.clear()
    qtbot.waitUntil(lambda: follower.following() is None, timeout=WAIT_MS)  # final: stops
    assert "Success" in banner.text()
    assert restarting.on_gui() == []


def test_rows_not_read_yet_paint_as_light_placeholders_and_fill_in(
    qtbot: QtBot,
    owned_model: Callable[[Any], HistoryModel],  # noqa: F811
    big_store: HistoryStore,  # noqa: F811
) -> None:
    checked = ThreadCheckingStore(big_store)
    model = owned_model(checked)
    assert model.wait_until_idle(WAIT_MS)
    held = checked.gate("page", lambda *args, **kwargs: args[3] > 0)  # every page but the first
    far = model.index(2_345, Column.TIME)
    assert model.data(far) == LOADING_TEXT
    assert model.data(far.siblingAtColumn(Column.REQUEST_ID)) is None
    assert model.data(far, Qt.ItemDataRole.ForegroundRole) is history_model._PLACEHOLDER_FG
    assert model.data(far, Role.RECORD_ID) is None
    assert held.entered.wait(WAIT_MS)
    assert model.data(far) == LOADING_TEXT  # still held on its worker
    with qtbot.waitSignal(model.dataChanged, timeout=WAIT_MS) as changed:
        held.release()
    top, bottom = changed.args[0], changed.args[1]
    assert top.row() <= 2_345 <= bottom.row()
    assert model.data(far.siblingAtColumn(Column.REQUEST_ID)) == f"po-{BIG - 1 - 2_345:05d}"
    assert model.data(far) != LOADING_TEXT
    assert checked.on_gui() == []


def test_a_superseded_query_is_dropped_even_when_it_answers_last(
    qtbot: QtBot,
    owned_model: Callable[[Any], HistoryModel],  # noqa: F811
    store: HistoryStore,  # noqa: F811
) -> None:
    checked = ThreadCheckingStore(store)
    model = owned_model(checked)
    assert model.wait_until_idle(WAIT_MS)
    loads: list[int] = []
    model.loaded.connect(lambda: loads.append(model.total()))
    slow = HistoryFilter(currency="EUR")
    held = checked.gate("count", lambda *args, **kwargs: args == (slow,))
    model.set_filter(slow)
    assert held.entered.wait(WAIT_MS)
    model.set_filter(HistoryFilter(currency="VND"))  # the person chose again meanwhile
    qtbot.waitUntil(lambda: loads != [], timeout=WAIT_MS)
    vnd = loads[-1]
    assert model.history_filter.currency == "VND"
    held.release()  # the EUR answer arrives last
    qtbot.waitUntil(lambda: not model._runner.busy(), timeout=WAIT_MS)
    assert loads == [vnd]
    assert vnd == sum(1 for i in range(ROWS) if i % 3 == 2)
    currencies = {model.index(row, Column.CURRENCY).data() for row in range(model.rowCount())}
    assert currencies <= {"VND", LOADING_TEXT, None}
    assert model.index(0, Column.CURRENCY).data() == "VND"


def test_a_stale_details_answer_never_overwrites_a_newer_selection(
    qtbot: QtBot,
    store: HistoryStore,  # noqa: F811
    profiles: ProfileStore,  # noqa: F811
) -> None:
    checked = ThreadCheckingStore(store)
    panel = HistoryPanel(checked, profiles)  # type: ignore[arg-type]
    qtbot.addWidget(panel)
    _settle(panel)
    model = panel.model
    first, second = model.record_id(0), model.record_id(1)
    assert first is not None and second is not None
    held = checked.gate("details", lambda record_id: record_id == first)
    details = panel.findChild(QPlainTextEdit, "historyDetails")
    panel.view.selectRow(0)
    assert details.toPlainText() == LOADING_DETAILS
    assert panel.timeline.status_text() == LOADING_DETAILS
    panel.view.selectRow(1)
    qtbot.waitUntil(lambda: f"Payout #{second} " in details.toPlainText(), timeout=WAIT_MS)
    assert held.entered.wait(WAIT_MS)
    held.release()  # the first payout's answer arrives after the second's
    qtbot.waitUntil(lambda: not panel._runner.busy(), timeout=WAIT_MS)
    assert f"Payout #{second} " in details.toPlainText()
    assert panel.timeline.record_id == second
    assert checked.on_gui() == []


@pytest.fixture
def user_matches() -> int:
    return sum(1 for i in range(BIG) if "user1" in f"user{i % 17}")


def test_a_capped_search_count_says_so_and_is_refined_in_the_background(
    qtbot: QtBot,
    big_store: HistoryStore,  # noqa: F811
    profiles: ProfileStore,  # noqa: F811
    user_matches: int,
) -> None:
    checked = ThreadCheckingStore(big_store)
    held = checked.gate("count", lambda *a, cap=None: cap == history_model.TEXT_COUNT_CAP)
    panel = HistoryPanel(checked, profiles)  # type: ignore[arg-type]
    qtbot.addWidget(panel)
    _settle(panel)
    edit = panel.findChild(QLineEdit, "historyFilterEdit")
    edit.setText("user1")
    panel._apply_filter()
    model = panel.model
    qtbot.waitUntil(lambda: not model.is_loading(), timeout=WAIT_MS)
    quick = history_model.QUICK_COUNT_CAP
    assert user_matches > quick
    assert model.is_capped() and model.rowCount() == quick
    assert panel._count_label.text() == f"{quick:,}+ payouts"
    # The count goes on a moment after the first page has painted (REFINE_DELAY_MS).
    qtbot.waitUntil(held.entered.is_set, timeout=WAIT_MS)
    assert panel._runner.busy(history_model.COUNT_CHANNEL)  # the refining count is held
    held.release()
    qtbot.waitUntil(lambda: model.rowCount() == user_matches, timeout=WAIT_MS)
    assert not model.is_capped()
    assert panel._count_label.text() == f"{user_matches:,} payouts"
    assert checked.on_gui() == []


def test_a_new_search_shows_its_first_page_before_any_count(
    qtbot: QtBot,
    big_store: HistoryStore,  # noqa: F811
    profiles: ProfileStore,  # noqa: F811
    user_matches: int,
) -> None:
    """The first page of a new search is shown without counting first: a 1-2 character
    search at 5M payouts walked its rows twice (a count to 1,000, then the page)."""
    checked = ThreadCheckingStore(big_store)
    panel = HistoryPanel(checked, profiles)  # type: ignore[arg-type]
    qtbot.addWidget(panel)
    _settle(panel)
    held = checked.gate("count", lambda *a, **k: True)  # every count waits until released
    edit = panel.findChild(QLineEdit, "historyFilterEdit")
    edit.setText("user1")
    panel._apply_filter()
    model = panel.model
    qtbot.waitUntil(lambda: not model.is_loading(), timeout=WAIT_MS)
    assert user_matches > PAGE_SIZE
    assert model.rowCount() == PAGE_SIZE and model.is_capped()
    assert model.data(model.index(0, Column.SITE_LOGIN)).startswith("user1")
    assert panel._count_label.text() == f"{PAGE_SIZE:,}+ payouts"
    # The count on to the cap runs behind, a moment after the page.
    qtbot.waitUntil(held.entered.is_set, timeout=WAIT_MS)
    held.release()
    qtbot.waitUntil(lambda: model.rowCount() == user_matches, timeout=WAIT_MS)
    assert not model.is_capped()
    assert checked.on_gui() == []


def test_the_panel_s_readers_are_scheduled_below_the_gui_thread(
    qtbot: QtBot,
    store: HistoryStore,  # noqa: F811
    profiles: ProfileStore,  # noqa: F811
) -> None:
    panel = HistoryPanel(store, profiles)
    qtbot.addWidget(panel)
    _settle(panel)
    gui_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: list[int] = []
    panel._runner.run(
        lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), seen.append
    )
    qtbot.waitUntil(lambda: seen != [], timeout=WAIT_MS)
    # Linux schedules threads on their own: a reader sharing a core with the GUI thread
    # gives it the CPU. Elsewhere the nice value belongs to the process and stays.
    expected = min(19, gui_nice + workers.READER_NICE) if sys.platform == "linux" else gui_nice
    assert seen == [expected]


def test_the_change_watch_compares_and_formats_rows_on_its_worker(
    qtbot: QtBot,
    owned_model: Callable[[Any], HistoryModel],  # noqa: F811
    store: HistoryStore,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record_id = accepted_record(store, "po-watched", merchant_id="m_demo")
    model = owned_model(store)
    assert model.wait_until_idle(WAIT_MS)
    row = model.row_of(record_id)
    assert row is not None
    on_gui: list[str] = []

    def spied(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            if on_gui_thread():
                on_gui.append(name)
            return real(*args)

        return call

    monkeypatch.setattr(history_model, "_entry", spied("_entry", history_model._entry))
    monkeypatch.setattr(history_model, "change_key", spied("change_key", history_model.change_key))
    # Callbacks stream in while payouts are sent: rows change in place and new ones go on top.
    apply_callback(store, callback(4, "po-watched"), SALT, merchant_id="m_demo", site_id=7)
    accepted_record(store, "po-newest", "500002", merchant_id="m_demo")
    with qtbot.waitSignal(model.changesApplied, timeout=WAIT_MS) as applied:
        model.apply_changes()
    assert applied.args == [{record_id}]
    assert model.index(0, Column.REQUEST_ID).data() == "po-newest"
    assert model.index(row + 1, Column.GATEWAY_STATUS).data() == "Success (4)"
    assert on_gui == []


def test_the_panel_starts_its_first_reads_once_it_is_built(
    qtbot: QtBot,
    store: HistoryStore,  # noqa: F811
    profiles: ProfileStore,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No read runs on a worker while the constructor still builds widgets (the reads would
    share the interpreter with it). A pause late in the constructor gives a started read
    every chance to run."""
    checked = ThreadCheckingStore(store)
    during_build: list[set[str]] = []
    original = HistoryPanel._default_columns

    def slow_columns(panel: HistoryPanel) -> None:
        threading.Event().wait(0.3)  # the interpreter is free: a started worker runs now
        during_build.append(checked.names())
        original(panel)

    monkeypatch.setattr(HistoryPanel, "_default_columns", slow_columns)
    panel = HistoryPanel(checked, profiles)  # type: ignore[arg-type]
    qtbot.addWidget(panel)
    qtbot.waitUntil(lambda: {"page", "distinct_currencies"} <= checked.names(), timeout=WAIT_MS)
    _settle(panel)
    assert during_build == [set()]
    assert panel.model.rowCount() == ROWS


def test_a_shown_panel_starts_its_first_reads_after_its_first_paint(
    qtbot: QtBot,
    store: HistoryStore,  # noqa: F811
    profiles: ProfileStore,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its first layout and paint do not take turns with readers for the interpreter lock:
    with the fallback wait out of reach, only the paint can start the reads."""
    monkeypatch.setattr(history_panel, "FIRST_READS_WAIT_MS", 600_000)
    checked = ThreadCheckingStore(store)
    panel = HistoryPanel(checked, profiles)  # type: ignore[arg-type]
    qtbot.addWidget(panel)
    painted: list[set[str]] = []

    class FirstPaint(QObject):
        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.Paint and not painted:
                painted.append(checked.names())
            return False

    spy = FirstPaint()
    panel.installEventFilter(spy)
    threading.Event().wait(0.3)  # a read started by now would have run
    QCoreApplication.processEvents()  # not shown: nothing paints, nothing starts
    assert checked.names() == set()
    panel.show()
    qtbot.waitUntil(lambda: {"page", "distinct_currencies"} <= checked.names(), timeout=WAIT_MS)
    _settle(panel)
    assert painted == [set()]
    assert panel.model.rowCount() == ROWS


def test_a_panel_that_is_not_shown_starts_its_reads_after_a_short_wait(
    qtbot: QtBot,
    store: HistoryStore,  # noqa: F811
    profiles: ProfileStore,  # noqa: F811
) -> None:
    checked = ThreadCheckingStore(store)
    panel = HistoryPanel(checked, profiles)  # type: ignore[arg-type]
    qtbot.addWidget(panel)
    qtbot.waitUntil(lambda: "page" in checked.names(), timeout=WAIT_MS)
    _settle(panel)
    assert not panel.isVisible()
    assert panel.model.rowCount() == ROWS


def test_a_panel_stopped_before_its_first_reads_lets_them_finish(
    qtbot: QtBot,
    store: HistoryStore,  # noqa: F811
    profiles: ProfileStore,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The store closes after ``stop``: nothing asked for may start after it."""
    monkeypatch.setattr(history_panel, "FIRST_READS_WAIT_MS", 600_000)
    checked = ThreadCheckingStore(store)
    panel = HistoryPanel(checked, profiles)  # type: ignore[arg-type]
    qtbot.addWidget(panel)
    panel.stop()
    asked = checked.names()
    assert "page" in asked
    threading.Event().wait(0.2)
    QCoreApplication.processEvents()
    assert checked.names() == asked
