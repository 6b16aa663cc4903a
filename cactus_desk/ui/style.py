"""Colours for LIVE and SANDBOX, and small widget helpers shared by the screens."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QLineEdit, QPushButton, QWidget

LIVE_BG = "#b71c1c"
SANDBOX_BG = "#00695c"
ERROR_FG = "#c62828"
WARNING_FG = "#8a5a00"
MUTED_FG = "#5f6368"

ACCEPTED_BG, ACCEPTED_FG = "#e6f4ea", "#1e4620"
REJECTED_BG, REJECTED_FG = "#fdecea", "#611a15"
UNKNOWN_BG, UNKNOWN_FG = "#fff4e5", "#663c00"
PROGRESS_BG, PROGRESS_FG = "#e8f0fe", "#174ea6"
PRIMARY_BG, PRIMARY_BORDER = "#1a73e8", "#1558b0"
DISABLED_BG, DISABLED_FG, DISABLED_BORDER = "#e4e4e4", "#9a9a9a", "#c8c8c8"

# Fusion fills a scroll bar's groove with a gradient, and Qt's raster engine splits a fill that
# tall across its paint threads while the GUI thread waits for them: about 0.5 ms a repaint
# on an idle machine, up to 16 ms on a busy one. A flat bar in the palette's colours is a few
# solid fills (about 15 µs).
_FLAT_SCROLL_BAR = (
    "QScrollBar { background: palette(window); border: none; margin: 0; }"
    "QScrollBar:vertical { width: 12px; }"
    "QScrollBar:horizontal { height: 12px; }"
    "QScrollBar::handle { background: palette(mid); border-radius: 3px; }"
    "QScrollBar::handle:vertical { min-height: 28px; margin: 2px 3px; }"
    "QScrollBar::handle:horizontal { min-width: 28px; margin: 3px 2px; }"
    "QScrollBar::handle:hover, QScrollBar::handle:pressed { background: palette(dark); }"
    "QScrollBar::add-line, QScrollBar::sub-line { width: 0; height: 0; border: none; }"
    "QScrollBar::add-page, QScrollBar::sub-page { background: none; }"
)

_INVALID_EDIT = f"QLineEdit {{ border: 1px solid {ERROR_FG}; border-radius: 3px; padding: 2px; }}"


def environment_text(environment: str) -> str:
    """The words that name an environment in banners: LIVE means real money."""
    if environment == "live":
        return "LIVE: real money leaves the merchant account"
    return "SANDBOX: test gateway, no real money"


def environment_style(environment: str, *, size_pt: int = 10) -> str:
    """Style sheet for an environment banner label (strong red for LIVE)."""
    bg = LIVE_BG if environment == "live" else SANDBOX_BG
    return (
        f"QLabel {{ background: {bg}; color: white; font-weight: bold; "
        f"font-size: {size_pt}pt; padding: 6px 10px; border-radius: 3px; }}"
    )


def environment_banner(environment: str, parent: QWidget | None = None) -> QLabel:
    """A full-width label saying LIVE (red) or SANDBOX (teal)."""
    label = QLabel(environment_text(environment), parent)
    label.setObjectName("environmentBanner")
    label.setStyleSheet(environment_style(environment))
    label.setAlignment(Qt.AlignmentFlag.AlignCenter)
    label.setAccessibleName("Environment")
    return label


def error_label(parent: QWidget | None = None) -> QLabel:
    """A small red label that sits under a field and carries its message (hidden when empty)."""
    label = QLabel(parent)
    label.setStyleSheet(f"QLabel {{ color: {ERROR_FG}; font-size: 8.5pt; }}")
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setVisible(False)
    return label


def show_field_error(edit: QWidget, label: QLabel, message: str | None) -> None:
    """Show ``message`` under ``edit`` with a red border, or clear both."""
    label.setText(message or "")
    label.setVisible(bool(message))
    wanted = _INVALID_EDIT if message else ""
    if isinstance(edit, QLineEdit) and edit.styleSheet() != wanted:
        edit.setStyleSheet(wanted)  # re-polishes the field even when unchanged
    edit.setProperty("invalid", bool(message))
    edit.setAccessibleDescription(message or "")


def reserve_lines(widget: QWidget, lines: int = 1) -> None:
    """Keep room for ``lines`` of ``widget``'s text even while it is hidden or empty, so a
    message appearing under a field does not push the rest of the form down."""
    widget.ensurePolished()
    spacing = widget.fontMetrics().lineSpacing()
    widget.setMinimumHeight(spacing * lines + 2)
    policy = widget.sizePolicy()
    policy.setRetainSizeWhenHidden(True)
    widget.setSizePolicy(policy)


def primary_button(button: QPushButton) -> None:
    """The main action's look: filled when it can be pressed, plainly greyed out when not
    (some platform styles barely change a disabled default button)."""
    button.setStyleSheet(
        f"QPushButton {{ background: {PRIMARY_BG}; color: white; font-weight: bold; "
        f"border: 1px solid {PRIMARY_BORDER}; border-radius: 4px; padding: 5px 14px; }}"
        f"QPushButton:focus {{ border: 2px solid #0b3d91; }}"
        f"QPushButton:disabled {{ background: {DISABLED_BG}; color: {DISABLED_FG}; "
        f"border: 1px dashed {DISABLED_BORDER}; font-weight: normal; }}"
    )


def muted_label(text: str = "", parent: QWidget | None = None) -> QLabel:
    """A grey hint label (plain text)."""
    label = QLabel(text, parent)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setStyleSheet(f"QLabel {{ color: {MUTED_FG}; }}")
    return label


# Labels sit at the top of their row, so a field with a message under it keeps its label in place.
FORM_LABEL_ALIGNMENT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop


def flat_scroll_bars(root: QWidget) -> None:
    """Give every scroll area under ``root`` flat scroll bars, where the style is Fusion.

    Other styles (the platform's own) keep their scroll bars. A bar that is never shown
    (its policy always off: a combo box's list, whose first item makes it, scrolls with
    arrows) is left alone: a style sheet costs about a quarter of a millisecond a bar.
    """
    # Named here: each PySide6 class costs a little the first time, and the shell's first
    # paint needs none of these.
    from PySide6.QtWidgets import QAbstractScrollArea, QApplication, QHeaderView

    style = QApplication.style()
    if style is None or style.name().lower() != "fusion":
        return
    areas = root.findChildren(QAbstractScrollArea)
    if isinstance(root, QAbstractScrollArea):
        areas.append(root)
    never = Qt.ScrollBarPolicy.ScrollBarAlwaysOff
    for area in areas:
        if isinstance(area, QHeaderView):  # its scroll bars are never shown
            continue
        for bar, policy in (
            (area.verticalScrollBar(), area.verticalScrollBarPolicy()),
            (area.horizontalScrollBar(), area.horizontalScrollBarPolicy()),
        ):
            if policy != never and bar.styleSheet() != _FLAT_SCROLL_BAR:
                bar.setStyleSheet(_FLAT_SCROLL_BAR)
