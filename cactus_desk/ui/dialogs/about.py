"""Help > About: what this is, which version, what it runs on, and its license."""

from __future__ import annotations

import platform

import PySide6
from PySide6.QtCore import QRectF, QSize, Qt, qVersion
from PySide6.QtGui import QGuiApplication, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from cactus_desk import APP_NAME, __version__
from cactus_desk.resources import resource_path

LICENSE = "MIT"
DESCRIPTION = (
    "A desktop payout console for the Cactus payment gateway: send one-off payouts and "
    "review what was sent."
)
ICON_NAME = "icons/cactus-desk.svg"
ICON_SIZE = 96


def version_details() -> dict[str, str]:
    """The versions a support request needs, as label -> value."""
    return {
        "Version": __version__,
        "Qt": qVersion(),
        "PySide6": PySide6.__version__,
        "Python": platform.python_version(),
        "System": platform.platform(terse=True),
        "License": LICENSE,
    }


def details_text() -> str:
    """The About facts as plain text, one per line (what "Copy details" copies)."""
    lines = [APP_NAME]
    lines += [f"{label}: {value}" for label, value in version_details().items()]
    return "\n".join(lines)


def icon_pixmap(size: int, device_pixel_ratio: float = 1.0) -> QPixmap:
    """The app icon drawn from its SVG at ``size`` logical pixels (sharp on HiDPI screens)."""
    side = max(1, round(size * device_pixel_ratio))
    pixmap = QPixmap(QSize(side, side))
    pixmap.fill(Qt.GlobalColor.transparent)
    try:
        renderer = QSvgRenderer(str(resource_path(ICON_NAME)))
    except FileNotFoundError:
        return pixmap
    if renderer.isValid():
        painter = QPainter(pixmap)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter, QRectF(0, 0, side, side))
        painter.end()
    pixmap.setDevicePixelRatio(device_pixel_ratio)
    return pixmap


class AboutDialog(QDialog):
    """Name, version, Qt / PySide6 / Python versions, the icon, a description and the license."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"About {APP_NAME}")
        self.setObjectName("aboutDialog")

        self._icon = QLabel(self)
        self._icon.setObjectName("aboutIcon")
        self._icon.setPixmap(icon_pixmap(ICON_SIZE, self.devicePixelRatioF()))
        self._icon.setFixedSize(ICON_SIZE, ICON_SIZE)
        self._icon.setAlignment(Qt.AlignmentFlag.AlignTop)

        name = QLabel(APP_NAME, self)
        name.setObjectName("aboutName")
        font = name.font()
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        name.setFont(font)

        description = QLabel(DESCRIPTION, self)
        description.setObjectName("aboutDescription")
        description.setWordWrap(True)

        facts = QFormLayout()
        facts.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self._values: dict[str, QLabel] = {}
        for label, value in version_details().items():
            field = QLabel(value, self)
            field.setObjectName(f"about{label}")
            field.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            facts.addRow(f"{label}:", field)
            self._values[label] = field

        text = QVBoxLayout()
        text.addWidget(name)
        text.addWidget(description)
        text.addLayout(facts)
        text.addStretch(1)

        top = QHBoxLayout()
        top.addWidget(self._icon, 0, Qt.AlignmentFlag.AlignTop)
        top.addSpacing(12)
        top.addLayout(text, 1)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self._copy = QPushButton("&Copy details", self)
        self._copy.setObjectName("aboutCopyButton")
        self._copy.setToolTip("Copy the versions above, e.g. for a support request")
        buttons.addButton(self._copy, QDialogButtonBox.ButtonRole.ActionRole)
        self._copy.clicked.connect(self.copy_details)
        buttons.rejected.connect(self.reject)
        self._buttons = buttons

        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(buttons)
        self.setMinimumWidth(440)

    def value(self, label: str) -> str:
        """The text shown for one fact, e.g. ``value("Qt")``."""
        return self._values[label].text()

    def icon_label(self) -> QLabel:
        """The label that shows the app icon."""
        return self._icon

    def close_button(self) -> QPushButton:
        """The Close button."""
        return self._buttons.button(QDialogButtonBox.StandardButton.Close)

    def copy_button(self) -> QPushButton:
        """The "Copy details" button."""
        return self._copy

    def copy_details(self) -> None:
        """Put the details on the clipboard."""
        QGuiApplication.clipboard().setText(details_text())
