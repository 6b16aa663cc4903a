"""The history panel over a real SQLite history of a few hundred payouts."""

from __future__ import annotations

import csv
import itertools
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QComboBox, QLineEdit, QPlainTextEdit, QTableView, QWidget
from pytestqt.qtbot import QtBot

from cactus_desk.gateway.client import CactusClient
from cactus_desk.gateway.models import PayoutRequest
from cactus_desk.gateway.outcomes import Accepted, Rejected, Unknown, UnknownKind
from cactus_desk.history.port import HistoryStore
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.history.types import NewAttempt
from cactus_desk.payouts.states import State
from cactus_desk.profiles import Profile, ProfileStore
from cactus_desk.sandbox import SandboxGateway
from cactus_desk.ui import style
from cactus_desk.ui.history import model as history_model
from cactus_desk.ui.history import panel as history_panel
from cactus_desk.ui.history.model import (
    PAGE_SIZE,
    READ_POOL,
    READ_THREADS,
    Column,
    HistoryModel,
    Role,
)
from cactus_desk.ui.history.panel import HistoryPanel
from cactus_desk.ui.workers import shared_pool, wait_for

ROWS = 450
HUGE_AMOUNT = 5_000_000_000_17  # above 2**31 and 2**32: Qt ints would truncate it
WAIT_MS = 5_000

LIVE = Profile(
    id="p-live",
    name="Main desk",
    base_url="https://gateway.example",
    merchant_id="m_live",
    site_id=7,
    environment="live",
)
SANDBOX = Profile(
    id="p-sandbox",
    name="Test desk",
    base_url="http://127.0.0.1:9",
    merchant_id="m_test",
    site_id=8,
    environment="sandbox",
)


def _attempt(i: int, profile: Profile, **changes: object) -> NewAttempt:
    values: dict[str, object] = {
        "profile_id": profile.id,
        "profile_name": profile.name,
        "environment": profile.environment,
        "merchant_id": profile.merchant_id,
        "site_id": profile.site_id,
        "request_id": f"po-{i:04d}",
        "site_login": f"user{i % 17}",
        "method": "card",
        "currency": ("USD", "EUR", "VND")[i % 3],
        "amount_minor": 1_000 + i * 37,
        "request_fields": {"card_number": "411111******1111"},
    }
    values.update(changes)
    return NewAttempt(**values)  # type: ignore[arg-type]


def _outcome(i: int) -> Accepted | Rejected | Unknown:
    if i % 10 == 3:
        return Rejected(
            message="Insufficient balance", response={"success": False}, signature_verified=True
        )
    if i % 10 == 7:
        return Unknown(reason="No answer within 180 s", kind=UnknownKind.TIMEOUT)
    return Accepted(invoice_id=str(50_000 + i), status=3, message="Payout initialized")


@pytest.fixture
def profiles(data_home: Path) -> ProfileStore:
    store = ProfileStore(data_home)
    store.add(LIVE)
    store.add(SANDBOX)
    return store


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the history once per module; each test works on its own copy."""
    path = tmp_path_factory.mktemp("history") / "history.sqlite3"
    clock = itertools.count(1_714_558_953_000, 60_000)
    specials = {
        5: {"request_id": "needle-req-5"},
        6: {"site_login": "needle_login"},
        0: {"amount_minor": HUGE_AMOUNT, "currency": "USD"},  # the oldest: last in time order
    }
    with SqliteHistoryStore(path, clock=lambda: next(clock)) as history:
        for i in range(ROWS):
            profile = LIVE if i % 2 else SANDBOX
            record_id = history.create_attempt(_attempt(i, profile, **specials.get(i, {})))
            if i == ROWS - 1:
                continue  # the newest stays SUBMITTING
            outcome = _outcome(i)
            if i == 8:
                outcome = Accepted(invoice_id="INV-needle-8", status=4, message="Paid")
            if i == 9:
                outcome = Rejected(
                    message="Recipient needle message: account closed", signature_verified=True
                )
            history.record_outcome(record_id, outcome)
    return path


@pytest.fixture
def store(template: Path, tmp_path: Path) -> Iterator[HistoryStore]:
    path = tmp_path / "history.sqlite3"
    shutil.copyfile(template, path)
    history = SqliteHistoryStore(path)
    yield history
    history.close()


@pytest.fixture
def panel(qtbot: QtBot, store: HistoryStore, profiles: ProfileStore) -> HistoryPanel:
    widget = HistoryPanel(store, profiles)
    qtbot.addWidget(widget)
    widget.resize(1200, 700)
    assert widget.wait_until_idle()
    return widget


def _loaded(model: HistoryModel, rows: range) -> bool:
    """Ask for the pages of ``rows`` (on a worker) and wait until every row is in."""
    for row in rows:
        model.data(model.index(row, 0))  # what a paint does: asks for the row's page
    return wait_for(lambda: all(model.loaded_record_id(row) is not None for row in rows))


def _column(model: HistoryModel, column: Column, role: int = Qt.ItemDataRole.DisplayRole) -> list:
    assert model.wait_until_idle()
    for first in range(0, model.rowCount(), PAGE_SIZE):
        assert _loaded(model, range(first, min(first + PAGE_SIZE, model.rowCount())))
    return [model.data(model.index(row, column), role) for row in range(model.rowCount())]


def _combo(panel: HistoryPanel, name: str) -> QComboBox:
    combo = panel.findChild(QComboBox, name)
    assert combo is not None
    return combo


def _choose(combo: QComboBox, label: str) -> None:
    index = combo.findText(label)
    assert index >= 0, f"{label!r} not in {[combo.itemText(i) for i in range(combo.count())]}"
    combo.setCurrentIndex(index)


def test_headers_and_the_first_page(panel: HistoryPanel) -> None:
    model = panel.model
    headers = [model.headerData(c, Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    assert headers == [
        "Time",
        "Profile",
        "Request ID",
        "Invoice ID",
        "Site login",
        "Method",
        "Currency",
        "Amount",
        "State",
        "Gateway status",
        "Message",
    ]
    # Newest first: the last attempt, still submitting, then accepted ones.
    first = model.index(0, 0)
    assert model.data(first.siblingAtColumn(Column.REQUEST_ID)) == f"po-{ROWS - 1:04d}"
    assert model.data(first.siblingAtColumn(Column.STATE)) == "Submitting"
    assert model.data(model.index(1, Column.GATEWAY_STATUS)) == "Processing (3)"
    assert model.data(model.index(1, Column.INVOICE_ID)) == str(50_000 + ROWS - 2)
    assert panel.findChild(QTableView, "historyView") is panel.view


def test_every_match_is_a_row_but_only_the_shown_pages_are_read(panel: HistoryPanel) -> None:
    model = panel.model
    assert model.total() == ROWS
    assert model.rowCount() == ROWS
    assert model.cached_rows() == PAGE_SIZE  # the first page only, until more is shown
    ids = _column(model, Column.TIME, Role.RECORD_ID)
    assert len(set(ids)) == ROWS
    assert _loaded(model, range(ROWS - 1, ROWS))
    assert model.data(model.index(ROWS - 1, Column.REQUEST_ID)) == "po-0000"  # the oldest
    assert model.data(model.index(ROWS, Column.REQUEST_ID)) is None
    assert panel.findChild(type(panel._count_label), "historyCountLabel").text() == "450 payouts"


def test_scrolling_to_the_bottom_shows_the_oldest_payout(qtbot: QtBot, panel: HistoryPanel) -> None:
    panel.show()
    qtbot.waitExposed(panel)
    panel.view.scrollToBottom()
    last = panel.model.index(ROWS - 1, Column.REQUEST_ID)
    qtbot.waitUntil(lambda: panel.view.visualRect(last).isValid(), timeout=WAIT_MS)
    assert panel.view.rowAt(panel.view.viewport().height() - 2) == ROWS - 1
    qtbot.waitUntil(lambda: last.data() == "po-0000", timeout=WAIT_MS)


@pytest.mark.parametrize(
    ("text", "column", "expected"),
    [
        ("needle-req", Column.REQUEST_ID, "needle-req-5"),
        ("INV-needle", Column.INVOICE_ID, "INV-needle-8"),
        ("needle_login", Column.SITE_LOGIN, "needle_login"),
        ("needle message", Column.MESSAGE, "Recipient needle message: account closed"),
    ],
)
def test_the_search_box_matches_each_text_column(
    qtbot: QtBot, panel: HistoryPanel, text: str, column: Column, expected: str
) -> None:
    edit = panel.findChild(QLineEdit, "historyFilterEdit")
    assert edit.placeholderText() == "Search request id, invoice id, site login, message"
    qtbot.keyClicks(edit, text)
    qtbot.waitUntil(lambda: panel.model.total() == 1, timeout=WAIT_MS)
    assert panel.wait_until_idle()
    assert _column(panel.model, column) == [expected]
    assert panel._count_label.text() == "1 payout"

    edit.clear()
    qtbot.waitUntil(lambda: panel.model.total() == ROWS, timeout=WAIT_MS)


def test_a_search_that_matches_nothing_shows_an_empty_table(
    qtbot: QtBot, panel: HistoryPanel
) -> None:
    qtbot.keyClicks(panel.findChild(QLineEdit, "historyFilterEdit"), "100%_no_such")
    qtbot.waitUntil(lambda: panel.model.total() == 0, timeout=WAIT_MS)
    assert panel.wait_until_idle()
    assert panel.model.rowCount() == 0
    assert panel._count_label.text() == "0 payouts"


def test_state_currency_and_profile_filters(panel: HistoryPanel) -> None:
    model = panel.model
    _choose(_combo(panel, "historyStateCombo"), "Unknown")
    assert model.wait_until_idle()
    expected_unknown = sum(1 for i in range(ROWS - 1) if i % 10 == 7)
    assert model.total() == expected_unknown
    assert set(_column(model, Column.STATE)) == {"Unknown"}

    _choose(_combo(panel, "historyCurrencyCombo"), "EUR")
    assert set(_column(model, Column.CURRENCY)) == {"EUR"}
    assert model.total() == sum(1 for i in range(ROWS - 1) if i % 10 == 7 and i % 3 == 1)

    _choose(_combo(panel, "historyStateCombo"), "All states")
    _choose(_combo(panel, "historyProfileCombo"), "LIVE · Main desk")
    assert set(_column(model, Column.PROFILE)) == {"LIVE · Main desk"}
    assert model.total() == sum(1 for i in range(ROWS) if i % 2 and i % 3 == 1)

    _choose(_combo(panel, "historyProfileCombo"), "SANDBOX · Test desk")
    assert set(_column(model, Column.PROFILE)) == {"SANDBOX · Test desk"}


def test_sorting_by_amount_happens_in_sql_with_amounts_beyond_32_bits(
    panel: HistoryPanel,
) -> None:
    model = panel.model
    # In time order the huge amount is the oldest row: the last one.
    assert _loaded(model, range(ROWS - 1, ROWS))
    assert model.data(model.index(ROWS - 1, Column.AMOUNT), Role.SORT_VALUE) == HUGE_AMOUNT

    panel.view.sortByColumn(Column.AMOUNT, Qt.SortOrder.DescendingOrder)
    amounts = _column(model, Column.AMOUNT, Role.SORT_VALUE)
    assert amounts[0] == HUGE_AMOUNT
    assert amounts == sorted(amounts, reverse=True)
    assert model.data(model.index(0, Column.AMOUNT)) == "5 000 000 000.17"
    assert model.rowCount() == ROWS

    panel.view.sortByColumn(Column.AMOUNT, Qt.SortOrder.AscendingOrder)
    amounts = _column(model, Column.AMOUNT, Role.SORT_VALUE)
    assert amounts == sorted(amounts)
    assert amounts[0] == 1_000 + 1 * 37  # i=0 holds the huge amount; i=1 is the smallest
    alignment = model.data(model.index(0, Column.AMOUNT), Qt.ItemDataRole.TextAlignmentRole)
    assert Qt.AlignmentFlag(alignment) & Qt.AlignmentFlag.AlignRight


def test_the_message_column_cannot_be_sorted_and_keeps_the_order(panel: HistoryPanel) -> None:
    before = _column(panel.model, Column.REQUEST_ID)
    panel.view.sortByColumn(Column.MESSAGE, Qt.SortOrder.AscendingOrder)
    assert _column(panel.model, Column.REQUEST_ID) == before
    header = panel.view.horizontalHeader()
    assert header.sortIndicatorSection() == Column.TIME


def test_live_unknown_and_rejected_rows_look_different(panel: HistoryPanel) -> None:
    model = panel.model
    states = _column(model, Column.STATE, Role.STATE)
    unknown = states.index(State.UNKNOWN)
    rejected = states.index(State.REJECTED)
    accepted = states.index(State.ACCEPTED)

    background = model.data(model.index(unknown, Column.MESSAGE), Qt.ItemDataRole.BackgroundRole)
    assert background.color() == QColor(style.UNKNOWN_BG)
    foreground = model.data(model.index(rejected, Column.MESSAGE), Qt.ItemDataRole.ForegroundRole)
    assert foreground.color() == QColor(style.ERROR_FG)
    assert model.data(model.index(accepted, Column.MESSAGE), Qt.ItemDataRole.BackgroundRole) is None
    assert model.data(model.index(accepted, Column.MESSAGE), Qt.ItemDataRole.ForegroundRole) is None

    environments = _column(model, Column.PROFILE, Role.ENVIRONMENT)
    live = environments.index("live")
    profile_cell = model.index(live, Column.PROFILE)
    assert model.data(profile_cell).startswith("LIVE · ")
    assert model.data(profile_cell, Qt.ItemDataRole.FontRole).bold()
    assert model.data(profile_cell, Qt.ItemDataRole.ForegroundRole).color() == QColor(style.LIVE_BG)


def test_details_show_the_request_as_sent_with_the_card_masked_and_no_salt(
    qtbot: QtBot, store: HistoryStore, profiles: ProfileStore
) -> None:
    with SandboxGateway() as gateway:
        request = PayoutRequest(
            merchant_id=gateway.merchant_id,
            site_login="carol",
            site_id=gateway.site_id,
            request_id="po-details",
            amount=150_050,
            currency="USD",
            method="card",
            additional_fields={"card_number": "4111111111111111", "card_holder": "Carol"},
        )
        record_id = store.create_attempt(
            NewAttempt(
                profile_id=SANDBOX.id,
                profile_name=SANDBOX.name,
                environment="sandbox",
                merchant_id=gateway.merchant_id,
                site_id=gateway.site_id,
                request_id=request.request_id,
                site_login=request.site_login,
                method=request.method,
                currency=request.currency,
                amount_minor=request.amount,
                request_fields=dict(request.additional_fields),
            )
        )
        with CactusClient(gateway.base_url) as client:
            outcome = client.payout(request, gateway.salt)
        assert isinstance(outcome, Accepted)
        store.record_outcome(record_id, outcome)
        salt = gateway.salt

    panel = HistoryPanel(store, profiles)
    qtbot.addWidget(panel)
    details = panel.findChild(QPlainTextEdit, "historyDetails")
    assert details.isReadOnly()
    assert details.toPlainText() == ""

    assert panel.select_request("po-details")
    text = details.toPlainText()
    assert '"card_number": "411111******1111"' in text
    assert "4111111111111111" not in text
    assert salt not in text
    assert '"request_id": "po-details"' in text
    assert '"invoice_id": "' + outcome.invoice_id + '"' in text  # the response, pretty JSON
    assert "1 500.50 USD (150050 minor units)" in text
    assert "SANDBOX" in text


def test_select_request_finds_a_payout_beyond_the_loaded_pages(panel: HistoryPanel) -> None:
    _choose(_combo(panel, "historyStateCombo"), "Rejected")
    assert panel.select_request("po-0002")  # accepted, so hidden by the filter, and old
    index = panel.view.currentIndex()
    assert panel.model.data(index.siblingAtColumn(Column.REQUEST_ID)) == "po-0002"
    assert '"request_id": "po-0002"' in panel._details.toPlainText()
    assert not panel.select_request("no-such-request")


def test_refresh_shows_a_new_payout_and_keeps_the_selection(
    panel: HistoryPanel, store: HistoryStore
) -> None:
    panel.select_request("po-0440")
    store.create_attempt(_attempt(9999, LIVE, request_id="po-new"))
    panel.refresh()
    assert panel.wait_until_idle()
    assert panel.model.total() == ROWS + 1
    assert panel.model.data(panel.model.index(0, Column.REQUEST_ID)) == "po-new"
    selected = panel.view.currentIndex()
    assert panel.model.data(selected.siblingAtColumn(Column.REQUEST_ID)) == "po-0440"
    assert panel._count_label.text() == "451 payouts"


def test_csv_export_writes_the_filtered_rows(
    qtbot: QtBot, panel: HistoryPanel, tmp_path: Path
) -> None:
    _choose(_combo(panel, "historyCurrencyCombo"), "EUR")
    _choose(_combo(panel, "historyProfileCombo"), "LIVE · Main desk")
    assert panel.wait_until_idle()
    expected = panel.model.total()
    assert 0 < expected < ROWS
    target = tmp_path / "out" / "payouts.csv"
    target.parent.mkdir()

    with qtbot.waitSignal(panel.exportFinished, timeout=WAIT_MS) as signal:
        panel.export_csv(target)

    assert signal.args == [str(target), expected]
    with target.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == expected
    assert {row["Currency"] for row in rows} == {"EUR"}
    assert {row["Profile"] for row in rows} == {"Main desk"}
    assert all("4111111111111111" not in row["Recipient"] for row in rows)
    assert target.stat().st_mode & 0o077 == 0
    assert list(target.parent.iterdir()) == [target]
    assert "Exported" in panel._status_label.text()


def test_a_failed_export_says_why(qtbot: QtBot, panel: HistoryPanel, tmp_path: Path) -> None:
    target = tmp_path / "missing-folder" / "payouts.csv"
    with qtbot.waitSignal(panel.exportFailed, timeout=WAIT_MS) as signal:
        panel.export_csv(target)
    assert signal.args[0].startswith(f"Could not export to {target}")
    assert not target.exists()
    assert panel._export_button.isEnabled()


def test_a_text_search_runs_off_the_gui_thread_and_a_superseded_one_is_dropped(
    qtbot: QtBot, panel: HistoryPanel
) -> None:
    edit = panel.findChild(QLineEdit, "historyFilterEdit")
    loads: list[int] = []
    panel.model.loaded.connect(lambda: loads.append(panel.model.total()))

    edit.setText("needle-req")
    panel._apply_filter()  # what the debounce timer does
    # The answer can only arrive through the event loop: the old rows are still shown.
    assert panel.model.is_loading()
    assert panel.model.rowCount() == ROWS
    assert panel._count_label.text() == "450 payouts (searching…)"

    edit.setText("needle_login")
    panel._apply_filter()
    qtbot.waitUntil(lambda: not panel.model.is_loading(), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not panel._runner.busy(), timeout=WAIT_MS)

    assert loads == [1]
    assert _column(panel.model, Column.SITE_LOGIN) == ["needle_login"]
    assert panel._count_label.text() == "1 payout"


BIG = 5_000


def _bulk_history(path: Path, count: int) -> HistoryStore:
    """``count`` payouts in one transaction, one a minute (po-00000 oldest); the newest is
    still submitting, the others accepted."""
    store = SqliteHistoryStore(path)
    start = 1_714_558_953_000
    rows = [
        (
            start + i * 60_000,
            start + i * 60_000,
            SANDBOX.id,
            SANDBOX.name,
            "sandbox",
            SANDBOX.merchant_id,
            SANDBOX.site_id,
            f"po-{i:05d}",
            f"user{i % 17}",
            "card",
            "USD",
            1_000 + i,
            str(State.SUBMITTING if i == count - 1 else State.ACCEPTED),
            "{}",
        )
        for i in range(count)
    ]
    with store.write_transaction() as conn:
        conn.executemany(
            "INSERT INTO payouts (created_at, updated_at, profile_id, profile_name, environment, "
            "merchant_id, site_id, request_id, site_login, method, currency, amount_minor, "
            "state, request_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    return store


class CountingStore:
    """Counts the pages a model asks ``store`` for."""

    def __init__(self, store: HistoryStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.pages: list[tuple[int, int]] = []
        page = store.page

        def counted(*args: object, **kwargs: object) -> object:
            self.pages.append((args[3], args[4]))  # offset, limit
            return page(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(store, "page", counted)


@pytest.fixture
def big_store(tmp_path: Path) -> Iterator[HistoryStore]:
    store = _bulk_history(tmp_path / "big.sqlite3", BIG)
    yield store
    store.close()


@pytest.fixture
def owned_model() -> Iterator[Callable[[Any], HistoryModel]]:
    """Make models owned by widgets deleted after the test, on the GUI thread, once the read
    pool is idle.

    Unowned, a model's last reference could be a job's closure released on a worker thread
    once the test returned, deleting the model there (a crash, now and then).
    """
    holders: list[QWidget] = []

    def make(store: Any) -> HistoryModel:
        holder = QWidget()
        holders.append(holder)
        return HistoryModel(store, holder)

    yield make
    shared_pool(READ_POOL, READ_THREADS).waitForDone(WAIT_MS)
    holders.clear()


def test_the_last_row_of_a_long_history_is_served_without_reading_the_rest(
    qtbot: QtBot,
    owned_model: Callable[[Any], HistoryModel],
    big_store: HistoryStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counting = CountingStore(big_store, monkeypatch)
    model = owned_model(big_store)
    assert model.wait_until_idle()
    assert model.rowCount() == BIG
    assert _loaded(model, range(BIG - 2, BIG))
    assert model.data(model.index(BIG - 1, Column.REQUEST_ID)) == "po-00000"
    assert model.data(model.index(BIG - 1, Column.AMOUNT)) == "10.00"
    assert model.data(model.index(BIG - 2, Column.REQUEST_ID)) == "po-00001"
    assert _loaded(model, range(2_345, 2_346))
    assert model.data(model.index(2_345, Column.REQUEST_ID)) == f"po-{BIG - 1 - 2_345:05d}"
    # The first page, the last one and the one in the middle: nothing else was read.
    assert counting.pages == [(0, PAGE_SIZE), (4_800, PAGE_SIZE), (2_200, PAGE_SIZE)]

    for page in range(BIG // PAGE_SIZE):  # scrolling through everything keeps a few pages only
        assert _loaded(model, range(page * PAGE_SIZE, page * PAGE_SIZE + 1))
    assert model.cached_rows() <= history_model.MAX_CACHED_PAGES * PAGE_SIZE


def test_a_long_history_shows_its_last_rows_in_the_view(
    qtbot: QtBot, big_store: HistoryStore, profiles: ProfileStore
) -> None:
    panel = HistoryPanel(big_store, profiles)
    qtbot.addWidget(panel)
    panel.resize(1200, 700)
    panel.show()
    qtbot.waitExposed(panel)
    assert panel.wait_until_idle()
    panel.view.scrollToBottom()
    qtbot.waitUntil(lambda: panel.view.rowAt(panel.view.viewport().height() - 2) == BIG - 1)
    last = panel.model.index(BIG - 1, Column.REQUEST_ID)
    qtbot.waitUntil(lambda: last.data() == "po-00000", timeout=WAIT_MS)
    assert panel._count_label.text() == "5,000 payouts"


def test_new_payouts_go_on_top_and_changed_rows_update_without_a_reset(
    qtbot: QtBot, owned_model: Callable[[Any], HistoryModel], big_store: HistoryStore
) -> None:
    model = owned_model(big_store)
    assert model.wait_until_idle()
    assert _loaded(model, range(BIG - 1, BIG))
    oldest = model.index(BIG - 1, Column.REQUEST_ID)
    assert oldest.data() == "po-00000"
    resets: list[bool] = []
    inserted: list[tuple[int, int]] = []
    changed_rows: list[int] = []
    model.modelReset.connect(lambda: resets.append(True))
    model.rowsInserted.connect(lambda _parent, first, last: inserted.append((first, last)))
    model.dataChanged.connect(lambda top, _bottom: changed_rows.append(top.row()))

    record_id = big_store.create_attempt(_attempt(1, SANDBOX, request_id="po-new"))
    big_store.record_outcome(model.record_id(0) or 0, Unknown("Timed out", UnknownKind.TIMEOUT))
    with qtbot.waitSignal(model.changesApplied, timeout=WAIT_MS) as applied:
        model.apply_changes()  # read on a worker
    assert applied.args == [{big_store.page(limit=2)[1].id}]

    assert resets == []
    assert inserted == [(0, 0)]
    assert model.rowCount() == BIG + 1
    assert model.record_id(0) == record_id
    assert model.index(0, Column.STATE).data() == "Submitting"
    assert changed_rows == [0]  # the changed row, before the insert moved it to row 1
    assert model.index(1, Column.STATE).data() == "Unknown"
    assert model.index(BIG, Column.REQUEST_ID).data() == "po-00000"  # moved down by one
    with qtbot.waitSignal(model.changesApplied, timeout=WAIT_MS) as applied:
        model.apply_changes()
    assert applied.args == [set()]  # nothing new: no signal at all
    assert inserted == [(0, 0)] and changed_rows == [0]


def test_a_text_search_over_the_cap_shows_the_cap_and_reads_later_pages_on_a_worker(
    qtbot: QtBot, big_store: HistoryStore, profiles: ProfileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history_model, "TEXT_COUNT_CAP", 1_000)
    panel = HistoryPanel(big_store, profiles)
    qtbot.addWidget(panel)
    edit = panel.findChild(QLineEdit, "historyFilterEdit")
    edit.setText("user1")  # user1 and user10..user16: 8 of every 17 payouts
    panel._apply_filter()
    qtbot.waitUntil(lambda: not panel.model.is_loading(), timeout=WAIT_MS)
    model = panel.model
    # The first page first ("200+"), then the count on to the cap behind it.
    qtbot.waitUntil(lambda: model.rowCount() == 1_000, timeout=WAIT_MS)
    assert model.is_capped()
    assert panel._count_label.text() == "1,000+ payouts"
    assert "More than 1,000 payouts match" in panel._count_label.toolTip()

    far = model.index(999, Column.SITE_LOGIN)
    assert model.data(far.siblingAtColumn(Column.TIME)) == history_model.LOADING_TEXT
    with qtbot.waitSignal(model.dataChanged, timeout=WAIT_MS):
        pass
    assert model.data(far).startswith("user1")


def test_a_capped_search_counts_on_only_a_moment_after_its_rows_are_applied(
    qtbot: QtBot, big_store: HistoryStore, profiles: ProfileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(history_model, "TEXT_COUNT_CAP", 1_000)
    monkeypatch.setattr(history_model, "REFINE_DELAY_MS", 300)
    counted: list[int] = []
    original = history_model._count

    def count(*args: object, **kw: object) -> object:
        counted.append(1)
        return original(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(history_model, "_count", count)
    panel = HistoryPanel(big_store, profiles)
    qtbot.addWidget(panel)
    qtbot.waitUntil(lambda: not panel.model.is_loading(), timeout=WAIT_MS)
    counted.clear()
    panel.findChild(QLineEdit, "historyFilterEdit").setText("user1")
    with qtbot.waitSignal(panel.model.loaded, timeout=WAIT_MS):
        panel._apply_filter()
    # The first page is in ("200+"); its paint goes first, the count on waits a moment.
    assert panel._count_label.text() == f"{PAGE_SIZE}+ payouts"
    qtbot.wait(100)
    assert counted == []
    assert panel.model.count_pending()  # due: whoever waits for the reads waits for it too
    qtbot.waitUntil(lambda: panel.model.rowCount() == 1_000, timeout=WAIT_MS)
    assert counted == [1]
    qtbot.waitUntil(lambda: not panel.model.count_pending(), timeout=WAIT_MS)


def test_a_new_count_never_re_lays_out_the_tab(qtbot: QtBot, panel: HistoryPanel) -> None:
    from PySide6.QtCore import QEvent, QObject

    class Layouts(QObject):
        requests = 0

        def eventFilter(self, watched: QObject, event: QEvent) -> bool:
            if event.type() == QEvent.Type.LayoutRequest:
                Layouts.requests += 1
            return False

    panel.show()
    qtbot.waitExposed(panel)
    qtbot.wait(50)
    layouts = Layouts(panel)
    panel.installEventFilter(layouts)
    label = panel._count_label
    size = label.size()
    for total, capped in ((1, False), (12_345_678, False), (10_000, True)):
        label.setText(f"{history_panel.count_text(total, capped=capped)} (searching…)")
        qtbot.wait(20)
        assert label.fontMetrics().horizontalAdvance(label.text()) <= label.width()
    assert Layouts.requests == 0
    assert label.size() == size


def test_rows_that_disappeared_are_counted_again_rather_than_queried_on_every_paint(
    qtbot: QtBot,
    owned_model: Callable[[Any], HistoryModel],
    big_store: HistoryStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = owned_model(big_store)
    assert model.wait_until_idle()
    with big_store.write_transaction() as conn:  # as a restored, older backup would be
        conn.execute("DELETE FROM payouts WHERE id <= 1000")
    counting = CountingStore(big_store, monkeypatch)
    assert model.data(model.index(BIG - 1, Column.REQUEST_ID)) is None  # a paint asks
    qtbot.waitUntil(lambda: counting.pages != [], timeout=WAIT_MS)
    for _ in range(2):  # two more paints of the last row: its page came short
        assert model.data(model.index(BIG - 1, Column.REQUEST_ID)) is None
    qtbot.waitUntil(lambda: model.rowCount() == BIG - 1_000, timeout=WAIT_MS)
    # The short page, then the reload's first page: no read per paint.
    assert counting.pages == [(BIG - PAGE_SIZE, PAGE_SIZE), (0, PAGE_SIZE)]
    assert _loaded(model, range(BIG - 1_001, BIG - 1_000))
    assert model.data(model.index(BIG - 1_001, Column.REQUEST_ID)) == "po-01000"
