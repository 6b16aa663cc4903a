"""One Cactus Desk window per data folder, enforced with an OS file lock.

The lock is held on ``instance.lock`` in the data folder for as long as the window runs; the
OS drops it when the process ends, however it ends, so a crash never leaves a stale lock.
The holder writes its process id into the file so a second instance can name it. Only the
window takes this lock: ``cactus-desk receiver`` is a separate process that legitimately
shares the history with it.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from cactus_desk.paths import ensure_private_dir

LOCK_FILE = "instance.lock"


def _try_lock(fd: int) -> bool:
    if sys.platform == "win32":
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unlock(fd: int) -> None:
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)


class InstanceLock:
    """The right to run the window on ``data_dir``; ``acquire()`` it before opening anything."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / LOCK_FILE
        self._fd: int | None = None
        self.holder_pid: int | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> bool:
        """Take the lock; False (with ``message`` saying who holds it) when another has it."""
        if self._fd is not None:
            return True
        ensure_private_dir(self.data_dir)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        if not _try_lock(fd):
            self.holder_pid = _read_pid(fd)
            os.close(fd)
            return False
        # Locking only byte 0 on Windows: the pid is written after it, outside the lock.
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f" {os.getpid()}\n".encode())
        os.fsync(fd)
        self._fd = fd
        self.holder_pid = os.getpid()
        return True

    @property
    def message(self) -> str:
        """Why ``acquire`` failed, for a dialog or the terminal."""
        who = f"process {self.holder_pid}" if self.holder_pid else "another process"
        return (
            f"Cactus Desk is already running on the data folder {self.data_dir} ({who}). "
            "Switch to that window, or close it and start Cactus Desk again."
        )

    def release(self) -> None:
        """Give the lock up; safe to call when not held."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            _unlock(fd)
        os.close(fd)

    def __enter__(self) -> InstanceLock:
        if not self.acquire():
            raise RuntimeError(self.message)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        # On Windows byte 0 is the locked one, and a locked byte cannot be read.
        os.lseek(fd, 1 if sys.platform == "win32" else 0, os.SEEK_SET)
        text = os.read(fd, 64).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
