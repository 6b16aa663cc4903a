"""The one QApplication of the process, for callers outside ``ui/`` that may not import Qt."""

from __future__ import annotations

import sys

from PySide6.QtCore import qVersion
from PySide6.QtWidgets import QApplication


def ensure_application() -> QApplication:
    """Return the running QApplication, creating it first if there is none."""
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    return QApplication([sys.argv[0] if sys.argv and sys.argv[0] else "cactus-desk"])


def qt_version() -> str:
    """The version of the Qt libraries loaded at run time, e.g. ``"6.12.0"``."""
    return qVersion()
