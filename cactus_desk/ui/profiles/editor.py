"""The profile editor: one merchant profile's settings, its salt and a connection test."""

from __future__ import annotations

import contextlib
import logging

from pydantic import ValidationError
from PySide6.QtCore import QCoreApplication, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from cactus_desk.catalog import load_catalog
from cactus_desk.gateway.client import CactusClient, GatewayError
from cactus_desk.money import MAX_DECIMALS, currencies
from cactus_desk.profiles import (
    DuplicateProfileError,
    Profile,
    ProfileNotFoundError,
    ProfileStore,
    ProfileStoreError,
)
from cactus_desk.secrets import (
    KeyringError,
    NoKeyringError,
    SecretStore,
    backend_name,
    keyring_usable,
)
from cactus_desk.ui import style
from cactus_desk.ui.profiles.off_thread import profile_call
from cactus_desk.ui.workers import Runner

log = logging.getLogger(__name__)

TEST_CHANNEL = "test-connection"
KEYRING_CHANNEL = "keyring"
SALT_CHECK_CHANNEL = "salt-check"
# For the person at the desk; what an administrator needs is behind "Details…".
NO_KEYRING_TEXT = (
    "Your computer's password store isn't available, so the salt can't be saved. You can "
    "keep it until Cactus Desk quits, or ask your administrator to set the store up."
)
# A LIVE profile whose salt cannot be read cannot send: the Profiles list says so.
SALT_FLAGS = {
    "missing": (
        "No salt saved",
        "This LIVE profile has no salt in the password store, so its payouts can't be "
        "sent. Edit it and enter the salt from Cactus.",
    ),
    "no-store": (
        "Salt not available",
        "Your computer's password store isn't available, so this LIVE profile's salt "
        "can't be read and its payouts can't be sent.",
    ),
    "unreadable": (
        "Salt unreadable",
        "The password store did not give this LIVE profile's salt (it may be locked). "
        "Unlock it and open Profiles again.",
    ),
}
TEST_READ_TIMEOUT = 30.0

ENVIRONMENTS = (("live", "Live (real money)"), ("sandbox", "Sandbox (test gateway)"))
_FIELDS = ("name", "base_url", "merchant_id", "site_id", "salt", "environment", "extensions")


class ConnectionTestError(RuntimeError):
    """The connection test could not start (no salt, bad CA bundle); the message is plain."""


def badge(environment: str, parent: QWidget | None = None) -> QLabel:
    """A small coloured tag: red "LIVE" or teal "SANDBOX"."""
    live = environment == "live"
    label = QLabel("LIVE" if live else "SANDBOX", parent)
    label.setObjectName("environmentBadge")
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    background = style.LIVE_BG if live else style.SANDBOX_BG
    label.setStyleSheet(
        f"QLabel {{ background: {background}; color: white; font-weight: bold; "
        "font-size: 8pt; padding: 2px 6px; border-radius: 3px; }"
    )
    label.setAccessibleName("Live profile" if live else "Sandbox profile")
    return label


def _error_message(item: dict[str, object]) -> str:
    return str(item["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _test_connection(
    base_url: str, merchant_id: str, site_id: int, ca_bundle: str | None, salt: str
) -> int:
    """Ask the balance endpoint; return how many balances came back. Worker thread."""
    try:
        client = CactusClient(base_url, read_timeout=TEST_READ_TIMEOUT, ca_bundle=ca_bundle)
    except ValueError as exc:
        raise ConnectionTestError(str(exc)) from None
    with client:
        return len(client.balance(merchant_id, site_id, salt).balances)


class ProfileDialog(QDialog):
    """Add a profile, or edit ``profile``. Open it with ``open()``; emits ``profileSaved(id)``.

    The salt field is never prefilled; when editing, leaving it empty keeps the stored salt.
    """

    profileSaved = Signal(str)

    def __init__(
        self,
        profiles: ProfileStore,
        secrets: SecretStore,
        parent: QWidget | None = None,
        profile: Profile | None = None,
    ) -> None:
        super().__init__(parent)
        self._profiles = profiles
        self._secrets = secrets
        self._original = profile
        self._runner_instance: Runner | None = None
        # None until the worker has asked the keyring: a Secret Service can be slow to answer
        # or hold the call while it asks to be unlocked, so no keyring call runs on this thread.
        self._keyring_ok: bool | None = None
        self._backend = ""
        self._saving = False
        self.setObjectName("profileDialog")
        self.setWindowTitle(f"Edit profile {profile.name}" if profile else "New profile")
        self.setModal(True)
        self.setMinimumWidth(560)

        self._banner = style.environment_banner("live", self)

        self.name_edit = QLineEdit(self)
        self.name_edit.setObjectName("profileNameEdit")
        self.name_edit.setPlaceholderText("e.g. Main desk")
        self.base_url_edit = QLineEdit(self)
        self.base_url_edit.setObjectName("profileBaseUrlEdit")
        self.base_url_edit.setPlaceholderText("https://cactusgino.com")
        self.merchant_edit = QLineEdit(self)
        self.merchant_edit.setObjectName("profileMerchantIdEdit")
        self.merchant_edit.setPlaceholderText("merchant_id from Cactus")
        self.site_edit = QLineEdit(self)
        self.site_edit.setObjectName("profileSiteIdEdit")
        self.site_edit.setPlaceholderText("e.g. 101")
        self.salt_edit = QLineEdit(self)
        self.salt_edit.setObjectName("profileSaltEdit")
        self.salt_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.salt_edit.setAccessibleName("Site salt")
        self.environment_combo = QComboBox(self)
        self.environment_combo.setObjectName("profileEnvironmentCombo")
        for value, label in ENVIRONMENTS:
            self.environment_combo.addItem(label, value)
        self.environment_combo.currentIndexChanged.connect(self._show_environment)

        self._extension_boxes: dict[str, QCheckBox] = {}
        extensions = QGroupBox("Extra payout methods (not in the gateway's documented list)", self)
        extensions.setObjectName("profileExtensionsGroup")
        extension_row = QHBoxLayout(extensions)
        for method in [m for m in load_catalog().methods if not m.documented]:
            box = QCheckBox(method.label, extensions)
            box.setObjectName(f"extension_{method.wire}")
            box.setToolTip(f"Offer {method.label} (wire name {method.wire!r}) in the payout form")
            extension_row.addWidget(box)
            self._extension_boxes[method.wire] = box
        extension_row.addStretch(1)

        self.decimal_spins: dict[str, QSpinBox] = {}
        decimals = self._decimals_box()

        self._errors = {name: style.error_label(self) for name in _FIELDS}
        for name, error_label in self._errors.items():
            error_label.setObjectName(f"profileError_{name}")

        self.keyring_label = QLabel(self)
        self.keyring_label.setObjectName("profileKeyringLabel")
        self.keyring_label.setWordWrap(True)
        self.keyring_label.setTextFormat(Qt.TextFormat.PlainText)
        # As wide as the fields: a short notice wrapped into a narrow column looks cramped.
        self.keyring_label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.keyring_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self._keyring_detail = ""  # the administrator's text, read by the keyring check
        self.keyring_details_button = QPushButton("Details…", self)
        self.keyring_details_button.setObjectName("profileKeyringDetailsButton")
        self.keyring_details_button.setToolTip("What an administrator needs to set it up")
        self.keyring_details_button.setVisible(False)
        self.keyring_details_button.clicked.connect(self.show_keyring_details)
        self.session_check = QCheckBox("Keep the salt for this session only", self)
        self.session_check.setObjectName("profileSessionOnlyCheck")
        self.session_check.setToolTip(
            "Hold the salt in memory until Cactus Desk quits; you enter it again next time"
        )
        self._show_keyring()

        self.test_button = QPushButton("Test connection", self)
        self.test_button.setObjectName("profileTestButton")
        self.test_button.setToolTip("Ask the gateway for the balance with these settings")
        self.test_button.clicked.connect(self.test_connection)
        self.test_result = QLabel(self)
        self.test_result.setObjectName("profileTestResult")
        self.test_result.setWordWrap(True)
        self.test_result.setTextFormat(Qt.TextFormat.PlainText)
        self.test_result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.form_error = style.error_label(self)
        self.form_error.setObjectName("profileFormError")

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.ExpandingFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        for label, name, widget in (
            ("&Name", "name", self.name_edit),
            ("Gateway &URL", "base_url", self.base_url_edit),
            ("&Merchant ID", "merchant_id", self.merchant_edit),
            ("&Site ID", "site_id", self.site_edit),
            ("S&alt", "salt", self.salt_edit),
            ("&Environment", "environment", self.environment_combo),
        ):
            if not widget.accessibleName():
                widget.setAccessibleName(label.replace("&", ""))
            row = self._with_error(widget, name)
            form.addRow(label, row)
            # The label's mnemonic must focus the field, not the box that holds its message.
            field_label = form.labelForField(row)
            assert isinstance(field_label, QLabel)  # addRow made it from the text
            field_label.setBuddy(widget)
        form.addRow("", self.keyring_label)
        session_row = QHBoxLayout()
        session_row.addWidget(self.session_check)
        session_row.addStretch(1)
        session_row.addWidget(self.keyring_details_button)
        form.addRow("", session_row)

        test_row = QHBoxLayout()
        test_row.addWidget(self.test_button, 0, Qt.AlignmentFlag.AlignTop)
        test_row.addWidget(self.test_result, 1)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.save_button.setObjectName("profileSaveButton")
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self._banner)
        layout.addLayout(form)
        layout.addWidget(extensions)
        layout.addWidget(self._errors["extensions"])
        layout.addWidget(decimals)
        layout.addLayout(test_row)
        layout.addWidget(self.form_error)
        layout.addStretch(1)
        layout.addWidget(self.buttons)

        self._fill(profile)
        self._show_environment()
        self._check_keyring(profile)

    # -- building -------------------------------------------------------------------------

    def _with_error(self, widget: QWidget, name: str) -> QWidget:
        box = QWidget(self)
        column = QVBoxLayout(box)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        column.addWidget(widget)
        column.addWidget(self._errors[name])
        return box

    def _decimals_box(self) -> QGroupBox:
        box = QGroupBox("Decimals per currency (minor units on the wire)", self)
        box.setObjectName("profileDecimalsGroup")
        grid = QGridLayout(box)
        columns = 4
        for index, (code, cur) in enumerate(currencies().items()):
            spin = QSpinBox(box)
            spin.setObjectName(f"decimals_{code}")
            spin.setRange(0, MAX_DECIMALS)
            spin.setValue(cur.exponent)
            spin.setAccessibleName(f"Decimals of {code}")
            usual = f"{cur.exponent} unless Cactus told you otherwise"
            if not cur.documented:
                usual = f"Cactus does not document it; {cur.exponent} is a guess: ask Cactus"
            spin.setToolTip(
                f"How many decimals {code} has on the wire: 1.00 {code} is sent as "
                f"1 followed by that many zeros. Usual: {usual}."
            )
            label = QLabel(f"{code}{'' if cur.documented else ' *'}", box)
            label.setBuddy(spin)
            row, column = divmod(index, columns)
            grid.addWidget(label, row, column * 2, Qt.AlignmentFlag.AlignRight)
            grid.addWidget(spin, row, column * 2 + 1)
            self.decimal_spins[code] = spin
        note = style.muted_label(
            "* Not documented by Cactus: the first LIVE payout in it asks you to confirm "
            "the integer that is sent.",
            box,
        )
        note.setWordWrap(True)
        grid.addWidget(note, grid.rowCount(), 0, 1, columns * 2)
        return box

    def decimals(self) -> dict[str, int]:
        """The decimals set in the dialog where they differ from currencies.json."""
        known = currencies()
        return {
            code: spin.value()
            for code, spin in self.decimal_spins.items()
            if spin.value() != known[code].exponent
        }

    def _fill(self, profile: Profile | None) -> None:
        if profile is None:
            self.salt_edit.setPlaceholderText("The site salt from Cactus")
            return
        self.name_edit.setText(profile.name)
        self.base_url_edit.setText(profile.base_url)
        self.merchant_edit.setText(profile.merchant_id)
        self.site_edit.setText(str(profile.site_id))
        self.environment_combo.setCurrentIndex(self.environment_combo.findData(profile.environment))
        for wire, box in self._extension_boxes.items():
            box.setChecked(wire in profile.extensions)
        for code, spin in self.decimal_spins.items():
            spin.setValue(profile.currency(code).exponent)

    def _check_keyring(self, profile: Profile | None) -> None:
        secrets, profile_id = self._secrets, None if profile is None else profile.id

        def job() -> tuple[bool, str, bool, str]:  # worker thread
            stored = False
            if profile_id is not None:
                try:
                    stored = secrets.has_salt(profile_id)
                except (NoKeyringError, KeyringError):
                    stored = False
            usable = keyring_usable()
            return usable, backend_name(), stored, "" if usable else str(NoKeyringError())

        self._update_buttons()
        self._runner.run(job, self._keyring_checked, self._keyring_failed, channel=KEYRING_CHANNEL)

    def _keyring_checked(self, answer: tuple[bool, str, bool, str]) -> None:
        self._keyring_ok, self._backend, stored, self._keyring_detail = answer
        if self._original is not None:
            self.salt_edit.setPlaceholderText(
                "Leave empty to keep the stored salt" if stored else "No salt stored yet: enter it"
            )
        self._show_keyring()
        self._update_buttons()
        # Once the notice has its width (the next pass of the event loop), make room for it.
        QTimer.singleShot(0, self, self._fit_messages)

    def _keyring_failed(self, error: BaseException) -> None:
        log.warning("the keyring check failed: %s", type(error).__name__)
        detail = f"Asking the keyring whether it can keep a salt failed ({type(error).__name__})."
        self._keyring_checked((False, "unknown", False, detail))

    def keyring_checked(self) -> bool:
        """True once the keyring has answered whether it can keep the salt."""
        return self._keyring_ok is not None

    def _update_buttons(self) -> None:
        self.save_button.setEnabled(self.keyring_checked() and not self._saving)
        self.buttons.button(QDialogButtonBox.StandardButton.Cancel).setEnabled(not self._saving)

    def _show_keyring(self) -> None:
        if self._keyring_ok is None:
            self.keyring_label.setText("Checking the keyring…")
            self.keyring_label.setStyleSheet(f"QLabel {{ color: {style.MUTED_FG}; }}")
            self.session_check.setVisible(False)
            return
        if self._keyring_ok:
            self.keyring_label.setText(f"Salts are kept in: {self._backend}")
            self.keyring_label.setStyleSheet(f"QLabel {{ color: {style.MUTED_FG}; }}")
            self.session_check.setVisible(False)
            return
        self.keyring_label.setText(NO_KEYRING_TEXT)
        self.keyring_label.setStyleSheet(f"QLabel {{ color: {style.WARNING_FG}; }}")
        self.keyring_details_button.setVisible(True)
        self.session_check.setVisible(True)

    def show_keyring_details(self) -> QMessageBox:
        """The administrator's side of "no password store": the backend and the fix."""
        box = QMessageBox(
            QMessageBox.Icon.Information,
            "Password store",
            "For your administrator: Cactus Desk keeps salts in the operating system's "
            "keyring, and none it can use was found.",
            QMessageBox.StandardButton.Close,
            self,
        )
        box.setObjectName("keyringDetailsBox")
        box.setInformativeText(self._keyring_detail)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        return box

    def _show_environment(self) -> None:
        environment = self.environment()
        self._banner.setText(style.environment_text(environment))
        self._banner.setStyleSheet(style.environment_style(environment))

    # -- reading the form -----------------------------------------------------------------

    def environment(self) -> str:
        """``"live"`` or ``"sandbox"``, as chosen."""
        return str(self.environment_combo.currentData())

    def errors(self) -> dict[str, str]:
        """The messages shown at the fields, by field name."""
        return {name: label.text() for name, label in self._errors.items() if label.text()}

    def _set_error(self, name: str, message: str | None) -> None:
        widget = {
            "name": self.name_edit,
            "base_url": self.base_url_edit,
            "merchant_id": self.merchant_edit,
            "site_id": self.site_edit,
            "salt": self.salt_edit,
            "environment": self.environment_combo,
        }.get(name)
        label = self._errors[name]
        if widget is None:
            label.setText(message or "")
            label.setVisible(bool(message))
        else:
            style.show_field_error(widget, label, message)
        if message:
            self._fit_messages()

    def _clear_errors(self) -> None:
        for name in _FIELDS:
            self._set_error(name, None)
        self.form_error.setVisible(False)
        self.form_error.setText("")

    def _show_form_error(self, message: str) -> None:
        self.form_error.setText(message)
        self.form_error.setVisible(True)
        self._fit_messages()

    def _read_profile(self) -> Profile | None:
        """The profile the fields describe, or None after showing each field's error."""
        problems: dict[str, str] = {}
        site_text = self.site_edit.text().strip()
        site_id: int | None = None
        if not site_text:
            problems["site_id"] = "Enter the site ID (a whole number from Cactus)"
        elif not site_text.isascii() or not site_text.isdigit():
            problems["site_id"] = "The site ID is a whole number, e.g. 101"
        else:
            site_id = int(site_text)
        values: dict[str, object] = {
            "name": self.name_edit.text(),
            "base_url": self.base_url_edit.text(),
            "merchant_id": self.merchant_edit.text(),
            "site_id": site_id if site_id is not None else 1,
            "environment": self.environment(),
            "extensions": [wire for wire, box in self._extension_boxes.items() if box.isChecked()],
            "decimals": self.decimals(),
        }
        if self._original is not None:
            values["id"] = self._original.id
            values["ca_bundle"] = self._original.ca_bundle
            values["read_timeout"] = self._original.read_timeout
            values["units_confirmed"] = self._original.units_confirmed
            values["version"] = self._original.version  # a stale copy is refused, not saved
        profile: Profile | None = None
        try:
            profile = Profile.model_validate(values)
        except ValidationError as exc:
            for item in exc.errors(include_url=False):
                field = str(item["loc"][0]) if item["loc"] else ""
                field = field if field in self._errors else "name"
                if field == "site_id" and "greater than" in str(item["msg"]):
                    problems.setdefault(field, "The site ID must be 1 or more")
                else:
                    problems.setdefault(field, _error_message(dict(item)))
        for name, message in problems.items():
            self._set_error(name, message)
        return None if problems else profile

    def _fit_messages(self) -> None:
        # Grow with the field messages instead of squeezing the rows into each other.
        layout = self.layout()
        assert layout is not None  # set in __init__
        layout.activate()
        needed = layout.totalHeightForWidth(self.width())
        if needed > self.height():
            self.resize(self.width(), needed)

    # -- saving ---------------------------------------------------------------------------

    def save(self) -> None:
        """Validate and store the profile, then the salt (if one was entered) off this thread.

        Field problems show at once; ``profileSaved`` is emitted, and the dialog closes, when
        the keyring has taken the salt.
        """
        if not self.keyring_checked() or self._saving:
            return
        self._clear_errors()
        profile = self._read_profile()
        salt = self.salt_edit.text()
        salt_problem = self._salt_problem(salt, profile)
        if salt_problem:
            self._set_error("salt", salt_problem)
        if profile is None or salt_problem:
            return
        adding = self._original is None
        try:
            store, draft = self._profiles, profile
            save = store.add if adding else store.update
            profile = profile_call(store, lambda: save(draft))  # the network on a team store
        except DuplicateProfileError as exc:
            self._set_error("name", str(exc))
            return
        except (ProfileStoreError, ProfileNotFoundError) as exc:
            self._show_form_error(str(exc))
            return
        if not salt:
            self._saved(profile)
        elif not self._keyring_ok:
            self._secrets.remember_for_session(profile.id, salt)  # memory only: instant
            self._saved(profile)
        else:
            self._store_salt(profile, salt, adding=adding)

    def _store_salt(self, profile: Profile, salt: str, *, adding: bool) -> None:
        secrets = self._secrets
        self._saving = True
        self._update_buttons()
        self.test_button.setEnabled(False)
        self._show_test("Saving the salt in the keyring…", ok=None)
        self._runner.run(
            lambda: secrets.set_salt(profile.id, salt),
            lambda _none: self._salt_stored(profile),
            lambda error: self._salt_refused(profile, error, adding=adding),
        )

    def _salt_stored(self, profile: Profile) -> None:
        self._saving = False
        self._update_buttons()
        self.test_button.setEnabled(True)
        self._show_test("", ok=None)
        self._saved(profile)

    def _salt_refused(self, profile: Profile, error: BaseException, *, adding: bool) -> None:
        self._saving = False
        self._update_buttons()
        self.test_button.setEnabled(True)
        self._show_test("", ok=None)
        if isinstance(error, NoKeyringError | KeyringError | ValueError):
            reason = str(error)
        else:
            reason = f"unexpected error ({type(error).__name__})"
        if adding:
            with contextlib.suppress(ProfileNotFoundError, ProfileStoreError):
                store = self._profiles
                profile_call(store, lambda: store.remove(profile.name))
            self._set_error("salt", f"The profile was not saved: {reason}")
        else:
            self._original = profile
            self._set_error("salt", f"The profile was saved, but not the salt: {reason}")

    def _saved(self, profile: Profile) -> None:
        self.salt_edit.clear()
        self._original = profile
        self.profileSaved.emit(profile.id)
        self.accept()

    def _salt_problem(self, salt: str, profile: Profile | None) -> str | None:
        if salt != salt.strip():
            return "The salt starts or ends with a space; check that it was copied exactly"
        if not salt:
            return "Enter the site salt from Cactus" if self._original is None else None
        if any(ord(ch) < 32 for ch in salt):
            return "The salt must not contain control characters"
        if not self._keyring_ok and not self.session_check.isChecked():
            live = profile is not None and profile.is_live
            return (
                "The password store isn't available, and Cactus Desk never writes it to "
                "a file"
                + (" (least of all a live one)" if live else "")
                + ". Tick \u201cKeep the salt for this session only\u201d or ask your "
                "administrator."
            )
        return None

    def reject(self) -> None:
        """Cancel, except while the keyring is taking the salt: that answer must land here."""
        if not self._saving:
            super().reject()

    def done(self, result: int) -> None:
        """Close; a connection test still running is forgotten, and the salt field emptied."""
        runner, self._runner_instance = self._runner_instance, None
        if runner is not None:
            runner.invalidate(TEST_CHANNEL)
            runner.invalidate(KEYRING_CHANNEL)
            if not runner.busy():
                runner.deleteLater()
        self.salt_edit.clear()
        super().done(result)

    @property
    def _runner(self) -> Runner:
        # Parented to the application: a test may still be running when the dialog is deleted,
        # and its (dropped) result must have a live receiver.
        if self._runner_instance is None:
            self._runner_instance = Runner(QCoreApplication.instance())
        return self._runner_instance

    # -- connection test ------------------------------------------------------------------

    def test_connection(self) -> None:
        """Ask the gateway for the balance with the settings as typed, off the GUI thread."""
        self._clear_errors()
        profile = self._read_profile()
        if profile is None:
            self._show_test("Fix the fields marked in red first.", ok=False)
            return
        salt = self.salt_edit.text()
        if not salt and self._original is None:
            self._set_error("salt", "Enter the site salt to test the connection")
            self._show_test("Enter the salt first.", ok=False)
            return
        profile_id, secrets = profile.id, self._secrets
        args = (profile.base_url, profile.merchant_id, profile.site_id, profile.ca_bundle)

        def job() -> int:  # worker thread: the keyring and the network may both be slow
            key = salt or secrets.get_salt(profile_id)
            if not key:
                raise ConnectionTestError("no salt is stored for this profile; enter it")
            return _test_connection(*args, key)

        self.test_button.setEnabled(False)
        self._show_test(f"Connecting to {profile.base_url}…", ok=None)
        self._runner.run(job, self._test_passed, self._test_failed, channel=TEST_CHANNEL)

    def _test_passed(self, count: int) -> None:
        self.test_button.setEnabled(True)
        self._show_test(f"Connected: {count} balance{'' if count == 1 else 's'}", ok=True)

    def _test_failed(self, error: BaseException) -> None:
        self.test_button.setEnabled(True)
        if isinstance(error, GatewayError):
            message = error.message
        elif isinstance(error, ConnectionTestError | NoKeyringError | KeyringError):
            message = str(error)
        else:
            message = f"unexpected error ({type(error).__name__})"
        self._show_test(f"Connection failed: {message}", ok=False)

    def _show_test(self, text: str, *, ok: bool | None) -> None:
        self.test_result.setText(text)
        colour = {True: "#1e4620", False: style.ERROR_FG, None: style.MUTED_FG}[ok]
        self.test_result.setStyleSheet(f"QLabel {{ color: {colour}; }}")

    def test_busy(self) -> bool:
        """True while a connection test is running."""
        runner = self._runner_instance
        return runner is not None and runner.busy(TEST_CHANNEL)
