"""History filters saved by name: a private JSON file in the data folder (no Qt).

A saved filter is a plain mapping of the filter bar's settings (text, state, currency, the
clerk's filters); the window reads and writes it on a worker.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cactus_desk.paths import write_private_file

FILE_NAME = "saved-filters.json"
NAME_MAX = 60


class SavedFilterError(RuntimeError):
    """A saved filter that cannot be read or written (a plain message)."""


class SavedFilterStore:
    """Named filter settings in ``saved-filters.json`` (mode 0600, replaced atomically)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / FILE_NAME

    def all(self) -> dict[str, dict[str, Any]]:
        """Every saved filter by name."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            raise SavedFilterError(f"Cannot read {self.path}: {exc}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise SavedFilterError(f"The saved filters file {self.path} is damaged.") from None
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise SavedFilterError(f"The saved filters file {self.path} is damaged.")
        return data

    def save(self, name: str, settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Keep ``settings`` under ``name`` (replacing one of that name); all of them."""
        name = name.strip()
        if not name or len(name) > NAME_MAX or any(ord(ch) < 32 for ch in name):
            raise SavedFilterError(f"Name the filter in 1 to {NAME_MAX} plain characters.")
        saved = self.all()
        saved[name] = dict(settings)
        self._write(saved)
        return saved

    def remove(self, name: str) -> dict[str, dict[str, Any]]:
        """Forget the filter ``name``; all that remain."""
        saved = self.all()
        saved.pop(name, None)
        self._write(saved)
        return saved

    def _write(self, saved: dict[str, dict[str, Any]]) -> None:
        payload = json.dumps(saved, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        try:
            write_private_file(self.data_dir, self.path, payload)
        except OSError as exc:
            raise SavedFilterError(f"Cannot save the filters to {self.path}: {exc}") from None
