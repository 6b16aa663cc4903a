"""Opening the team history for this desk: its stable desk id and its local folder."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from cactus_desk.history.postgres.store import PostgresHistoryStore
from cactus_desk.history.types import HistoryOpenError

DESK_FILE = "desk.id"
SNAPSHOT_DIR = "team-snapshots"


def desk_id(data_dir: Path) -> str:
    """This desk's id, made once and kept in the data folder (``desk.id``)."""
    path = data_dir / DESK_FILE
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        text = ""
    except (OSError, UnicodeDecodeError) as exc:
        raise HistoryOpenError(f"This desk's id cannot be read from {path}: {exc}") from None
    if text:
        return text
    text = uuid.uuid4().hex
    try:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process of this desk made it first: use that one
        return path.read_text(encoding="ascii").strip()
    except OSError as exc:
        raise HistoryOpenError(f"This desk's id cannot be saved in {path}: {exc}") from None
    with os.fdopen(descriptor, "w", encoding="ascii") as out:
        out.write(text + "\n")
    return text


def open_team_store(url: str, data_dir: Path, password: str | None) -> PostgresHistoryStore:
    """Open the team history at ``url`` as this desk (``data_dir`` holds its id)."""
    return PostgresHistoryStore(
        url, local_dir=data_dir / SNAPSHOT_DIR, password=password, desk=desk_id(data_dir)
    )
