"""What the window remembers between runs: its geometry and the history table's columns.

They live in ``window.ini`` in the data folder, so each data folder (like each history) has
its own. Only the layout goes there: never a salt, a payout or anything typed into the form.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings, QStandardPaths

FILE_NAME = "window.ini"
_GEOMETRY = "window/geometry"
_HISTORY_COLUMNS = "history/columns"


class ViewSettings:
    """The remembered layout of one data folder's window. GUI thread (a tiny INI file)."""

    def __init__(self, data_dir: Path) -> None:
        self._path = Path(data_dir) / FILE_NAME
        self._settings = QSettings(str(self._path), QSettings.Format.IniFormat)

    @property
    def path(self) -> Path:
        """The INI file."""
        return self._path

    def geometry(self) -> QByteArray | None:
        """The window geometry saved last (``QWidget.saveGeometry``), or None."""
        value = self._settings.value(_GEOMETRY)
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_geometry(self, geometry: QByteArray) -> None:
        """Remember the window geometry."""
        self._settings.setValue(_GEOMETRY, geometry)

    def history_columns(self) -> dict[str, Any] | None:
        """The history table's column layout saved last, or None (nothing saved, or unreadable).

        The layout is a JSON object; its contents are checked by whoever applies it.
        """
        text = self._settings.value(_HISTORY_COLUMNS)
        if not isinstance(text, str):
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def set_history_columns(self, layout: dict[str, Any]) -> None:
        """Remember the history table's column layout (plain names and numbers)."""
        self._settings.setValue(_HISTORY_COLUMNS, json.dumps(layout, sort_keys=True))

    def save(self) -> bool:
        """Write to disk now; False (and nothing raised) when the file cannot be written."""
        self._settings.sync()
        return self._settings.status() == QSettings.Status.NoError


def documents_folder() -> str:
    """Where save dialogs open the first time: the user's Documents folder, else their home."""
    documents = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    if documents and Path(documents).is_dir():
        return documents
    return QStandardPaths.writableLocation(QStandardPaths.StandardLocation.HomeLocation)
