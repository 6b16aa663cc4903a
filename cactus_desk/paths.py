"""Where Cactus Desk keeps its data and logs."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

APP_DIR_NAME = "cactus-desk"
ENV_HOME = "CACTUS_DESK_HOME"


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Return the data folder: ``--data-dir``, else ``$CACTUS_DESK_HOME``, else the platform's."""
    if explicit:
        return Path(explicit).expanduser().resolve()
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser().resolve()
    import platformdirs  # loaded only when the platform's folder is the answer

    return Path(platformdirs.user_data_dir(APP_DIR_NAME, appauthor=False))


def log_dir(data: Path | None = None, *, explicit_data_dir: bool = False) -> Path:
    """Return the log folder: inside an explicitly chosen data folder, else the platform's."""
    if data is not None and explicit_data_dir:
        return data / "logs"
    import platformdirs

    return Path(platformdirs.user_log_dir(APP_DIR_NAME, appauthor=False))


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) readable by the current user only."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    # A folder owned by someone else cannot be narrowed; the files inside are still 0600.
    with contextlib.suppress(OSError):
        path.chmod(0o700)
    return path


def write_private_file(folder: Path, path: Path, text: str) -> None:
    """Replace ``path`` (inside ``folder``) with ``text`` atomically and durably, mode 0600.

    The text goes to a temporary file in the same folder (mkstemp creates it 0600), is
    synced, then renamed over ``path``; a reader sees the old file or the new one, never a
    part. Raises ``OSError``.
    """
    ensure_private_dir(folder)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (where the platform allows opening a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
