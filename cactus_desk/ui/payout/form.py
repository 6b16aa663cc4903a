"""The payout form: profile, currency, method, recipient, amount and request id, then Send.

Every field is checked as the person types (``validate_draft``) and its message shows under
it once the field has been touched; Send is enabled only for a valid draft. Sending goes
through a confirm dialog and then the ``SendController``, which works off the GUI thread.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cactus_desk.catalog import Catalog, FieldSpec, MethodSpec
from cactus_desk.money import AmountError, Currency, currencies, format_major, parse_amount
from cactus_desk.payouts.draft import new_request_id, validate_draft
from cactus_desk.payouts.states import state_text
from cactus_desk.ui import style
from cactus_desk.ui.payout.method_panel import MethodPanel, ResizableStackedWidget
from cactus_desk.ui.payout.result_banner import ResultBanner
from cactus_desk.ui.payout.status_follower import StatusFollower
from cactus_desk.ui.widgets.amount_edit import AmountEdit, minor_unit_name

if TYPE_CHECKING:
    # The confirm dialog and the send service (the gateway's models, the HTTP client) load
    # with the first Send: the window's start does not wait for them.
    from cactus_desk.payouts.payout import Payout
    from cactus_desk.payouts.send import SendCode, SendResult
    from cactus_desk.profiles import Profile
    from cactus_desk.ui.payout.confirm_dialog import ConfirmDialog
    from cactus_desk.ui.payout.send_controller import SendController, SendJob

# The form's own keys, in the order their messages are listed.
FORM_KEYS = ("profile", "currency", "method", "site_login", "amount", "request_id")
_KEY_LABELS = {
    "profile": "Profile",
    "currency": "Currency",
    "method": "Method",
    "site_login": "Site login",
    "amount": "Amount",
    "request_id": "Request id",
}
DEFAULT_CURRENCY = "RUB"


@dataclass(frozen=True)
class _Draft:
    """What the form holds, checked as it is typed (``validate_draft``); it becomes a
    ``PayoutDraft`` (a pydantic model, loaded with the first Send) only to be sent."""

    profile_id: str
    site_login: str
    currency: str
    method: str
    amount_text: str
    fields: dict[str, str | bool] = field(default_factory=dict)
    request_id: str = ""


def _label(text: str, buddy: QWidget) -> QLabel:
    label = QLabel(text)
    label.setBuddy(buddy)
    return label


class PayoutForm(QWidget):
    """The "New payout" page. ``profileChanged`` carries the selected profile's id ('' for none).

    ``unitsConfirmed(profile_id, currency, decimals)`` asks for a confirmation of minor units,
    ticked in the confirm dialog of a payout that was then sent, to be remembered.
    """

    profileChanged = Signal(str)
    unitsConfirmed = Signal(str, str, int)

    def __init__(
        self,
        catalog: Catalog,
        controller: SendController,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("payoutForm")
        self._catalog = catalog
        self._controller = controller
        self._profiles: list[Profile] = []
        self._balances: dict[str, int] = {}
        # (profile id, currency) -> minor units from which a team's policy holds a payout.
        self._approval_thresholds: dict[tuple[str, str], int] = {}
        self._touched: set[str] = set()
        self._errors: dict[str, str] = {}
        # (merchant_id, site_id, request_id) -> what happened to it, for ids used this session.
        self._used_ids: dict[tuple[str, int, str], SendCode] = {}
        self._dialog: ConfirmDialog | None = None
        self._syncing = False
        self._shown_profile: Profile | None = None  # whose form this is, to notice a switch
        # Further checks (a saved card recipient's last four): (method, fields) -> errors.
        self._extra_checks: list[Callable[[str, Mapping[str, str | bool]], dict[str, str]]] = []

        self.environment_banner = style.environment_banner("sandbox", self)
        self.banner = ResultBanner(self)
        self.status_follower = StatusFollower(self.banner, lambda: controller.history, self)

        self.profile_combo = QComboBox()
        self.profile_combo.setObjectName("profileCombo")
        self.profile_combo.setAccessibleName("Profile")
        self.profile_combo.setToolTip("The merchant site the payout is sent from, e.g. Acme live")
        self.profile_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)

        self.currency_combo = QComboBox()
        self.currency_combo.setObjectName("currencyCombo")
        self.currency_combo.setAccessibleName("Currency")
        self.currency_combo.setToolTip("The payout currency, e.g. RUB")
        for code, cur in currencies().items():
            self.currency_combo.addItem(f"{code} · {cur.name}", code)

        self.method_combo = QComboBox()
        self.method_combo.setObjectName("methodCombo")
        self.method_combo.setAccessibleName("Payout method")
        self.method_combo.setToolTip("How the recipient is paid, e.g. Bank card (card)")
        for method in catalog.methods:
            extra = "" if method.documented else ", extension"
            self.method_combo.addItem(f"{method.label} ({method.wire}{extra})", method.wire)

        self.site_login_edit = QLineEdit()
        self.site_login_edit.setObjectName("siteLoginEdit")
        self.site_login_edit.setAccessibleName("Site login")
        self.site_login_edit.setPlaceholderText("user_login")
        self.site_login_edit.setToolTip(
            "The recipient's login on your site, as the gateway knows it. Example: user_login"
        )
        self.site_login_error = style.error_label()
        self.site_login_error.setObjectName("siteLoginError")

        self.amount_edit = AmountEdit()
        self.amount_edit.setObjectName("amountEdit")
        self.amount_edit.setAccessibleName("Amount in major units")
        self.amount_code = QLabel()
        self.amount_code.setMinimumWidth(40)
        self.amount_minor_label = style.muted_label()
        self.amount_minor_label.setObjectName("amountMinorLabel")
        self.amount_warning = QLabel()
        self.amount_warning.setObjectName("amountWarning")
        self.amount_warning.setWordWrap(True)
        self.amount_warning.setStyleSheet(f"QLabel {{ color: {style.WARNING_FG}; }}")
        self.amount_warning.setVisible(False)
        self.amount_error = style.error_label()
        self.amount_error.setObjectName("amountError")

        self.request_id_edit = QLineEdit()
        self.request_id_edit.setObjectName("requestIdEdit")
        self.request_id_edit.setAccessibleName("Request id")
        self.request_id_edit.setToolTip(
            "Your unique id for this payout; the gateway echoes it. Never reuse one.\n"
            "Example: cd-20261128-7f3a9c2b1e"
        )
        self.new_id_button = QPushButton("New id")
        self.new_id_button.setObjectName("newRequestIdButton")
        self.new_id_button.setAccessibleName("Generate a new request id")
        self.new_id_button.setToolTip("Generate a fresh, unique request id")
        self.request_id_error = style.error_label()
        self.request_id_error.setObjectName("requestIdError")

        # A method's panel is built when the method is first chosen (``panel_for``): only the
        # current one is needed to show the form, and each costs a few milliseconds.
        self.panels: dict[str, MethodPanel] = {}
        self.stack = ResizableStackedWidget()
        self.stack.setObjectName("methodStack")
        self.recipient_box = QGroupBox("Recipient details")
        box_layout = QVBoxLayout(self.recipient_box)
        box_layout.addWidget(self.stack)

        self.progress = QProgressBar()
        self.progress.setObjectName("sendProgress")
        self.progress.setRange(0, 0)
        self.progress.setTextVisible(False)
        self.progress.setMaximumHeight(8)
        self.progress_label = QLabel()
        self.progress_label.setObjectName("sendProgressLabel")
        self.progress_label.setTextFormat(Qt.TextFormat.PlainText)
        self.progress.setVisible(False)
        self.progress_label.setVisible(False)
        self._ticker = QTimer(self)
        self._ticker.setInterval(1000)
        self._ticker.timeout.connect(self._update_progress)

        self.hint_label = style.muted_label()
        self.hint_label.setObjectName("sendHint")
        self.hint_label.setWordWrap(True)
        self.send_button = QPushButton("Send…")
        self.send_button.setObjectName("sendButton")
        self.send_button.setAccessibleName("Send payout")
        self.send_button.setToolTip("Review and send this payout (Ctrl+Return)")
        self.send_button.setDefault(True)
        self.send_button.setMinimumWidth(120)
        style.primary_button(self.send_button)
        # Messages appear in room kept for them: the form never jumps under the pointer.
        for label in (self.site_login_error, self.request_id_error, self.progress_label):
            style.reserve_lines(label)
        style.reserve_lines(self.hint_label, 2)
        self.hint_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        policy = self.progress.sizePolicy()
        policy.setRetainSizeWhenHidden(True)
        self.progress.setSizePolicy(policy)

        self._layout_widgets()
        self._connect()
        shortcut = QShortcut(QKeySequence("Ctrl+Return"), self)
        shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        shortcut.activated.connect(self.request_send)
        keypad = QShortcut(QKeySequence("Ctrl+Enter"), self)
        keypad.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        keypad.activated.connect(self.request_send)

        self.request_id_edit.setText(new_request_id())
        default = self.currency_combo.findData(DEFAULT_CURRENCY)
        self.currency_combo.setCurrentIndex(max(default, 0))
        self._currency_changed()

    # -- building ---------------------------------------------------------------------------

    def _layout_widgets(self) -> None:
        form = QFormLayout()
        form.setLabelAlignment(style.FORM_LABEL_ALIGNMENT)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setVerticalSpacing(8)
        form.addRow(_label("&Profile:", self.profile_combo), self.profile_combo)
        form.addRow(_label("&Currency:", self.currency_combo), self.currency_combo)
        form.addRow(_label("&Method:", self.method_combo), self.method_combo)
        form.addRow(
            _label("Site &login *:", self.site_login_edit),
            self._stack_rows(self.site_login_edit, self.site_login_error),
        )
        amount_line = self._side_by_side(self.amount_edit, self.amount_code)
        # The minor units, or the error, and the balance warning share two lines kept free.
        amount_notes = self._stack_rows(
            self.amount_minor_label, self.amount_warning, self.amount_error
        )
        notes_box = amount_notes.layout()
        assert isinstance(notes_box, QVBoxLayout)  # _stack_rows stacks vertically
        notes_box.addStretch(1)
        self.amount_minor_label.ensurePolished()
        amount_notes.setMinimumHeight(2 * self.amount_minor_label.fontMetrics().lineSpacing() + 4)
        form.addRow(
            _label("&Amount *:", self.amount_edit), self._stack_rows(amount_line, amount_notes)
        )
        id_line = self._side_by_side(self.request_id_edit, self.new_id_button)
        form.addRow(
            _label("&Request id *:", self.request_id_edit),
            self._stack_rows(id_line, self.request_id_error),
        )

        send_row = QHBoxLayout()
        send_row.addWidget(self.hint_label, 1)
        send_row.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignTop)
        progress_row = QHBoxLayout()
        progress_row.addWidget(self.progress_label)
        progress_row.addWidget(self.progress, 1)

        layout = QVBoxLayout(self)
        layout.setSpacing(10)
        layout.addWidget(self.environment_banner)
        layout.addWidget(self.banner)
        layout.addLayout(form)
        layout.addWidget(self.recipient_box)
        layout.addLayout(progress_row)
        layout.addLayout(send_row)
        layout.addStretch(1)

    @staticmethod
    def _side_by_side(main: QWidget, beside: QWidget) -> QWidget:
        line = QWidget()
        row = QHBoxLayout(line)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(main, 1)
        row.addWidget(beside)
        return line

    @staticmethod
    def _stack_rows(*widgets: QWidget) -> QWidget:
        holder = QWidget()
        box = QVBoxLayout(holder)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(2)
        for widget in widgets:
            box.addWidget(widget)
        return holder

    def _connect(self) -> None:
        self.profile_combo.currentIndexChanged.connect(self._profile_changed)
        self.currency_combo.currentIndexChanged.connect(self._currency_changed)
        self.method_combo.currentIndexChanged.connect(self._method_changed)
        self.site_login_edit.textEdited.connect(lambda _: self._touch("site_login"))
        self.site_login_edit.textChanged.connect(self._revalidate)
        self.amount_edit.textEdited.connect(lambda _: self._touch("amount"))
        self.amount_edit.amountChanged.connect(self._revalidate)
        self.request_id_edit.textEdited.connect(lambda _: self._touch("request_id"))
        self.request_id_edit.textChanged.connect(self._revalidate)
        self.new_id_button.clicked.connect(self.new_request_id)
        self.send_button.clicked.connect(self.request_send)
        self._controller.started.connect(self._send_started)
        self._controller.finished.connect(self._send_finished)
        self._controller.submitted.connect(self._submitted)

    # -- public -----------------------------------------------------------------------------

    def set_profiles(self, profiles: list[Profile], select_id: str | None = None) -> None:
        """Offer ``profiles``; keep the current one selected unless ``select_id`` is given."""
        current = self.current_profile()
        keep = select_id or (current.id if current else None)
        self._profiles = list(profiles)
        self._syncing = True
        self.profile_combo.clear()
        for profile in self._profiles:
            tag = "LIVE" if profile.is_live else "sandbox"
            self.profile_combo.addItem(f"{profile.name} · {tag}", profile.id)
        index = self.profile_combo.findData(keep) if keep else -1
        self.profile_combo.setCurrentIndex(index if index >= 0 else (0 if profiles else -1))
        self._syncing = False
        self._profile_changed()

    def profiles(self) -> list[Profile]:
        """The profiles offered, in order."""
        return list(self._profiles)

    def current_profile(self) -> Profile | None:
        """The selected profile, or None when there is none."""
        index = self.profile_combo.currentIndex()
        if index < 0 or index >= len(self._profiles):
            return None
        return self._profiles[index]

    def select_profile(self, profile_id: str) -> None:
        """Select the profile with this id."""
        index = self.profile_combo.findData(profile_id)
        if index >= 0:
            self.profile_combo.setCurrentIndex(index)

    def set_currency(self, code: str) -> None:
        """Select the currency ``code``."""
        index = self.currency_combo.findData(code)
        if index < 0:
            raise ValueError(f"Unknown currency: {code!r}")
        self.currency_combo.setCurrentIndex(index)

    def set_method(self, wire: str) -> bool:
        """Select the method ``wire``; False when it cannot be chosen for this currency/profile."""
        index = self.method_combo.findData(wire)
        if index < 0 or not self._method_item_enabled(index):
            return False
        self.method_combo.setCurrentIndex(index)
        return True

    def currency(self) -> str:
        """The selected currency code."""
        return str(self.currency_combo.currentData())

    def method(self) -> str:
        """The selected method's wire name."""
        return str(self.method_combo.currentData())

    def panel(self) -> MethodPanel:
        """The method panel on show."""
        return self.panel_for(self.method())

    def panel_for(self, wire: str) -> MethodPanel:
        """The panel of the method ``wire``, built (for the current currency) on first use."""
        panel = self.panels.get(wire)
        if panel is None:
            panel = MethodPanel(self._catalog.method(wire), self._catalog)
            panel.set_currency(self.currency())
            self.panels[wire] = panel
            self.stack.addWidget(panel)
            panel.changed.connect(self._revalidate)
            panel.edited.connect(self._touch)
        return panel

    def field(self, wire: str) -> QLineEdit | QCheckBox:
        """The input of the current method's field ``wire``."""
        return self.panel().field_input(wire)

    def errors(self) -> dict[str, str]:
        """Every current problem, shown or not, keyed like ``validate_draft``."""
        return dict(self._errors)

    def error_text(self, key: str) -> str:
        """The message shown at ``key`` (a form key or a field's wire name), or ''."""
        labels = {
            "site_login": self.site_login_error,
            "amount": self.amount_error,
            "request_id": self.request_id_error,
        }
        if key in labels:
            return labels[key].text()
        return self.panel().error_text(key)

    def add_check(self, check: Callable[[str, Mapping[str, str | bool]], dict[str, str]]) -> None:
        """Check every draft with ``check(method, fields)`` too (its errors by field)."""
        self._extra_checks.append(check)
        self._revalidate()

    def revalidate(self) -> dict[str, str]:
        """Check the draft again now (after a change made outside the form's inputs)."""
        return self._revalidate()

    def set_balances(self, balances: dict[str, int]) -> None:
        """The available balances by currency (minor units), for the over-balance warning."""
        self._balances = dict(balances)
        self._update_amount_hints()

    def new_request_id(self) -> None:
        """Put a fresh request id in the form."""
        self.request_id_edit.setText(new_request_id())
        self._touched.discard("request_id")
        self._revalidate()

    def confirm_dialog(self) -> ConfirmDialog | None:
        """The confirm dialog while it is open."""
        return self._dialog

    def progress_text(self) -> str:
        """The "Sending… 12 s" text while a payout is in flight, else ''."""
        return self.progress_label.text() if self._controller.jobs() else ""

    def can_send(self) -> bool:
        """True when the draft is valid and the profile has nothing in flight."""
        profile = self.current_profile()
        return (
            profile is not None
            and not self._errors
            and self._dialog is None
            and not self._controller.is_sending(profile.id)
        )

    def request_send(self) -> ConfirmDialog | None:
        """Open the confirm dialog for the current draft (non-blocking); None if it cannot go.

        An invalid draft instead shows every field's message.
        """
        from cactus_desk.payouts.draft import PayoutDraft
        from cactus_desk.payouts.send import SendResult
        from cactus_desk.ui.payout.confirm_dialog import (
            ConfirmDetails,
            ConfirmDialog,
            EarlierPayout,
        )

        self._touched.update(self._all_keys())
        self._revalidate()
        profile = self.current_profile()
        if profile is None or not self.can_send():
            return None
        if self._controller.unavailable_reason:  # e.g. the team store cannot be reached
            self.banner.show_error(self._controller.unavailable_reason)
            return None
        draft = PayoutDraft(**asdict(self._draft(profile)))
        from cactus_desk.ui.off_thread import call_off_gui

        if getattr(self, "_preparing", False):
            return None  # a second click while the first is being prepared
        service = self._controller.service
        self._preparing = True
        try:
            # The duplicate lookup reads the history: SQL, or the network on a team store.
            prepared = call_off_gui(lambda: service.prepare(draft, profile))
        finally:
            self._preparing = False
        if isinstance(prepared, SendResult):  # INVALID (a bug: validated above) or no history
            self.banner.show_result(prepared)
            return None
        payout = prepared.payout
        masked = payout.masked_fields()
        method = self._catalog.method(payout.method)
        recipient = [
            (spec.label, self._shown_value(spec, masked[spec.wire]))
            for spec in self._catalog.fields_for(method, payout.currency)
            if spec.wire in masked
        ]
        cur = profile.currency(payout.currency)
        details = ConfirmDetails(
            profile_name=profile.name,
            environment=profile.environment,
            amount_major=prepared.amount_major,
            amount_minor=payout.amount_minor,
            currency=payout.currency,
            method_label=method.label,
            method_wire=method.wire,
            site_login=payout.site_login,
            request_id=payout.request_id,
            recipient=recipient,
            duplicates=[
                EarlierPayout(
                    datetime.fromtimestamp(r.created_at / 1000).strftime("%Y-%m-%d %H:%M"),
                    r.request_id,
                    state_text(r.state, r.gateway_status),
                )
                for r in prepared.repeats
            ],
            decimals=prepared.decimals,
            confirm_units=prepared.confirm_units,
            balance_warning=self._balance_warning(payout.amount_minor, cur),
        )
        dialog = ConfirmDialog(details, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        if self.needs_approval():
            dialog.submit_for_approval()
        confirmed = False

        def on_accepted() -> None:
            nonlocal confirmed
            if confirmed:  # a second accept of the same dialog must never send twice
                return
            confirmed = True
            if details.confirm_units:
                self.unitsConfirmed.emit(profile.id, cur.code, cur.exponent)
            self._confirmed(profile, payout)

        dialog.accepted.connect(on_accepted)
        dialog.finished.connect(lambda _result: self._dialog_closed(dialog))
        self._dialog = dialog
        self._refresh_send_button()
        dialog.open()
        return dialog

    # -- sending ----------------------------------------------------------------------------

    def _confirmed(self, profile: Profile, payout: Payout) -> None:
        # A new payout starts untouched: "required" shows again only after an edit or a try.
        self._touched.clear()
        self.send_button.setEnabled(False)
        refused = self._controller.send(payout, profile)
        if refused is not None:
            self.banner.show_result(refused)
        self._refresh_send_button()

    def _dialog_closed(self, dialog: ConfirmDialog) -> None:
        if self._dialog is dialog:
            self._dialog = None
        self._refresh_send_button()

    def _send_started(self, job: SendJob) -> None:
        self.status_follower.stop()
        self.banner.clear()
        self._update_progress()
        self._ticker.start()
        self._refresh_send_button()

    def _send_finished(self, job: SendJob, result: SendResult) -> None:
        if job.resend_of is not None:  # the window shows how a resend ended
            self._after_send()
            return
        key = (job.profile.merchant_id, job.profile.site_id, job.request_id)
        self.banner.show_result(result)
        if result.follow and result.record_id is not None:  # a callback may still settle it
            self.status_follower.follow(result.record_id)
        if result.id_used:
            if result.state is not None:
                self._used_ids[key] = result.code
            else:
                self._used_ids.setdefault(key, result.code)
        # A payout in doubt keeps its id on show: the person must read the warning first.
        if result.new_id_due and self.request_id_edit.text().strip() == job.request_id:
            self.new_request_id()
        self._after_send()

    def _submitted(self, job: SendJob, submitted: object) -> None:
        """Held by the team's policy: recorded as awaiting approval, nothing sent."""
        self.banner.show_awaiting(str(getattr(submitted, "message", "")))
        # The approval request holds this request id: the next payout needs a new one.
        if self.request_id_edit.text().strip() == job.request_id:
            self.new_request_id()
        self._after_send()

    def _after_send(self) -> None:
        if not self._controller.jobs():
            self._ticker.stop()
        self._update_progress()
        self._revalidate()

    def _update_progress(self) -> None:
        jobs = self._controller.jobs()
        if not jobs:
            self.progress.setVisible(False)
            self.progress_label.setVisible(False)
            self.progress_label.clear()
            return
        texts = [
            f"Sending {job.request_id} ({job.profile.name})… {job.elapsed()} s" for job in jobs
        ]
        self.progress_label.setText("; ".join(texts))
        self.progress.setVisible(True)
        self.progress_label.setVisible(True)

    # -- reacting to the person -----------------------------------------------------------

    def _profile_changed(self) -> None:
        if self._syncing:
            return
        profile = self.current_profile()
        previous, self._shown_profile = self._shown_profile, profile
        if (previous.id if previous else None) != (profile.id if profile else None):
            self._switched_profile(previous, profile)
        environment = profile.environment if profile else "sandbox"
        self.environment_banner.setText(style.environment_text(environment))
        self.environment_banner.setStyleSheet(style.environment_style(environment))
        self.environment_banner.setVisible(profile is not None)
        self._apply_amount_currency()
        self._update_method_items()
        self.profileChanged.emit(profile.id if profile else "")
        self._revalidate()

    def _amount_currency(self) -> Currency:
        """The payout currency with the profile's decimals (they may differ from the default)."""
        profile = self.current_profile()
        code = self.currency()
        return profile.currency(code) if profile else currencies()[code]

    def _apply_amount_currency(self) -> None:
        cur = self._amount_currency()
        self.amount_edit.set_currency(cur)
        source = "" if cur.documented else " (this profile's setting: Cactus does not document it)"
        self.amount_edit.setToolTip(
            f"The amount in {cur.code} major units, up to {cur.exponent} decimals{source}. "
            f"Example: {self.amount_edit.placeholderText()}"
        )

    def _switched_profile(self, previous: Profile | None, profile: Profile | None) -> None:
        # The banner spoke of a payout of the other profile: it must not be read as this one's.
        self.status_follower.stop()
        self.banner.clear()
        from_sandbox = previous is not None and not previous.is_live
        if from_sandbox and profile is not None and profile.is_live:
            # Test recipients must not ride along into real money.
            self.clear_recipient()

    def clear_recipient(self) -> None:
        """Empty the site login and every recipient field; their messages wait for an edit."""
        self.site_login_edit.clear()
        for panel in self.panels.values():  # the panels not built yet are empty
            panel.clear()
        fields = {spec.wire for method in self._catalog.methods for spec in method.fields}
        self._touched.difference_update({"site_login"} | fields)
        self._revalidate()

    def _currency_changed(self) -> None:
        code = self.currency()
        self._apply_amount_currency()
        self.amount_code.setText(code)
        for panel in self.panels.values():
            panel.set_currency(code)
        self._update_method_items()
        self._revalidate()

    def _method_changed(self) -> None:
        wire = self.method_combo.currentData()
        if wire is None:
            return
        panel = self.panel_for(wire)
        self.stack.setCurrentWidget(panel)
        self.recipient_box.setTitle(f"Recipient details · {panel.method.label}")
        self._update_tab_order()
        self._revalidate()

    def _touch(self, key: str) -> None:
        # Only a field the person has edited shows its message, so a fresh form is not all red.
        # Qt emits textEdited after textChanged: validate again so the message shows at once.
        if key not in self._touched:
            self._touched.add(key)
            self._revalidate()

    def _all_keys(self) -> set[str]:
        return set(FORM_KEYS) | {spec.wire for spec in self.panel().visible_fields()}

    def _method_item_enabled(self, index: int) -> bool:
        item = self.method_combo.model().item(index)  # type: ignore[attr-defined]
        return bool(item.isEnabled())

    def _why_unavailable(self, method: MethodSpec, currency: str) -> str | None:
        if currency not in method.currencies:
            return f"Not offered for {currency} (only {', '.join(method.currencies)})."
        profile = self.current_profile()
        if not method.documented and (profile is None or method.wire not in profile.extensions):
            name = profile.name if profile else "this profile"
            return (
                f"An extension method, not enabled for {name}; "
                "enable it in the profile (File › Profiles…)."
            )
        return None

    def _update_method_items(self) -> None:
        currency = self.currency()
        model = self.method_combo.model()
        first_ok = -1
        for index, method in enumerate(self._catalog.methods):
            why = self._why_unavailable(method, currency)
            item = model.item(index)  # type: ignore[attr-defined]
            item.setEnabled(why is None)
            tip = why or f"{method.label}: sent as method “{method.wire}”."
            self.method_combo.setItemData(index, tip, Qt.ItemDataRole.ToolTipRole)
            if why is None and first_ok < 0:
                first_ok = index
        current = self.method_combo.currentIndex()
        if current < 0 or not self._method_item_enabled(current):
            self.method_combo.setCurrentIndex(first_ok)
        self._method_changed()

    def _update_tab_order(self) -> None:
        chain: list[QWidget] = [
            self.profile_combo,
            self.currency_combo,
            self.method_combo,
            self.site_login_edit,
            self.amount_edit,
            self.request_id_edit,
            self.new_id_button,
            *self.panel().inputs(),
            self.send_button,
        ]
        for first, second in itertools.pairwise(chain):
            QWidget.setTabOrder(first, second)

    # -- validation -------------------------------------------------------------------------

    def _draft(self, profile: Profile) -> _Draft:
        return _Draft(
            profile_id=profile.id,
            site_login=self.site_login_edit.text(),
            currency=self.currency(),
            method=str(self.method_combo.currentData() or ""),
            amount_text=self.amount_edit.text(),
            fields=self.panel().values(),
            request_id=self.request_id_edit.text(),
        )

    def _revalidate(self, *_args: object) -> dict[str, str]:
        profile = self.current_profile()
        if profile is None:
            errors = {"profile": "Add a profile first (File › Profiles…)."}
        else:
            errors = validate_draft(
                self._draft(profile), extensions=profile.extensions, decimals=profile.decimals
            )
            used = self._used_ids.get(
                (profile.merchant_id, profile.site_id, self.request_id_edit.text().strip())
            )
            if used is not None and "request_id" not in errors:
                errors["request_id"] = self._used_message(used)
            for check in self._extra_checks:
                for key, message in check(self.method(), self.panel().values()).items():
                    errors.setdefault(key, message)
        self._errors = errors
        shown = {key: msg for key, msg in errors.items() if key in self._touched}
        if "request_id" in errors and self.request_id_edit.text().strip():
            shown["request_id"] = errors["request_id"]  # a used id is shown at once
        style.show_field_error(self.site_login_edit, self.site_login_error, shown.get("site_login"))
        style.show_field_error(self.amount_edit, self.amount_error, shown.get("amount"))
        style.show_field_error(self.request_id_edit, self.request_id_error, shown.get("request_id"))
        self.panel().set_errors(shown)
        self._update_amount_hints()
        self._refresh_send_button()
        return errors

    @staticmethod
    def _used_message(code: SendCode) -> str:
        from cactus_desk.payouts.send import SendCode

        if code is SendCode.UNKNOWN:
            return (
                "This request id was just sent and its outcome is unknown. Do not send it again; "
                "press New id only for a different payout."
            )
        if code is SendCode.REFUSED_UNVERIFIED:
            return (
                "This request id was just sent and the gateway's refusal could not be verified. "
                "Do not send it again; press New id only for a different payout."
            )
        # How a request id already used ended, in the words of the message refusing it again.
        words = {
            SendCode.ACCEPTED: "accepted",
            SendCode.REJECTED: "rejected",
            SendCode.NOT_SENT: "not sent",
        }
        what = words.get(code, "used before")
        return f"This request id was already used ({what}). Press New id for a new payout."

    def _update_amount_hints(self) -> None:
        cur = self._amount_currency()
        try:
            minor = parse_amount(self.amount_edit.text(), cur)
        except AmountError:
            minor = None
        if minor is None:
            self.amount_minor_label.setText("")
            self.amount_minor_label.setVisible(False)
            self.amount_warning.setVisible(False)
            return
        unit = minor_unit_name(cur.code, cur.exponent)
        places = "" if cur.documented else f" ({cur.code} with {cur.exponent} decimals)"
        self.amount_minor_label.setText(
            f"= {minor} minor units" + (f" ({unit})" if unit else "") + f" will be sent{places}"
        )
        self.amount_minor_label.setVisible(True)
        warning = self._balance_warning(minor, cur)
        self.amount_warning.setText(warning)
        self.amount_warning.setVisible(bool(warning))

    def _balance_warning(self, minor: int, cur: Currency) -> str:
        """The over-balance warning for ``minor`` units of ``cur``, or '' when it fits."""
        available = self._balances.get(cur.code)
        if available is None or minor <= available:
            return ""
        return (
            f"Above the available balance ({format_major(available, cur)} {cur.code}); "
            "the gateway may refuse it."
        )

    def set_approval_thresholds(self, thresholds: dict[tuple[str, str], int]) -> None:
        """A team history's policies, read on a worker: (profile id, currency) -> the minor
        units from which a payout is submitted for approval instead of sent."""
        self._approval_thresholds = dict(thresholds)
        self._refresh_send_button()

    def needs_approval(self) -> bool:
        """True when the payout as typed is held for approval by the team's policy."""
        profile = self.current_profile()
        if profile is None or not self._approval_thresholds:
            return False
        cur = self._amount_currency()
        threshold = self._approval_thresholds.get((profile.id, cur.code))
        try:
            return threshold is not None and parse_amount(self.amount_edit.text(), cur) >= threshold
        except AmountError:
            return False

    def _refresh_send_button(self) -> None:
        ready = self.can_send()
        self.send_button.setEnabled(ready)
        held = self.needs_approval()
        self.send_button.setText("Submit for approval…" if held else "Send…")
        profile = self.current_profile()
        if profile is not None and self._controller.is_sending(profile.id):
            hint = f"A payout for {profile.name} is being sent; wait for its answer."
        elif self._errors:
            names = [_KEY_LABELS.get(key) or self._field_label(key) for key in self._errors]
            hint = "To send, check: " + ", ".join(dict.fromkeys(names)) + "."
        else:
            hint = "Ready: Send opens a summary to confirm (Ctrl+Return)."
            if held:
                hint = "Above the team's approval threshold: it is submitted for approval."
        self.hint_label.setText(hint)

    def _field_label(self, wire: str) -> str:
        try:
            return self.panel().method.field(wire).label
        except KeyError:
            return wire

    @staticmethod
    def _shown_value(spec: FieldSpec, value: str) -> str:
        # Only a flag reads as Yes/No; a text field that says "true" is shown as sent.
        if spec.kind != "bool":
            return value
        return {"true": "Yes", "false": "No"}.get(value, value)
