"""The main window: the payout form and the history in tabs, the balance in the status bar.

With no profile at all it shows a first-run page instead, offering the embedded sandbox and
a new profile. The sandbox (``start_sandbox``) runs in this process on a free loopback port;
its profile and salt live in memory only and are never written to disk.

The window is built in three steps so that it appears at once and is usable soon after: the
constructor makes a light shell (title, menus, a status bar saying "Loading…") and takes the
instance lock; ``finish_startup`` then builds what the first payout needs (the profile list,
the catalog, the pages, the payout form and the balance, its fetch held back); and
``start_background``, called once that window has painted, does the rest off the GUI thread:
the history opens on a worker (the History tab says "Opening history…" until then), the
interrupted payouts are settled there, and only then the balance is fetched. The keyring is
loaded when a salt is first needed (on a worker). ``app.run`` calls the steps after the first
paints; ``app.build_main_window`` runs them all (waiting for the history) before returning.
What the shell needs is kept cheap: PySide6's ``Qt`` namespace costs tens of milliseconds to
create its enums. The pages are not in the shell: Qt lays out a main window's central widget
through a property animation, and the first time Python code sees Qt's private animation
timer (an application-wide event filter does) PySide6 creates every QtWidgets enum, which
costs more than the whole shell.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

from PySide6.QtCore import QEvent, QThreadPool, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMainWindow, QWidget

from cactus_desk import APP_NAME
from cactus_desk.instance_lock import InstanceLock
from cactus_desk.paths import ensure_private_dir
from cactus_desk.ui.view_settings import ViewSettings

if TYPE_CHECKING:
    from PySide6.QtGui import QCloseEvent
    from PySide6.QtWidgets import QLabel, QMessageBox, QTabWidget

    from cactus_desk.approvals_desk import TeamApprovals
    from cactus_desk.history.approvals import ApprovalRequest
    from cactus_desk.history.port import HistoryStore
    from cactus_desk.history.types import CorruptHistoryError
    from cactus_desk.payout_approval import Submitted
    from cactus_desk.payouts.send import ResendTarget, SendResult
    from cactus_desk.payouts.states import State
    from cactus_desk.profiles import Profile, ProfileStore
    from cactus_desk.profiles_fast import ProfileSnapshot
    from cactus_desk.recipients.store import RecipientRepository
    from cactus_desk.sandbox import SandboxGateway
    from cactus_desk.secrets import SecretStore
    from cactus_desk.ui.alerts import AlertWatcher
    from cactus_desk.ui.approvals.tab import ApprovalsPort, ApprovalsTab
    from cactus_desk.ui.batch.dialog import BatchDialog
    from cactus_desk.ui.dialogs.import_callbacks import ImportCallbacksDialog
    from cactus_desk.ui.dialogs.recovery import RecoveryBanner
    from cactus_desk.ui.history.live_updates import LiveStatuses
    from cactus_desk.ui.history.panel import HistoryPanel
    from cactus_desk.ui.history.resend_dialog import ResendDialog
    from cactus_desk.ui.payout.balance import BalanceWidget
    from cactus_desk.ui.payout.form import PayoutForm
    from cactus_desk.ui.payout.send_controller import SendController, SendJob
    from cactus_desk.ui.recipients.picker import RecipientsController
    from cactus_desk.ui.team_store import StoreIndicator, TeamLive
    from cactus_desk.ui.workers import Runner

log = logging.getLogger(__name__)

#: The smallest window: the payout form fits its width, the status bar its balance.
MINIMUM_SIZE = (640, 480)
# Wide enough for the History columns a clerk checks first (Time to Gateway status).
DEFAULT_SIZE = (800, 820)

SANDBOX_PROFILE_ID = "sandbox-session"
SANDBOX_PROFILE_NAME = "Sandbox"
PAYOUT_TAB, HISTORY_TAB = 0, 1
EMPTY_PAGE, MAIN_PAGE = 0, 1
LOADING_TEXT = "Loading…"
OPENING_HISTORY_TEXT = "Opening history…"
HISTORY_NOT_OPEN_TEXT = "The payout history is not open."
# The worker channel of the history's opening at start.
OPEN_CHANNEL = "open-history"
# The worker channel loading the profiles module (and pydantic) after the first paint.
PROFILES_CHANNEL = "load-profiles"
# Waiting for the worker pool at exit: a payout in flight already answered or timed out.
SHUTDOWN_WAIT_MS = 15_000
# Workers of the shared pool at least: on a big history the integrity checks and the daily
# backup each hold one for minutes, and sends and reads must never queue behind them.
MIN_WORKERS = 8
# The history's upkeep (history.run_maintenance) runs on a worker this often.
UPKEEP_INTERVAL_MS = 1000
UPKEEP_CHANNEL = "history-upkeep"
# A window left open for days still takes its daily backup: the check (bounded, then the
# backup when due) runs again on a worker this often.
DAILY_CHECK_INTERVAL_MS = 3_600_000
DAILY_CHECK_CHANNEL = "history-daily-check"
CHECKS_POOL = "history-checks"  # their threads, below the GUI thread
# When the complete integrity check starts after the history opens (the start-up one is bounded).
COMPLETE_CHECK_DELAY_MS = 30_000
# When the history's sort indexes are read ahead after it opens (``warm_up``).
WARM_UP_DELAY_MS = 2_000
# Notices arriving within this long are looked at together (a burst of callbacks).
TEAM_LOOK_DELAY_MS = 25
CLOSING_WHEN_IDLE_TEXT = (
    "A payout is being sent: Cactus Desk will close when its answer is recorded."
)


class AlreadyRunningError(RuntimeError):
    """Another Cactus Desk window holds this data folder; the message names its process."""


@dataclass(frozen=True)
class _Settled:
    """The payouts left SUBMITTING by the last run, settled; or why they could not be."""

    ids: list[int] = field(default_factory=list)
    states: list[State] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class _Opened:
    """What the history's opening on a worker found: a store (settled), or the damage."""

    store: HistoryStore | None
    check_pending: bool = False
    damage: CorruptHistoryError | None = None
    settled: _Settled = field(default_factory=_Settled)


def _settle_interrupted(store: HistoryStore) -> _Settled:
    """Worker thread: settle the attempts an earlier run left SUBMITTING (SQL)."""
    from cactus_desk.payouts.recovery import recover_interrupted

    try:
        ids = recover_interrupted(store)
        return _Settled(ids, [store.get(record_id).state for record_id in ids])
    except Exception as exc:  # a history it cannot read: say so, keep the window usable
        log.error("interrupted payouts could not be settled: %s", exc)
        return _Settled(error=str(exc))


class _HistoryOpening:
    """Opens the history on a worker; keeps what it opened until the window takes it, so a
    window closed meanwhile can still close the store."""

    def __init__(self, data_dir: Path, store_url: str | None = None) -> None:
        self._data_dir = data_dir
        self._store_url = store_url
        self._lock = threading.Lock()
        self._store: HistoryStore | None = None

    def __call__(self) -> _Opened:  # worker thread: SQL and disk
        from cactus_desk.history import open_history_fast
        from cactus_desk.history.types import CorruptHistoryError

        if self._store_url:  # the team store: connect, check its schema, keyring password
            from cactus_desk.history import open_team_history

            store = open_team_history(self._store_url, self._data_dir)
            with self._lock:
                self._store = store
            return _Opened(store, settled=_settle_interrupted(store))
        try:
            opened = open_history_fast(self._data_dir)
        except CorruptHistoryError as exc:
            return _Opened(None, damage=exc)
        with self._lock:
            self._store = opened.store
        return _Opened(
            opened.store, opened.check_pending, settled=_settle_interrupted(opened.store)
        )

    def take(self) -> HistoryStore | None:
        """The store it opened, once (None when none, or already taken)."""
        with self._lock:
            store, self._store = self._store, None
        return store


def _load_profiles_module() -> None:
    """Worker thread: import ``cactus_desk.profiles`` (pydantic), so the GUI thread need not."""
    import cactus_desk.profiles  # noqa: F401


def _load_send_path() -> None:
    """Worker thread: import the send service and the gateway's models ahead of the first
    Send, so the confirm dialog does not wait for them on the GUI thread."""
    import cactus_desk.payouts.draft_model
    import cactus_desk.payouts.send  # noqa: F401


def _delete_on_close(widget: QWidget) -> None:
    from PySide6.QtCore import Qt

    widget.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)


class EmptyState(QWidget):
    """The first-run page: no profile yet, so offer the sandbox or a new profile."""

    def __init__(self, parent: QWidget | None = None) -> None:
        from PySide6.QtCore import Qt
        from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout

        from cactus_desk.ui import style

        super().__init__(parent)
        self.setObjectName("emptyState")
        title = QLabel("Welcome to Cactus Desk")
        title.setStyleSheet("font-size: 16pt; font-weight: bold;")
        text = QLabel(
            "There is no gateway profile yet. Try everything on the embedded sandbox "
            "gateway (test money, nothing leaves this computer), or add the profile of "
            "your merchant site."
        )
        text.setWordWrap(True)
        self.problem = QLabel()
        self.problem.setObjectName("emptyStateProblem")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet(f"QLabel {{ color: {style.ERROR_FG}; }}")
        self.problem.setVisible(False)
        self.sandbox_button = QPushButton("Use the sandbox")
        self.sandbox_button.setObjectName("useSandboxButton")
        self.sandbox_button.setToolTip("Start a test gateway on this computer and use it")
        self.new_profile_button = QPushButton("New profile…")
        self.new_profile_button.setObjectName("newProfileButton")
        self.new_profile_button.setToolTip("Add your merchant site: gateway address, IDs, salt")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.sandbox_button)
        buttons.addWidget(self.new_profile_button)
        buttons.addStretch(1)
        # A fixed-width column: wrapped labels get their full height only without alignment flags.
        column = QWidget()
        column.setFixedWidth(520)
        inner = QVBoxLayout(column)
        inner.addWidget(title, 0, Qt.AlignmentFlag.AlignHCenter)
        inner.addWidget(text)
        inner.addWidget(self.problem)
        inner.addSpacing(12)
        inner.addLayout(buttons)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(column)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addLayout(row)
        layout.addStretch(2)


class MainWindow(QMainWindow):
    """Cactus Desk's window. Tests reach its parts through the documented properties.

    The constructor builds the shell only; ``finish_startup`` (or the first use of any part
    below) completes the window; ``start_background`` opens the history on a worker.
    ``startupFailed`` carries a readable line when the history cannot be opened at all.
    """

    startupFailed = Signal(str)
    # Once: the start's deferred loads are over (history opened or not, profiles and the send
    # path loaded), the moment app.settle_heap_after_start waits for.
    startSettled = Signal()

    def __init__(
        self,
        data_dir: Path,
        *,
        sandbox_read_timeout: float | None = None,
        sandbox_finalize_after: float | None = None,
        store_url: str | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        # The team store's URL (no password in it), or None for this computer's history.
        self._store_url = store_url
        self._team_live: TeamLive | None = None
        self._approvals_tab: ApprovalsTab | None = None
        self._approvals_port: TeamApprovals | None = None
        self._awaiting: dict[int, str] = {}  # this desk's approval requests -> request id
        self._reconnect_delay: float | None = None  # the team store unreachable at start
        self._team_profiles: list[Profile] | None = None  # the team's, as last read
        self.setObjectName("mainWindow")
        self.setWindowTitle(APP_NAME)
        self.data_dir = ensure_private_dir(Path(data_dir))
        self._lock = InstanceLock(self.data_dir)
        if not self._lock.acquire():
            raise AlreadyRunningError(self._lock.message)
        self._ready = False
        self._background_started = False
        self._send_path_loaded = False
        self._start_settled_sent = False
        self._opening: _HistoryOpening | None = None  # the history's opening, while it runs
        self._startup_error: BaseException | None = None
        self._secrets: SecretStore | None = None
        self._secrets_lock = threading.Lock()
        self._history: HistoryStore | None = None
        self._damage: CorruptHistoryError | None = None
        self._damage_pending: str | None = None  # found by the check while a send was in flight
        self._resend_dialog: ResendDialog | None = None
        self._sandbox: SandboxGateway | None = None
        self._sandbox_profile: Profile | None = None
        self._sandbox_read_timeout = sandbox_read_timeout
        self._sandbox_finalize_after = sandbox_finalize_after
        self._live: LiveStatuses | None = None
        self._history_panel: HistoryPanel | None = None
        self._recovered: list[int] = []
        self._shut_down = False
        self._close_when_idle = False
        self._quit_question: QMessageBox | None = None
        self._profile_store: ProfileStore | None = None
        # The saved profiles as read at start without pydantic, until the real ones replace
        # them after the first paint (None: the real ones are in use).
        self._start_profiles: list[ProfileSnapshot] | None = None
        self._build_menus()
        self.statusBar().showMessage(LOADING_TEXT)
        self.resize(*DEFAULT_SIZE)
        # Below this the form's labels, fields and the balance are squeezed out of reach.
        self.setMinimumSize(*MINIMUM_SIZE)
        # Where the window was last time (no secret is ever kept there).
        self._view_settings = ViewSettings(self.data_dir)
        geometry = self._view_settings.geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)

    def finish_startup(self) -> None:
        """Load the profiles and the catalog, build the pages, the form and the balance (once).

        Nothing here touches the history, the keyring or the network: ``start_background``
        does that once this window has painted. The lock is freed if this fails.
        """
        if self._ready or self._shut_down:  # done, or closed before it could be
            return
        from cactus_desk.catalog import load_catalog
        from cactus_desk.profiles_fast import read_profiles_fast
        from cactus_desk.ui.dialogs.recovery import RecoveryBanner
        from cactus_desk.ui.payout.balance import BalanceWidget
        from cactus_desk.ui.payout.form import PayoutForm
        from cactus_desk.ui.payout.send_controller import SendController
        from cactus_desk.ui.workers import Runner, shared_pool

        try:
            catalog = load_catalog()
            if self._store_url:  # the team's profiles are read on a worker (network)
                self._start_profiles = []
            else:
                # Plain profiles (nearly always) are read without pydantic; others by the store.
                self._start_profiles = read_profiles_fast(self.data_dir)
                if self._start_profiles is None:
                    _ = self._profiles
        except BaseException:
            self._shut_down = True
            self._lock.release()
            raise
        self._build_pages()
        pool = QThreadPool.globalInstance()
        pool.setMaxThreadCount(max(pool.maxThreadCount(), MIN_WORKERS))
        self._runner: Runner = Runner(self)
        # The integrity checks and the daily backup: seconds of CPU on a big history, below
        # the GUI thread so a clerk's window keeps the core (and a pool of their own, so
        # sends and reads never queue behind them).
        self._checks = Runner(self, shared_pool(CHECKS_POOL, 2), low_priority=True)
        self._start_upkeep()
        self._controller: SendController = SendController(
            None,  # no send is taken until the history is open (start_background)
            self.salt_provider,
            read_timeout_for=self._read_timeout_for,
            parent=self,
        )
        self._controller.finished.connect(self._send_finished)

        self._form: PayoutForm = PayoutForm(catalog, self._controller)
        self._scroll.setWidget(self._form)

        self._recovery_banner: RecoveryBanner = RecoveryBanner()
        self._recovery_banner.showRequested.connect(self._show_recovered)
        self._column.insertWidget(0, self._recovery_banner)

        self._balance: BalanceWidget = BalanceWidget()
        self._balance.hold()  # its fetch (httpx, the keyring, the network) waits for the paint
        self._balance.balancesChanged.connect(self._form.set_balances)
        self._balance.set_currency(self._form.currency())
        self._form.currency_combo.currentIndexChanged.connect(
            lambda _index: self._balance.set_currency(self._form.currency())
        )
        self.statusBar().addPermanentWidget(self._balance)
        self._add_store_indicator()
        self._form.profileChanged.connect(self._profile_changed)
        self._form.unitsConfirmed.connect(self._remember_units)
        self._add_recipients()
        self._ready = True

        self._tabs.currentChanged.connect(self._tab_changed)
        self._sandbox_action.setEnabled(True)
        self._add_shortcuts()
        self.statusBar().clearMessage()
        self.reload_profiles()

    def start_background(self) -> None:
        """The rest of the start, once the usable window has painted (once).

        The history opens on a worker (a damaged or missing one brings up its dialog, one
        that cannot be opened at all emits ``startupFailed``), the payouts an earlier run
        left interrupted are settled there and reported, and the balance is fetched.
        """
        if self._background_started or not self._ready or self._shut_down:
            return
        self._background_started = True
        self._recipients.load()
        self._opening = _HistoryOpening(self.data_dir, self._store_url)
        self._runner.run(
            self._opening, self._history_arrived, self._history_open_failed, channel=OPEN_CHANNEL
        )
        self._runner.run(
            _load_send_path,
            lambda _result: self._send_path_done(),
            lambda error: self._send_path_done(error),
        )
        if self._store_url:
            self._load_team_profiles()
        elif self._start_profiles is None:
            self._balance.release()
        else:  # the balance is fetched for the real profile, once it is in
            self._runner.run(
                _load_profiles_module,
                self._real_profiles_loaded,
                self._real_profiles_loaded,
                channel=PROFILES_CHANNEL,
            )

    def _send_path_done(self, error: BaseException | None = None) -> None:
        if error is not None:
            log.warning("the send service did not load ahead: %s", error)
        self._send_path_loaded = True
        self._check_start_settled()

    def start_settled(self) -> bool:
        """True once the start's deferred loads are over: the history opened (or could not
        be), the profiles are in and the send path is loaded."""
        return (
            self._background_started
            and self._send_path_loaded
            and self._opening is None
            and self._start_profiles is None
        )

    def _check_start_settled(self) -> None:
        # After the handler that got here has finished, so the state is the one it left.
        from PySide6.QtCore import QTimer

        def check() -> None:
            if not self._start_settled_sent and not self._shut_down and self.start_settled():
                self._start_settled_sent = True
                self.startSettled.emit()

        QTimer.singleShot(0, self, check)

    def _real_profiles_loaded(self, _result: object = None) -> None:
        """GUI thread: put the real ``Profile`` objects in place of the start's reading."""
        self._check_start_settled()
        if self._start_profiles is None or self._shut_down:
            self._start_profiles = None
            return
        self._start_profiles = None
        self.reload_profiles()
        self._balance.release()

    def history_opening(self) -> bool:
        """True while the history is being opened at start."""
        return self._opening is not None

    def wait_started(self, timeout_ms: int = 60_000) -> None:
        """Finish the whole start, waiting (events running) until the history has opened.

        For ``app.build_main_window`` and tests. Raises what opening the history raised
        (``HistoryOpenError``); the window is then shut down.
        """
        from PySide6.QtCore import QCoreApplication, QDeadlineTimer, QEventLoop, QThread

        self.finish_startup()
        self.start_background()
        deadline = QDeadlineTimer(timeout_ms)
        while (self._opening is not None or self._start_profiles is not None) and not (
            self._shut_down
        ):
            if deadline.hasExpired():
                raise TimeoutError("The payout history did not open in time.")
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
            QThread.msleep(1)
        if self._startup_error is not None:
            self.shutdown()
            raise self._startup_error

    def _history_arrived(self, opened: _Opened) -> None:
        """GUI thread: the opening's result; use the store, or bring up the damage dialog."""
        opening, self._opening = self._opening, None
        self._check_start_settled()
        if opening is not None:
            opening.take()
        if self._shut_down:  # closed meanwhile: shutdown could not see this store
            if opened.store is not None:
                opened.store.close()
            return
        self._import_action.setEnabled(True)
        self._batch_action.setEnabled(True)
        self._template_action.setEnabled(True)
        if opened.store is None:
            assert opened.damage is not None
            self._history_damaged(opened.damage)
            return
        self._adopt_history(opened.store)
        self._history_settled(opened.store, opened.settled, opened.check_pending, "")

    def _history_open_failed(self, error: BaseException) -> None:
        """GUI thread: the history cannot be opened at all (not damage: e.g. no access)."""
        self._opening = None
        self._check_start_settled()
        if self._shut_down:
            return
        from cactus_desk.history.types import HistoryUnreachableError

        if self._store_url and isinstance(error, HistoryUnreachableError):
            self._team_store_unreachable(str(error))
            return
        self._startup_error = error
        message = " ".join(str(error).split()) or type(error).__name__
        log.error("the payout history could not be opened: %s", message)
        self._pages.setEnabled(False)
        self.statusBar().showMessage(message)
        self._set_history_note(HISTORY_NOT_OPEN_TEXT)
        self.startupFailed.emit(message)

    def _team_store_unreachable(self, message: str) -> None:
        """The team store cannot be reached at start: the window stays open and usable, says
        so, refuses sends with the reason, and tries again with a growing back-off."""
        from PySide6.QtCore import QTimer

        from cactus_desk.ui.team_store import UNREACHABLE_TEXT, next_reconnect_delay

        log.warning("the team store cannot be reached; trying again: %s", message)
        self._store_indicator.set_unreachable(True, message)
        self.statusBar().showMessage(UNREACHABLE_TEXT)
        self._set_history_note(f"{UNREACHABLE_TEXT}\n\n{message}")
        self._controller.set_unavailable_reason(
            f"{UNREACHABLE_TEXT} Nothing can be sent until it is back, because the payout "
            f"could not be recorded first. ({message})"
        )
        self._reconnect_delay = next_reconnect_delay(self._reconnect_delay)
        QTimer.singleShot(round(self._reconnect_delay * 1000), self._reopen_team_store)

    def _reopen_team_store(self) -> None:
        if self._shut_down or self._history is not None or self._opening is not None:
            return
        self._opening = _HistoryOpening(self.data_dir, self._store_url)
        self._runner.run(
            self._opening, self._history_arrived, self._history_open_failed, channel=OPEN_CHANNEL
        )

    def _adopt_history(self, store: HistoryStore) -> None:
        if self._reconnect_delay is not None:  # the team store came back by itself
            from cactus_desk.ui.team_store import RECONNECTED_SHOWN_MS, RECONNECTED_TEXT

            self._reconnect_delay = None
            self._controller.set_unavailable_reason("")
            self._store_indicator.set_unreachable(False)
            self.statusBar().showMessage(RECONNECTED_TEXT, RECONNECTED_SHOWN_MS)
            self._set_history_note(OPENING_HISTORY_TEXT)
            self._load_team_profiles()
        self._history, self._damage = store, None
        self._controller.set_history(store)
        self._start_team_live(store)
        if self._team_live is not None:  # the team's change notices drive the alerts' looks
            from cactus_desk.ui.alerts import TEAM_POLL_MS

            self._alerts.start(TEAM_POLL_MS)
        else:
            self._alerts.start()
        if self._store_url and hasattr(store, "change_listener"):
            self._start_team_approvals(self._store_url)
        if self._sandbox is not None and self._live is None:
            self._start_live_statuses(self._sandbox)
        if self._tabs.currentIndex() == HISTORY_TAB:
            self.history_panel.refresh()

    def _set_history_note(self, text: str) -> None:
        """What the History tab says while no panel is there ("Opening history…")."""
        self._history_note.setText(text)
        self._history_note.setVisible(self._history_panel is None)

    def _build_pages(self) -> None:
        """The first-run page and the tabs, under the place of the start-up notice."""
        # Imported here, like the other widgets the shell does not show: each PySide6 class
        # costs a little the first time it is named.
        from PySide6.QtCore import Qt
        from PySide6.QtWidgets import QLabel, QScrollArea, QStackedWidget, QTabWidget, QVBoxLayout

        from cactus_desk.ui import style

        self._scroll = QScrollArea()
        self._scroll.setObjectName("payoutScroll")
        self._scroll.setWidgetResizable(True)
        self._scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        style.flat_scroll_bars(self._scroll)

        self._tabs = QTabWidget()
        self._tabs.setObjectName("mainTabs")
        self._tabs.addTab(self._scroll, "New payout")
        self._history_holder = QWidget()
        self._history_layout = QVBoxLayout(self._history_holder)
        self._history_layout.setContentsMargins(0, 0, 0, 0)
        self._history_note: QLabel = QLabel(OPENING_HISTORY_TEXT)
        self._history_note.setObjectName("historyNote")
        self._history_note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._history_layout.addWidget(self._history_note)
        self._tabs.addTab(self._history_holder, "History")

        self._empty = EmptyState()
        self._empty.sandbox_button.clicked.connect(self._use_sandbox_clicked)
        self._empty.new_profile_button.clicked.connect(self.open_new_profile)

        self._pages = QStackedWidget()
        self._pages.addWidget(self._empty)
        self._pages.addWidget(self._tabs)
        self._pages.setCurrentIndex(MAIN_PAGE)
        central = QWidget()
        self._column = QVBoxLayout(central)
        self._column.setContentsMargins(0, 0, 0, 0)
        self._column.addWidget(self._pages, 1)
        self.setCentralWidget(central)

    def is_ready(self) -> bool:
        """True once ``finish_startup`` has built the usable window: the pages, the payout
        form with the profiles loaded, the balance (the history may still be opening)."""
        return self._ready

    def _finished(self) -> MainWindow:
        # The parts below exist once the start-up is finished; asking for one finishes it,
        # the history's opening included.
        if not self._ready:
            self.wait_started()
            if not self._ready:
                raise RuntimeError("The window was closed before it finished starting.")
        return self

    # -- accessors for the app and tests ---------------------------------------------------

    @property
    def form(self) -> PayoutForm:
        """The payout form."""
        return self._finished()._form

    @property
    def sandbox(self) -> SandboxGateway | None:
        """The in-process sandbox gateway, once started."""
        return self._sandbox

    @property
    def sandbox_profile(self) -> Profile | None:
        """The in-memory profile of the sandbox, once started."""
        return self._sandbox_profile

    @property
    def history(self) -> HistoryStore:
        """The payout history store; RuntimeError while a damaged one awaits a decision.

        Asked while the history is still opening at start, it waits for it (tests)."""
        if self._finished()._opening is not None or not self._background_started:
            self.wait_started()
        history = self._history
        if history is None:
            raise RuntimeError("The payout history is not open: it was damaged and set aside.")
        return history

    @property
    def recovery_banner(self) -> RecoveryBanner:
        """The start-up notice above the tabs (interrupted payouts, a restored history)."""
        return self._finished()._recovery_banner

    @property
    def profiles(self) -> ProfileStore:
        """The saved profiles."""
        return self._finished()._profiles

    @property
    def _profiles(self) -> ProfileStore:
        # Made on first use: the profiles module loads pydantic, which the start avoids.
        if self._profile_store is None:
            from cactus_desk.profiles import ProfileStore, ProfileStoreError

            if self._store_url:  # never this computer's file in place of the team's
                raise ProfileStoreError("The team's profiles are still being read.")
            self._profile_store = ProfileStore(self.data_dir)
        return self._profile_store

    @_profiles.setter
    def _profiles(self, store: ProfileStore) -> None:
        self._profile_store = store

    @property
    def secrets(self) -> SecretStore:
        """Where salts are read (keyring, or memory for the sandbox)."""
        return self._finished()._secret_store()

    def _secret_store(self) -> SecretStore:
        # Made on first use, on whichever thread needs a salt first (usually the balance's
        # worker): the keyring module is not needed before that.
        with self._secrets_lock:
            if self._secrets is None:
                from cactus_desk.secrets import SecretStore

                self._secrets = SecretStore()
            return self._secrets

    @property
    def balance_widget(self) -> BalanceWidget:
        """The balance in the status bar."""
        return self._finished()._balance

    @property
    def send_controller(self) -> SendController:
        """Sends payouts off the GUI thread."""
        return self._finished()._controller

    @property
    def tabs(self) -> QTabWidget:
        """The "New payout" / "History" tabs."""
        return self._finished()._tabs

    def add_approvals_tab(self, port: ApprovalsPort) -> QWidget:
        """On a team history: the Approvals tab over ``port`` (``approvals_desk.TeamApprovals``);
        never in solo mode, where nothing waits for approval."""
        from cactus_desk.ui.approvals.tab import attach_approvals_tab

        return attach_approvals_tab(self.tabs, port)

    @property
    def empty_state(self) -> EmptyState:
        """The first-run page."""
        return self._finished()._empty

    @property
    def history_panel(self) -> HistoryPanel:
        """The history tab's panel (built on first use, to keep start-up light)."""
        if self._history_panel is None:
            history = self.history
            # Waiting for the history to open may have finished the start-up, which builds
            # the panel of a window on its History tab: one panel only.
            if self._history_panel is None:
                self._history_panel = self._build_history_panel(history)
        return self._history_panel

    def _build_history_panel(self, history: HistoryStore) -> HistoryPanel:
        from cactus_desk.saved_filters import SavedFilterStore
        from cactus_desk.ui.batch.history_pane import install_batches_pane
        from cactus_desk.ui.history.panel import HistoryPanel

        panel = HistoryPanel(history, self._panel_profiles())
        panel.restore_columns(self._view_settings.history_columns())
        panel.resendRequested.connect(self.open_resend)
        panel.repeatRequested.connect(self.repeat_payout)
        panel.filters_bar.use_saved_filters(SavedFilterStore(self.data_dir))
        self._history_note.setVisible(False)
        self._history_layout.addWidget(panel)
        install_batches_pane(self, panel)
        return panel

    @property
    def live_statuses(self) -> LiveStatuses | None:
        """The in-process callback receiver of the sandbox, once the sandbox is started."""
        return self._live

    def showing_empty_state(self) -> bool:
        """True while the first-run page is on show."""
        return self._finished()._pages.currentIndex() == EMPTY_PAGE

    # -- profiles ---------------------------------------------------------------------------

    def all_profiles(self) -> list[Profile]:
        """The saved profiles, then the sandbox's (if started)."""
        if self._store_url:  # the team's, as last read on a worker
            saved = list(self._team_profiles or [])
            return saved + ([self._sandbox_profile] if self._sandbox_profile else [])
        if self._start_profiles is not None and self._profile_store is None:
            # Read at start without pydantic: the same fields, values and reads as the
            # ``Profile`` objects that replace them once the window has painted (or as soon
            # as anything, e.g. a profile dialog, uses the store).
            saved = cast("list[Profile]", list(self._start_profiles))
            return saved + ([self._sandbox_profile] if self._sandbox_profile else [])
        from cactus_desk.profiles import ProfileStoreError

        try:
            saved = self.profiles.all()
            self._empty.problem.setVisible(False)
        except ProfileStoreError as exc:
            self._empty.problem.setText(str(exc))
            self._empty.problem.setVisible(True)
            self.statusBar().showMessage(str(exc))
            saved = []
        return saved + ([self._sandbox_profile] if self._sandbox_profile else [])

    def reload_profiles(self, select_id: str | None = None) -> None:
        """Re-read the profiles into the form; show the first-run page when there are none."""
        if self._ready:
            self._runner.invalidate("profiles")  # a refresh read before this is out of date
        profiles = self.all_profiles()
        self.form.set_profiles(profiles, select_id)
        loading = self._store_url is not None and self._team_profiles is None
        self._pages.setCurrentIndex(MAIN_PAGE if profiles or loading else EMPTY_PAGE)
        self._profiles_action.setEnabled(True)
        if self._store_url and self._profile_store is not None and self._ready:
            self.refresh_profiles(select_id)  # the team's list may have changed elsewhere

    def changeEvent(self, event: QEvent) -> None:
        """On gaining focus, pick up profiles changed meanwhile (by another desk of the team,
        or a command on this computer)."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.ActivationChange and self.isActiveWindow():
            self.refresh_profiles()
            if self._store_url and self._ready and self._background_started and not self._shut_down:
                self._recipients.load()  # another desk may have saved one meanwhile

    def refresh_profiles(self, select_id: str | None = None) -> None:
        """Re-read the profiles on a worker; the form changes only if they did."""
        if not self._ready or self._shut_down:
            return
        if self._store_url and self._profile_store is None:
            return  # the team's profile store is still being opened
        store = self.profiles
        self._runner.run(
            store.all,
            lambda saved: self._profiles_read(saved, select_id),
            lambda error: log.warning("the profiles could not be read again: %s", error),
            channel="profiles",
        )

    def _profiles_read(self, saved: list[Profile], select_id: str | None = None) -> None:
        if self._store_url and not self._shut_down:
            self._team_profiles = list(saved)
        profiles = saved + ([self._sandbox_profile] if self._sandbox_profile else [])
        if self._shut_down or profiles == self.form.profiles():
            return
        self.form.set_profiles(profiles, select_id)
        self._pages.setCurrentIndex(MAIN_PAGE if profiles else EMPTY_PAGE)

    def salt_provider(self, profile: Profile) -> Callable[[], str | None]:
        """A callable that reads ``profile``'s salt when called (on a worker thread)."""
        secret_store, profile_id = self._secret_store, profile.id
        return lambda: secret_store().get_salt(profile_id)

    def _read_timeout_for(self, profile: Profile) -> float:
        if profile.id == SANDBOX_PROFILE_ID and self._sandbox_read_timeout is not None:
            return self._sandbox_read_timeout
        return profile.read_timeout

    def start_sandbox(self) -> Profile:
        """Start the embedded sandbox (once) and select its in-memory profile."""
        self._finished()
        if self._sandbox is None or self._sandbox_profile is None:
            from cactus_desk.profiles import Profile, extension_methods
            from cactus_desk.sandbox import SandboxGateway

            sandbox = SandboxGateway().start()
            self._sandbox = sandbox
            self._secret_store().remember_for_session(SANDBOX_PROFILE_ID, sandbox.salt)
            self._sandbox_profile = Profile(
                id=SANDBOX_PROFILE_ID,
                name=SANDBOX_PROFILE_NAME,
                base_url=sandbox.base_url,
                merchant_id=sandbox.merchant_id,
                site_id=sandbox.site_id,
                environment="sandbox",
                # A playground: every method the catalog knows is on.
                extensions=sorted(extension_methods()),
            )
            self._start_live_statuses(sandbox)
        self.reload_profiles(select_id=SANDBOX_PROFILE_ID)
        return self._sandbox_profile

    def _start_live_statuses(self, sandbox: SandboxGateway) -> None:
        from cactus_desk.ui.history.live_updates import DEFAULT_FINALIZE_AFTER, LiveStatuses

        if self._history is None:
            return  # started by _use_history once a history is in place
        delay = self._sandbox_finalize_after
        delay = DEFAULT_FINALIZE_AFTER if delay is None else delay
        live = LiveStatuses(self._history, sandbox, finalize_after=delay, parent=self)
        live.unavailable.connect(self.statusBar().showMessage)
        # Short enough to fit beside the balance; the decline rule is in the README.
        started = f"Live statuses on: sandbox payouts settle in {delay:g} s"
        live.started.connect(lambda _url: self.statusBar().showMessage(started, 15_000))
        self._live = live
        if self.isVisible():
            live.start()
        else:
            live.start_after_first_paint(self)

    def set_sandbox_extensions(self, extensions: list[str]) -> None:
        """Enable exactly these extension methods on the sandbox profile."""
        from cactus_desk.profiles import Profile

        if self._sandbox_profile is None:
            raise RuntimeError("The sandbox is not running")
        data = self._sandbox_profile.model_dump()
        self._sandbox_profile = Profile(**{**data, "extensions": extensions})
        self.reload_profiles()

    def _use_sandbox_clicked(self) -> None:
        from PySide6.QtWidgets import QMessageBox

        try:
            self.start_sandbox()
        except OSError as exc:
            QMessageBox.warning(self, APP_NAME, f"The sandbox could not start: {exc}")

    def _profile_changed(self, _profile_id: str) -> None:
        profile = self._form.current_profile()
        if profile is None:
            self._balance.set_profile(None, None)
            self.setWindowTitle(APP_NAME)
            return
        tag = "LIVE" if profile.is_live else "sandbox"
        self.setWindowTitle(f"{profile.name} [{tag}] · {APP_NAME}")
        self._balance.set_profile(profile, self.salt_provider(profile))

    def _remember_units(self, profile_id: str, currency: str, decimals: int) -> None:
        """Keep, in the profile's settings, that ``decimals`` of ``currency`` were confirmed."""
        from cactus_desk.profiles import Profile

        store = self.profiles

        def save() -> None:  # worker thread: a file, or the team store over the network
            profile = store.get_by_id(profile_id)
            confirmed = {**profile.units_confirmed, currency: decimals}
            data = {**profile.model_dump(), "units_confirmed": confirmed}
            store.update(Profile.model_validate(data))

        def failed(exc: BaseException) -> None:
            log.warning("The confirmation of %s minor units was not saved: %s", currency, exc)
            self.statusBar().showMessage(
                f"The confirmation of {currency} minor units could not be saved; "
                "the next payout in it will ask again.",
                15_000,
            )

        self._runner.run(save, lambda _none: self.reload_profiles(), failed)

    # -- saved recipients and repeats --------------------------------------------------------

    def _add_recipients(self) -> None:
        from cactus_desk.ui.alerts import AlertWatcher, TrayNotifier
        from cactus_desk.ui.recipients.picker import RecipientsController

        self._alerts: AlertWatcher = AlertWatcher(lambda: self._history, self)
        self.notifier: TrayNotifier = TrayNotifier(self.windowIcon(), self.statusBar(), self)
        self._alerts.alert.connect(self.notifier.show)
        data_dir, store_url = self.data_dir, self._store_url

        def repository() -> RecipientRepository:  # worker thread: a file, or the team store
            from cactus_desk.history import open_recipients

            return open_recipients(data_dir, store_url)

        # On a team store the team's recipients (every desk's), else this desk's file.
        self._recipients: RecipientsController = RecipientsController(self._form, repository, self)

    @property
    def alert_watcher(self) -> AlertWatcher:
        """What raises the declined and review alerts."""
        return self._finished()._alerts

    @property
    def recipients(self) -> RecipientsController:
        """The saved recipients of the payout form."""
        return self._finished()._recipients

    def repeat_payout(self, record_id: int) -> None:
        """Read payout ``record_id`` on a worker, then open a new payout prefilled like it."""
        store = self._history
        if store is None:
            return

        def repeat(record: object) -> None:
            from cactus_desk.history.types import PayoutRecord

            if self._shut_down or not isinstance(record, PayoutRecord):
                return
            if self.recipients.repeat(record):
                self._tabs.setCurrentIndex(PAYOUT_TAB)

        self._runner.run(
            lambda: store.get(record_id),
            repeat,
            lambda error: self.statusBar().showMessage(f"Cannot repeat the payout: {error}"),
            channel="repeat",
        )

    # -- menus and dialogs ----------------------------------------------------------------

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._profiles_action = QAction("&Profiles…", self)
        self._profiles_action.setObjectName("profilesAction")
        self._profiles_action.triggered.connect(self.open_profiles)
        file_menu.addAction(self._profiles_action)
        self._sandbox_action = QAction("Use the &sandbox", self)
        self._sandbox_action.setObjectName("sandboxAction")
        self._sandbox_action.triggered.connect(self._use_sandbox_clicked)
        file_menu.addAction(self._sandbox_action)
        self._import_action = QAction("&Import callbacks…", self)
        self._import_action.setObjectName("importCallbacksAction")
        self._import_action.triggered.connect(self.open_import_callbacks)
        file_menu.addAction(self._import_action)
        self._batch_action = QAction("Import &batch…", self)
        self._batch_action.setObjectName("importBatchAction")
        self._batch_action.triggered.connect(lambda: self.open_batch())
        file_menu.addAction(self._batch_action)
        self._template_action = QAction("Download &template…", self)
        self._template_action.setObjectName("batchTemplateAction")
        self._template_action.triggered.connect(self.open_batch_template)
        file_menu.addAction(self._template_action)
        # Enabled by finish_startup, once the profiles and the history are there.
        for action in (self._profiles_action, self._sandbox_action, self._import_action):
            action.setEnabled(False)
        self._batch_action.setEnabled(False)
        self._template_action.setEnabled(False)
        file_menu.addSeparator()
        self._quit_action = QAction("&Quit", self)
        self._quit_action.triggered.connect(self.close)
        file_menu.addAction(self._quit_action)
        # In no menu: Ctrl+F anywhere in the window, as the search box's tooltip says.
        self._find_action = QAction("Search the history", self)
        self._find_action.setObjectName("searchHistoryAction")
        self._find_action.triggered.connect(self.focus_history_search)
        self.addAction(self._find_action)

        help_menu = self.menuBar().addMenu("&Help")
        self._guide_action = QAction("&User guide", self)
        self._guide_action.setObjectName("userGuideAction")
        self._guide_action.triggered.connect(self.open_guide)
        help_menu.addAction(self._guide_action)
        about = QAction("&About Cactus Desk", self)
        about.setObjectName("aboutAction")
        about.triggered.connect(self.open_about)
        help_menu.addAction(about)

    def _add_shortcuts(self) -> None:
        # Not in the shell: the first setShortcut makes PySide6 create the enums of Qt's
        # namespace (tens of milliseconds) and nothing can be typed before the first paint.
        from PySide6.QtGui import QKeySequence

        self._profiles_action.setShortcut(QKeySequence("Ctrl+Shift+P"))
        # Ctrl+Q everywhere: Windows has no standard Quit key of its own.
        quit_keys = [
            *QKeySequence.keyBindings(QKeySequence.StandardKey.Quit),
            QKeySequence("Ctrl+Q"),
        ]
        self._quit_action.setShortcuts(list(dict.fromkeys(quit_keys)))
        self._find_action.setShortcut(QKeySequence.StandardKey.Find)
        self._guide_action.setShortcut(QKeySequence("F1"))

    def focus_history_search(self) -> None:
        """Show the History tab with the cursor in its search box (Ctrl+F)."""
        if not self._ready or self._history is None or not self._pages.isEnabled():
            return  # no history to search yet, or a damaged one awaiting a decision
        if self._pages.currentIndex() != MAIN_PAGE:
            return
        self._tabs.setCurrentIndex(HISTORY_TAB)
        self.history_panel.focus_search()

    def open_guide(self) -> QWidget:
        """Open the user guide (non-blocking) at the part for the current tab (F1)."""
        from cactus_desk.ui.help import HelpDialog

        dialog = getattr(self, "_guide", None)
        if dialog is None:
            dialog = HelpDialog(self)
            self._guide: HelpDialog | None = dialog
        section = "payout"
        if self._ready and self._tabs.currentIndex() == HISTORY_TAB:
            section = "history"
        dialog.show_section(section)
        dialog.show()
        dialog.raise_()
        return dialog

    def open_profiles(self) -> QWidget:
        """Open the profile manager (non-blocking) and return it."""
        from cactus_desk.ui.profiles.manager import ProfileManagerDialog

        dialog = ProfileManagerDialog(self.profiles, self.secrets, self)
        _delete_on_close(dialog)
        dialog.profilesChanged.connect(self.reload_profiles)
        dialog.open()
        return dialog

    def open_new_profile(self) -> QWidget:
        """Open the "New profile" dialog (non-blocking) and return it."""
        from cactus_desk.ui.profiles.editor import ProfileDialog

        dialog = ProfileDialog(self.profiles, self.secrets, self)
        _delete_on_close(dialog)
        dialog.profileSaved.connect(lambda profile_id: self.reload_profiles(profile_id))
        dialog.open()
        return dialog

    def open_import_callbacks(self) -> ImportCallbacksDialog:
        """Open the "Import callbacks" dialog (non-blocking) and return it."""
        from cactus_desk.ui.dialogs.import_callbacks import ImportCallbacksDialog

        dialog = ImportCallbacksDialog(self.history, self.all_profiles(), self.salt_provider, self)
        _delete_on_close(dialog)
        dialog.imported.connect(self._callbacks_imported)
        dialog.open()
        return dialog

    def open_batch(self, path: Path | None = None) -> BatchDialog | None:
        """Import a batch file (asked for when not given) into the batch dialog."""
        from cactus_desk.ui.batch.menu import open_batch

        return open_batch(self, path)

    def open_batch_template(self) -> None:
        """Write a batch template for a method the person picks."""
        from cactus_desk.ui.batch.menu import download_template

        download_template(self)

    def _callbacks_imported(self) -> None:
        if self._history_panel is not None:
            self._history_panel.refresh()

    def open_about(self) -> QWidget:
        """Open the About dialog (non-blocking) and return it."""
        from cactus_desk.ui.dialogs.about import AboutDialog

        dialog = AboutDialog(self)
        _delete_on_close(dialog)
        dialog.open()
        return dialog

    # -- sends ------------------------------------------------------------------------------

    def _tab_changed(self, index: int) -> None:
        if index == HISTORY_TAB and self._history is not None:
            self.history_panel.refresh()  # else it says "Opening history…" until it is open

    def _send_finished(self, job: SendJob, result: SendResult) -> None:
        if self._history_panel is not None:
            self._history_panel.refresh()
        current = self._form.current_profile()
        if result.accepted and current and current.id == job.profile.id:
            self._balance.refresh()
        self._close_if_waiting()

    def _close_if_waiting(self) -> None:
        if self._controller.is_sending():
            return
        if self._damage_pending is not None and not self._shut_down:
            self._take_history_down(self._damage_pending)
        if self._close_when_idle:
            self.close()

    # -- the history: interrupted payouts, damage, resends --------------------------------

    def _history_opened(self, check_pending: bool, note: str = "") -> None:
        """Settle interrupted attempts (on a worker) and say so; check the file if still due."""
        store = self.history
        if note:
            self._recovery_banner.show_message(note, show_button=False)
        self._runner.run(
            lambda: _settle_interrupted(store),
            lambda settled: self._history_settled(store, settled, check_pending, note),
        )

    def _history_settled(
        self, store: HistoryStore, settled: _Settled, check_pending: bool, note: str
    ) -> None:
        """GUI thread: report the interrupted payouts; start the integrity check if due."""
        from cactus_desk.ui.dialogs.recovery import interrupted_text

        if self._shut_down or store is not self._history:
            return
        self._recovered = settled.ids
        text = interrupted_text(settled.states) if settled.states else ""
        if settled.error is not None:
            text = (
                "Payouts interrupted when Cactus Desk last stopped could not be checked "
                f"({settled.error}). Look for payouts still Submitting in the history before "
                "sending new ones."
            )
        if text:
            self._recovery_banner.show_message(
                " ".join(part for part in (note, text) if part), show_button=bool(self._recovered)
            )
        from cactus_desk.ui.batch.interrupted import notice_interrupted_batches

        notice_interrupted_batches(self, store)  # after the settling: in doubt is UNKNOWN
        if check_pending:
            self._daily_check(store)  # one check (and daily backup) at a time, with the timer's
        self._check_completely_later(store)
        self._warm_up_later(store)

    def _warm_up_later(self, store: HistoryStore) -> None:
        """Once the first page is in, read ahead what the history's sorts read most, on a
        worker below the GUI thread (``warm_up``), so the first sort does not wait on it."""
        from PySide6.QtCore import QTimer

        def warm() -> None:
            if self._shut_down or store is not self._history:
                return
            self._checks.run(
                store.warm_up,
                lambda _none: None,
                lambda error: log.info("the history was not read ahead: %s", error),
            )

        QTimer.singleShot(WARM_UP_DELAY_MS, self, warm)

    def _check_completely_later(self, store: HistoryStore) -> None:
        """The start-up check is bounded; the complete one runs on a worker a little later,
        once the first pages are in, and a damage found takes the history down as usual."""
        from PySide6.QtCore import QTimer

        def check() -> None:
            if self._shut_down or store is not self._history:
                return
            self._checks.run(
                lambda: store.check_integrity(complete=True),
                lambda problem: self._history_checked(store, problem),
                lambda error: log.warning("the history could not be checked: %s", error),
            )

        QTimer.singleShot(COMPLETE_CHECK_DELAY_MS, self, check)

    def _start_upkeep(self) -> None:
        """Every second, the history's upkeep (text-index merges, WAL checkpoint) on a worker,
        so the write before a send never does that work."""
        from PySide6.QtCore import QTimer

        self._upkeep_timer = QTimer(self)
        self._upkeep_timer.setInterval(UPKEEP_INTERVAL_MS)
        self._upkeep_timer.timeout.connect(self._upkeep)
        self._upkeep_timer.start()
        self._daily_timer = QTimer(self)
        self._daily_timer.setInterval(DAILY_CHECK_INTERVAL_MS)
        self._daily_timer.timeout.connect(self._daily_check)
        self._daily_timer.start()

    def _daily_check(self, store: HistoryStore | None = None) -> None:
        """The bounded check and the daily backup when due, on a worker; not while one runs."""
        store = store if store is not None else self._history
        if store is None or self._shut_down or self._checks.busy(DAILY_CHECK_CHANNEL):
            return
        self._checks.run(
            store.check_integrity,
            lambda problem: self._history_checked(store, problem),
            lambda error: log.warning("the history could not be checked: %s", error),
            channel=DAILY_CHECK_CHANNEL,
        )

    def _upkeep(self) -> None:
        store = self._history
        if store is None or self._shut_down or self._runner.busy(UPKEEP_CHANNEL):
            return
        self._runner.run(
            store.run_maintenance,
            lambda _report: None,
            lambda error: log.warning("history upkeep skipped: %s", error),
            channel=UPKEEP_CHANNEL,
        )

    def _history_checked(self, store: HistoryStore, problem: str | None) -> None:
        if problem is None or self._shut_down or store is not self._history:
            return
        log.error("the payout history failed its integrity check: %s", problem)
        self._damage_pending = problem
        self._pages.setEnabled(False)  # no new sends into a damaged file
        self._close_if_waiting()  # takes it down now, or once the send in flight is recorded

    def _take_history_down(self, problem: str) -> None:
        from PySide6.QtWidgets import QMessageBox

        from cactus_desk.history import set_damaged_aside
        from cactus_desk.history.types import HistoryOpenError

        store, self._history, self._damage_pending = self._history, None, None
        self._controller.set_history(None)
        if self._live is not None:
            self._live.stop()
            self._live = None
        self._drop_history_panel()
        self._set_history_note(HISTORY_NOT_OPEN_TEXT)
        if store is None:
            return
        store.close()
        try:
            error = set_damaged_aside(store, problem)
        except HistoryOpenError as exc:
            self._pages.setEnabled(False)
            self.statusBar().showMessage(str(exc))
            box = QMessageBox(QMessageBox.Icon.Critical, APP_NAME, str(exc), parent=self)
            _delete_on_close(box)
            box.open()
            return
        self._history_damaged(error)

    def _history_damaged(self, error: CorruptHistoryError) -> None:
        from cactus_desk.ui.dialogs.recovery import CorruptHistoryDialog

        self._damage = error
        self._pages.setEnabled(False)
        self._set_history_note(HISTORY_NOT_OPEN_TEXT)
        self.statusBar().showMessage("The payout history is damaged: choose how to continue.")
        dialog = CorruptHistoryDialog(error, self.data_dir, self)
        _delete_on_close(dialog)
        dialog.historyReady.connect(self._use_history)
        dialog.rejected.connect(self.close)
        dialog.open()

    def _use_history(self, store: HistoryStore, message: str) -> None:
        """Work with ``store`` from now on (a restored backup or a new, empty history)."""
        self._adopt_history(store)
        self._pages.setEnabled(True)
        self.statusBar().clearMessage()
        self._history_opened(False, note=message)

    def _drop_history_panel(self) -> None:
        panel, self._history_panel = self._history_panel, None
        if panel is not None:
            self._view_settings.set_history_columns(panel.column_layout())
            self._history_layout.removeWidget(panel)
            panel.hide()
            panel.deleteLater()
            self._history_note.setVisible(True)

    def _show_recovered(self) -> None:
        from cactus_desk.history.types import HistoryError, RecordNotFoundError
        from cactus_desk.ui.off_thread import NoAnswerInTime, call_off_gui

        if not self._recovered or self._history is None:
            return
        self._tabs.setCurrentIndex(HISTORY_TAB)
        store, record_id = self._history, self._recovered[-1]
        try:  # on its own thread (SQL, or the network on a team store), painting meanwhile
            request_id = call_off_gui(lambda: store.get(record_id).request_id)
        except RecordNotFoundError:
            return
        except (HistoryError, NoAnswerInTime) as exc:
            self.statusBar().showMessage(f"The payout could not be read: {exc}", 15_000)
            return
        if not self._shut_down and store is self._history:
            self.history_panel.select_request(request_id)

    def open_resend(self, record_id: int) -> ResendDialog | None:
        """Open "Send again with the same request ID" for an UNKNOWN payout (non-blocking).

        Returns None, with the reason in the status bar, when it cannot be sent again.
        """
        from cactus_desk.payouts.send import SendResult
        from cactus_desk.ui.history.resend_dialog import ResendDialog
        from cactus_desk.ui.off_thread import call_off_gui

        service, profiles = self._controller.service, self.all_profiles()
        try:  # on its own thread (SQL, or the network on a team store), painting meanwhile
            found: ResendTarget | SendResult = call_off_gui(
                lambda: service.resend_target(record_id, profiles)
            )
        except Exception as exc:  # the history could not be read: say why, send nothing
            self.statusBar().showMessage(f"The payout could not be read: {exc}", 20_000)
            return None
        if isinstance(found, SendResult):  # RESEND_REFUSED or no history: the message says why
            self.statusBar().showMessage(found.message, 20_000)
            return None
        dialog = ResendDialog(self._controller, found.record, found.profile, self)
        _delete_on_close(dialog)
        dialog.resent.connect(self._resent)
        dialog.finished.connect(lambda _result: self._resend_closed(dialog))
        self._resend_dialog = dialog
        dialog.open()
        return dialog

    def _resend_closed(self, dialog: ResendDialog) -> None:
        if self._resend_dialog is dialog:
            self._resend_dialog = None
        self._close_if_waiting()

    def _resent(self, record_id: int, result: SendResult) -> None:
        if self._shut_down or self._history is None:
            return
        banner = self._form.banner
        banner.show_result(result)  # a resend that never left is a warning: still in doubt
        self.statusBar().showMessage(f"Sent again: {banner.text()}", 30_000)

    # -- the team store: its indicator, profiles and live changes ---------------------------

    def _add_store_indicator(self) -> None:
        from cactus_desk.ui.team_store import StoreIndicator

        self._store_indicator: StoreIndicator = StoreIndicator()
        if self._store_url:
            try:
                self._store_indicator.show_team(self._store_url)
            except ValueError as exc:  # a bad URL: the history's opening says why
                self._store_indicator.setText("Team")
                self._store_indicator.setToolTip(str(exc))
        else:
            self._store_indicator.show_local(str(self.data_dir))
        self.statusBar().addPermanentWidget(self._store_indicator)

    @property
    def store_indicator(self) -> StoreIndicator:
        """The status bar's "Local" or "Team: host/db · login"."""
        return self._finished()._store_indicator

    @property
    def team_live(self) -> TeamLive | None:
        """The team store's live changes, once the team history is open."""
        return self._team_live

    def _load_team_profiles(self) -> None:
        """Open the team's profile store (keyring, network) and read it, on a worker."""
        from cactus_desk.history import open_profiles

        data_dir, url = self.data_dir, self._store_url

        def load() -> tuple[ProfileStore, list[Profile]]:  # worker thread
            store = open_profiles(data_dir, url)
            return cast("ProfileStore", store), store.all()

        def loaded(found: tuple[ProfileStore, list[Profile]]) -> None:
            self._start_profiles = None
            self._check_start_settled()
            if self._shut_down:
                return
            self._profile_store, self._team_profiles = found[0], list(found[1])
            self._empty.problem.setVisible(False)  # e.g. the store was unreachable before
            self.reload_profiles()
            self._balance.release()

        def failed(error: BaseException) -> None:
            self._start_profiles = None
            self._check_start_settled()
            if self._shut_down:
                return
            message = " ".join(str(error).split()) or type(error).__name__
            log.error("the team's profiles could not be read: %s", message)
            self._team_profiles = []
            self._empty.problem.setText(message)
            self._empty.problem.setVisible(True)
            if self._reconnect_delay is None:
                self.statusBar().showMessage(message)
            else:  # the store is down: read again once it is back
                from cactus_desk.ui.team_store import UNREACHABLE_TEXT

                self.statusBar().showMessage(UNREACHABLE_TEXT)
            self.reload_profiles()

        self._runner.run(load, loaded, failed, channel=PROFILES_CHANNEL)

    def _start_team_live(self, store: HistoryStore) -> None:
        """Listen for the team's changes (a team history only)."""
        from cactus_desk.ui.team_store import TeamLive

        if self._team_live is not None:
            self._team_live.stop()
            self._team_live = None
        if not hasattr(store, "change_listener"):
            return  # this computer's own history: the History panel's change watch does it
        from PySide6.QtCore import QTimer

        self._team_catch_up = False
        self._team_look = QTimer(self)
        self._team_look.setSingleShot(True)
        self._team_look.setInterval(TEAM_LOOK_DELAY_MS)
        self._team_look.timeout.connect(self._team_look_now)
        live = TeamLive(store, self)
        live.changed.connect(self._team_changed)
        live.stateChanged.connect(self._team_state)
        live.signedIn.connect(self._store_indicator.set_login)
        self._team_live = live
        live.start()

    def _start_team_approvals(self, url: str) -> None:
        """On a team history (once): the policies for the form's button, submitting held
        payouts for approval, the Approvals tab, and the decisions on this desk's requests."""
        if self._approvals_tab is not None:
            return
        from cactus_desk.approvals_desk import TeamApprovals
        from cactus_desk.ui.batch.dialog import SENDING_NICENESS

        controller = self._controller
        controller.set_team_store(url)
        controller.submitted.connect(self._approval_submitted)
        port = TeamApprovals(
            url, self.data_dir, service=lambda: controller.service, niceness=SENDING_NICENESS
        )
        self._approvals_port = port
        tab = cast("ApprovalsTab", self.add_approvals_tab(port))
        tab.listed.connect(self._approvals_listed)
        self._approvals_tab = tab
        self._load_approval_thresholds()

    @property
    def approvals_tab(self) -> ApprovalsTab | None:
        """The Approvals tab (a team history only)."""
        return self._approvals_tab

    @property
    def approvals_port(self) -> TeamApprovals | None:
        """The team's approvals as this desk's login (a team history only; worker calls)."""
        return self._approvals_port

    def show_approval_request(self, approval_id: int) -> None:
        """Bring the Approvals tab forward with request ``approval_id`` selected."""
        tab = self._approvals_tab
        if tab is not None:
            self.tabs.setCurrentWidget(tab)
            tab.select_request(approval_id)

    def _load_approval_thresholds(self) -> None:
        from cactus_desk import payout_approval

        url = self._store_url
        if not url:
            return

        def loaded(found: dict[tuple[str, str], int]) -> None:
            if not self._shut_down:
                self._form.set_approval_thresholds(found)

        def failed(error: BaseException) -> None:
            log.warning("the team's approval policies could not be read: %s", error)

        self._runner.run(
            lambda: payout_approval.thresholds(url), loaded, failed, channel="approval-policies"
        )

    def _approval_submitted(self, _job: SendJob, submitted: Submitted) -> None:
        self._awaiting[submitted.approval_id] = submitted.request_id
        if self._approvals_tab is not None:
            self._approvals_tab.refresh()

    def _approvals_listed(self) -> None:
        """The team's approvals changed: the policies again, and this desk's own requests."""
        self._load_approval_thresholds()
        port = self._approvals_port
        if port is None:
            return
        for approval_id in list(self._awaiting):

            def read(chosen: int = approval_id) -> ApprovalRequest:  # worker thread
                return port.get(chosen)

            self._runner.run(
                read,
                self._approval_decided,
                lambda error: log.warning("an approval request could not be read: %s", error),
                channel=f"approval-{approval_id}",
            )

    def _approval_decided(self, request: ApprovalRequest) -> None:
        if self._shut_down or request.id not in self._awaiting:
            return
        banner, what = self._form.banner, f"Request {request.id} ({request.request_id})"
        by = ", ".join(request.approvers)
        if request.state == "REJECTED_BY_APPROVER":
            del self._awaiting[request.id]
            why = f": {request.reason}" if request.reason else ""
            banner.show_error(f"{what} was rejected by {request.decided_by}{why}. It was not sent.")
        elif request.state in ("WITHDRAWN", "EXPIRED"):
            del self._awaiting[request.id]
            banner.show_error(f"{what} is {request.state.lower()}. It was not sent.")
        elif request.payout_id is not None:
            del self._awaiting[request.id]
            banner.show_approved(
                f"{what} was approved by {by} and sent; its status follows here and in History."
            )
            self._form.status_follower.follow(request.payout_id)
            self._form.status_follower.check()
        elif request.state == "APPROVED":
            banner.show_approved(f"{what} was approved by {by}; an approver's desk sends it.")

    def _panel_profiles(self) -> ProfileStore:
        """What the History panel reads profiles (their decimals) from: on a team store the
        team's list as last read on a worker, never a network call on the GUI thread."""
        if not self._store_url:
            return self.profiles
        from cactus_desk.ui.team_store import ReadProfiles

        return cast("ProfileStore", ReadProfiles(lambda: list(self._team_profiles or [])))

    def _team_changed(self, batch: object) -> None:
        """GUI thread: payouts changed in the team store: refresh the rows and the banner.

        A burst of batches makes one look (the panel's and the follower's own reads run
        once their last one has answered), so the window keeps up at hundreds a second."""
        if self._shut_down or self._history is None:
            return
        self._team_catch_up = self._team_catch_up or bool(getattr(batch, "catch_up", False))
        if not self._team_look.isActive():
            self._team_look.start()

    def _team_look_now(self) -> None:
        catch_up, self._team_catch_up = self._team_catch_up, False
        if self._shut_down or self._history is None:
            return
        if self._history_panel is not None:
            if catch_up:
                self._history_panel.refresh()  # the filter choices too
            else:
                self._history_panel.look_for_changes()
        self._form.status_follower.check()
        self._alerts.look()  # a Declined or flagged payout written by any desk or receiver

    def _team_state(self, state: str, message: str) -> None:
        from cactus_desk.history.live import RECONNECTED, UNREACHABLE
        from cactus_desk.ui.team_store import (
            RECONNECTED_SHOWN_MS,
            RECONNECTED_TEXT,
            UNREACHABLE_TEXT,
        )

        if self._shut_down:
            return
        if state == UNREACHABLE:
            self._store_indicator.set_unreachable(True, message)
            self.statusBar().showMessage(UNREACHABLE_TEXT)
        elif state == RECONNECTED:
            self._store_indicator.set_unreachable(False)
            self.statusBar().showMessage(RECONNECTED_TEXT, RECONNECTED_SHOWN_MS)

    # -- closing ----------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        busy = self._ready and self._controller.is_sending()
        if busy and not self._shut_down:
            # Closing now would leave the attempt SUBMITTING: ask, and at most wait for its
            # answer before closing.
            event.ignore()
            if self._close_when_idle:
                self.statusBar().showMessage(CLOSING_WHEN_IDLE_TEXT)
            else:
                self._ask_before_quitting()
            return
        self.shutdown()
        super().closeEvent(event)

    @property
    def quit_question(self) -> QMessageBox | None:
        """The "quit while a payout is being sent?" question while it is open."""
        return self._quit_question

    def _ask_before_quitting(self) -> None:
        from PySide6.QtWidgets import QMessageBox

        if self._quit_question is not None:
            self._quit_question.raise_()
            return
        new_payouts = [job for job in self._controller.jobs() if job.resend_of is None]
        what = "A payout is being sent" if new_payouts else "A payout is being sent again"
        box = QMessageBox(
            QMessageBox.Icon.Warning, APP_NAME, f"{what}. Quit Cactus Desk?", parent=self
        )
        box.setObjectName("quitWhileSendingBox")
        box.setInformativeText(
            "Its answer has not come back yet. Cactus Desk can close as soon as the answer is "
            "recorded, so the history says whether the money went."
        )
        close = box.addButton("Close when it is recorded", QMessageBox.ButtonRole.AcceptRole)
        close.setObjectName("closeWhenRecordedButton")
        stay = box.addButton("Keep working", QMessageBox.ButtonRole.RejectRole)
        stay.setObjectName("keepWorkingButton")
        box.setDefaultButton(stay)
        box.setEscapeButton(stay)
        _delete_on_close(box)
        box.finished.connect(lambda _result: self._quit_answered(box.clickedButton() is close))
        self._quit_question = box
        box.open()

    def _quit_answered(self, close: bool) -> None:
        self._quit_question = None
        if not close or self._shut_down:
            return
        self._close_when_idle = True
        self.statusBar().showMessage(CLOSING_WHEN_IDLE_TEXT)
        self._close_if_waiting()  # the answer may have come while the question was open

    def _remember_layout(self) -> None:
        self._view_settings.set_geometry(self.saveGeometry())
        if self._history_panel is not None:
            self._view_settings.set_history_columns(self._history_panel.column_layout())
        if not self._view_settings.save():
            log.warning("the window layout could not be saved")

    def shutdown(self) -> None:
        """Wait for background work, close the clients, stop the sandbox. Safe to call twice."""
        if self._shut_down:
            return
        self._shut_down = True
        if not self._ready:  # closed before the start-up finished: only the lock is held
            self._lock.release()
            log.info("main window closed")
            return
        self._remember_layout()
        self._alerts.stop()
        if self._live is not None:
            self._live.stop()  # before the sandbox and the store it writes to
        if self._team_live is not None:
            self._team_live.stop()
        if self._approvals_tab is not None:
            self._approvals_tab.stop()
        if self._sandbox is not None:
            # Stopping first releases a handler a fault holds, so a pending send ends now.
            self._sandbox.stop()
        self._balance.set_profile(None, None)
        from cactus_desk.history import abandon_backups

        abandon_backups(self.data_dir)  # a daily backup in progress stops, leaving no file
        self._controller.wait_idle(SHUTDOWN_WAIT_MS)  # the whole pool: sends, balances, opening
        self._checks.wait_idle(SHUTDOWN_WAIT_MS)
        self._controller.close()
        opening, self._opening = self._opening, None
        opened = opening.take() if opening is not None else None
        if opened is not None and opened is not self._history:
            opened.close()  # opened on the worker after this window was closed
        if self._history_panel is not None:
            self._history_panel.stop()  # a search typed just before quitting reads no more
        if self._history is not None:
            self._history.close()
        self._lock.release()
        log.info("main window closed")
