"""The profile manager: the list of profiles with Add, Edit and Remove."""

from __future__ import annotations

import logging

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from cactus_desk.profiles import (
    Profile,
    ProfileNotFoundError,
    ProfileStore,
    ProfileStoreError,
)
from cactus_desk.secrets import (
    KeyringError,
    NoKeyringError,
    SecretStore,
    keyring_usable,
)
from cactus_desk.ui import style
from cactus_desk.ui.profiles.editor import SALT_CHECK_CHANNEL, SALT_FLAGS, ProfileDialog, badge
from cactus_desk.ui.profiles.off_thread import profile_call
from cactus_desk.ui.workers import Runner

log = logging.getLogger(__name__)


class ProfileManagerDialog(QDialog):
    """The list of profiles with Add, Edit and Remove; emits ``profilesChanged()``."""

    profilesChanged = Signal()

    def __init__(
        self, profiles: ProfileStore, secrets: SecretStore, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._profiles = profiles
        self._secrets = secrets
        self._editor: ProfileDialog | None = None
        self._confirm: QMessageBox | None = None
        # Parented to the manager: if it closes first, the deletion still runs; only its
        # report, which has nowhere to go, is dropped.
        self._salt_runner = Runner(self)
        self._check_runner = Runner(self)  # asks the keyring for the LIVE profiles' salts
        self._salt_flags: dict[str, QLabel] = {}
        self.setObjectName("profileManagerDialog")
        self.setWindowTitle("Gateway profiles")
        self.setMinimumSize(560, 340)

        self.profile_list = QListWidget(self)
        self.profile_list.setObjectName("profileList")
        self.profile_list.setAccessibleName("Profiles")
        self.profile_list.setSpacing(2)
        self.profile_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.profile_list.currentRowChanged.connect(self._update_buttons)
        self.profile_list.itemDoubleClicked.connect(lambda _item: self.edit_selected())

        self.add_button = QPushButton("&Add…", self)
        self.add_button.setObjectName("profileAddButton")
        self.add_button.clicked.connect(self.add_profile)
        self.edit_button = QPushButton("&Edit…", self)
        self.edit_button.setObjectName("profileEditButton")
        self.edit_button.clicked.connect(self.edit_selected)
        self.remove_button = QPushButton("&Remove…", self)
        self.remove_button.setObjectName("profileRemoveButton")
        self.remove_button.clicked.connect(self.remove_selected)
        self.error_label = style.error_label(self)
        self.error_label.setObjectName("profileManagerError")

        side = QVBoxLayout()
        side.addWidget(self.add_button)
        side.addWidget(self.edit_button)
        side.addWidget(self.remove_button)
        side.addStretch(1)
        body = QHBoxLayout()
        body.addWidget(self.profile_list, 1)
        body.addLayout(side)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(body, 1)
        layout.addWidget(self.error_label)
        layout.addWidget(close)

        self.reload()
        style.flat_scroll_bars(self)

    @property
    def editor(self) -> ProfileDialog | None:
        """The add/edit dialog while it is open."""
        return self._editor

    @property
    def confirmation(self) -> QMessageBox | None:
        """The "remove?" question while it is open."""
        return self._confirm

    def reload(self, select_id: str | None = None) -> None:
        """Show the stored profiles again, selecting ``select_id`` (or keeping the selection)."""
        keep = select_id or self.selected_id()
        self.profile_list.clear()
        self._salt_flags.clear()
        try:
            profiles = profile_call(self._profiles, self._profiles.all)
        except ProfileStoreError as exc:
            self._show_error(str(exc))
            profiles = []
        for profile in profiles:
            item = QListWidgetItem(self.profile_list)
            item.setData(Qt.ItemDataRole.UserRole, profile.id)
            item.setData(Qt.ItemDataRole.AccessibleTextRole, _describe(profile))
            row = self._row_widget(profile)
            item.setSizeHint(row.sizeHint())
            self.profile_list.setItemWidget(item, row)
            if profile.id == keep:
                self.profile_list.setCurrentItem(item)
        if self.profile_list.currentRow() < 0 and self.profile_list.count():
            self.profile_list.setCurrentRow(0)
        if not profiles and not self.error_label.text():
            placeholder = QListWidgetItem("No profiles yet. Add one to start sending payouts.")
            placeholder.setFlags(Qt.ItemFlag.NoItemFlags)
            self.profile_list.addItem(placeholder)
        self._update_buttons()
        self._check_salts([profile.id for profile in profiles if profile.is_live])

    def _check_salts(self, profile_ids: list[str]) -> None:
        """Flag the LIVE profiles whose salt cannot be read, asking the keyring off this thread."""
        secrets = self._secrets

        def job() -> dict[str, str]:  # worker thread: the keyring may be slow or want unlocking
            usable = keyring_usable()
            problems: dict[str, str] = {}
            for profile_id in profile_ids:
                try:
                    if not secrets.has_salt(profile_id):
                        problems[profile_id] = "missing" if usable else "no-store"
                except NoKeyringError:
                    problems[profile_id] = "no-store"
                except KeyringError:
                    problems[profile_id] = "unreadable"
            return problems

        if not profile_ids:
            self._check_runner.invalidate(SALT_CHECK_CHANNEL)
            return
        self._check_runner.run(
            job, self._salts_checked, self._salt_check_failed, channel=SALT_CHECK_CHANNEL
        )

    def _salts_checked(self, problems: dict[str, str]) -> None:
        for profile_id, flag in self._salt_flags.items():
            problem = problems.get(profile_id)
            if problem is None:
                flag.setVisible(False)
                continue
            text, why = SALT_FLAGS[problem]
            flag.setText(text)
            flag.setToolTip(why)
            flag.setAccessibleName(f"{text}: {why}")
            flag.setVisible(True)
        for row in range(self.profile_list.count()):
            item = self.profile_list.item(row)
            problem = problems.get(str(item.data(Qt.ItemDataRole.UserRole)))
            if problem is not None:
                described = item.data(Qt.ItemDataRole.AccessibleTextRole)
                item.setData(
                    Qt.ItemDataRole.AccessibleTextRole, f"{described}, {SALT_FLAGS[problem][0]}"
                )

    def _salt_check_failed(self, error: BaseException) -> None:
        log.warning("the profiles' salts could not be checked: %s", type(error).__name__)

    def salt_flags(self) -> dict[str, str]:
        """The flags shown in the list, by profile id (LIVE profiles whose salt is missing)."""
        return {
            pid: flag.text() for pid, flag in self._salt_flags.items() if flag.isVisibleTo(self)
        }

    def salt_check_pending(self) -> bool:
        """True while the keyring is being asked for the LIVE profiles' salts."""
        return self._check_runner.busy(SALT_CHECK_CHANNEL)

    def _row_widget(self, profile: Profile) -> QWidget:
        row = QWidget(self.profile_list)
        line = QHBoxLayout(row)
        line.setContentsMargins(6, 4, 6, 4)
        line.setSpacing(10)
        tag = badge(profile.environment, row)
        tag.setFixedWidth(tag.fontMetrics().horizontalAdvance("SANDBOX") + 20)
        name = QLabel(profile.name, row)
        name.setTextFormat(Qt.TextFormat.PlainText)
        font = name.font()
        font.setBold(True)
        name.setFont(font)
        detail = style.muted_label(
            f"{profile.base_url} · merchant {profile.merchant_id} · site {profile.site_id}", row
        )
        detail.setToolTip(detail.text())
        # A long URL is cut at the list's edge rather than widening the list.
        for label in (name, detail):
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        text = QVBoxLayout()
        text.setSpacing(0)
        text.addWidget(name)
        text.addWidget(detail)
        line.addWidget(tag, 0, Qt.AlignmentFlag.AlignVCenter)
        line.addLayout(text, 1)
        if profile.is_live:
            flag = QLabel(row)
            flag.setObjectName("profileSaltFlag")
            flag.setStyleSheet(
                f"QLabel {{ color: white; background: {style.ERROR_FG}; font-weight: bold; "
                "padding: 2px 6px; border-radius: 3px; }"
            )
            flag.setVisible(False)  # until the keyring has answered
            line.addWidget(flag, 0, Qt.AlignmentFlag.AlignVCenter)
            self._salt_flags[profile.id] = flag
        return row

    def selected_id(self) -> str | None:
        """The id of the selected profile."""
        item = self.profile_list.currentItem()
        value = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        return str(value) if value else None

    def select(self, profile_id: str) -> None:
        """Select the profile with ``profile_id``."""
        for row in range(self.profile_list.count()):
            if self.profile_list.item(row).data(Qt.ItemDataRole.UserRole) == profile_id:
                self.profile_list.setCurrentRow(row)
                return

    def _selected(self) -> Profile | None:
        profile_id = self.selected_id()
        if profile_id is None:
            return None
        try:
            return profile_call(self._profiles, lambda: self._profiles.get_by_id(profile_id))
        except (ProfileNotFoundError, ProfileStoreError) as exc:
            self._show_error(str(exc))
            return None

    def _update_buttons(self) -> None:
        chosen = self.selected_id() is not None
        self.edit_button.setEnabled(chosen)
        self.remove_button.setEnabled(chosen)

    def _show_error(self, message: str) -> None:
        self.error_label.setText(message)
        self.error_label.setVisible(bool(message))

    def add_profile(self) -> ProfileDialog:
        """Open the "New profile" dialog."""
        return self._open_editor(None)

    def edit_selected(self) -> ProfileDialog | None:
        """Open the selected profile for editing."""
        profile = self._selected()
        return None if profile is None else self._open_editor(profile)

    def _open_editor(self, profile: Profile | None) -> ProfileDialog:
        self._show_error("")
        editor = ProfileDialog(self._profiles, self._secrets, self, profile)
        editor.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        editor.profileSaved.connect(self._saved)
        editor.finished.connect(lambda _result: self._forget_editor(editor))
        self._editor = editor
        editor.open()
        return editor

    def _forget_editor(self, editor: ProfileDialog) -> None:
        if self._editor is editor:
            self._editor = None

    def _saved(self, profile_id: str) -> None:
        self.reload(profile_id)
        self.profilesChanged.emit()

    def remove_selected(self) -> QMessageBox | None:
        """Ask whether to remove the selected profile; removes it (and its salt) on Yes."""
        profile = self._selected()
        if profile is None:
            return None
        kind = "LIVE" if profile.is_live else "sandbox"
        box = QMessageBox(
            QMessageBox.Icon.Warning if profile.is_live else QMessageBox.Icon.Question,
            "Remove profile",
            f"Remove the {kind} profile \u201c{profile.name}\u201d?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            self,
        )
        box.setObjectName("removeProfileConfirm")
        box.setInformativeText(
            "Its salt is deleted from the keyring too. Payouts already sent stay in the history."
        )
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda result: self._confirmed(profile, result))
        self._confirm = box
        box.open()
        return box

    def _confirmed(self, profile: Profile, result: int) -> None:
        self._confirm = None
        if result != QMessageBox.StandardButton.Yes:
            return
        try:
            profile_call(self._profiles, lambda: self._profiles.remove(profile.name))
        except (ProfileNotFoundError, ProfileStoreError) as exc:
            self._show_error(str(exc))
            return
        self._show_error("")
        self.reload()
        self.profilesChanged.emit()
        secrets, profile_id = self._secrets, profile.id

        def job() -> None:  # worker thread: the keyring may be slow or want unlocking
            try:
                secrets.delete_salt(profile_id)
            except (NoKeyringError, KeyringError) as exc:
                # Logged too: the manager may be closed before the answer comes.
                log.warning("a removed profile's salt could not be deleted: %s", exc)
                raise

        self._salt_runner.run(job, lambda _none: None, self._salt_not_deleted)

    def _salt_not_deleted(self, error: BaseException) -> None:
        self._show_error(f"The profile was removed, but its salt could not be deleted: {error}")

    def salt_work_pending(self) -> bool:
        """True while a removed profile's salt is still being deleted from the keyring."""
        return self._salt_runner.busy()


def _describe(profile: Profile) -> str:
    environment = "live" if profile.is_live else "sandbox"
    return f"{profile.name}, {environment} profile, merchant {profile.merchant_id}"
