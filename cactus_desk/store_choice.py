"""Which history a command uses: the local SQLite file, or a team store on PostgreSQL.

In order: the global option ``--store URL``, then ``$CACTUS_DESK_STORE``, then this machine's
default saved by ``cactus-desk team connect`` (``settings.json`` in the data folder); with
none of them, the local history in the data folder, as always. ``local`` in the option or
the variable chooses the local history over a saved default. A URL never holds the password.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cactus_desk.paths import ensure_private_dir

ENV_STORE = "CACTUS_DESK_STORE"
SETTINGS_FILE = "settings.json"
LOCAL = "local"


class SettingsError(RuntimeError):
    """The settings file cannot be read or written; the message says why."""


def _settings_path(data_dir: Path) -> Path:
    return data_dir / SETTINGS_FILE


def _read_settings(data_dir: Path) -> dict[str, object]:
    path = _settings_path(data_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise SettingsError(f"The settings file {path} cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"The settings file {path} is not a JSON object.")
    return data


def default_store(data_dir: Path) -> str | None:
    """The team store URL saved as this machine's default, or None."""
    value = _read_settings(data_dir).get("store")
    return value if isinstance(value, str) and value.strip() else None


def save_default_store(data_dir: Path, url: str | None) -> Path:
    """Save ``url`` (None: the local history) as this machine's default; the file written.

    Written atomically, private to the user. ``url`` must hold no password (checked by the
    caller with ``history.check_store_url``).
    """
    settings = _read_settings(data_dir)
    if url:
        settings["store"] = url
    else:
        settings.pop("store", None)
    path = _settings_path(data_dir)
    partial = path.with_suffix(".tmp")
    try:
        ensure_private_dir(data_dir)
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            json.dump(settings, out, indent=2, sort_keys=True)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        partial.replace(path)
    except OSError as exc:
        raise SettingsError(f"The settings file {path} cannot be written: {exc}") from None
    return path


def chosen_store(data_dir: Path, explicit: str | None = None) -> str | None:
    """The team store URL a command uses, or None for the local history."""
    for value in (explicit, os.environ.get(ENV_STORE)):
        if value and value.strip():
            return None if value.strip() == LOCAL else value.strip()
    return default_store(data_dir)
