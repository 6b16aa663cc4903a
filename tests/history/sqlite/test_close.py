"""Closing the history while readers are at work (the window taking a damaged history down
while a worker reads it) ends their reads with HistoryClosedError, never a crash.

Closing a connection under a running statement crashed the interpreter, so the readers run
in a child process: a crash is its exit code, not the end of the test run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

READERS = """
import sys, threading, time
from pathlib import Path
from cactus_desk.history.sqlite.store import SqliteHistoryStore
from cactus_desk.history.types import HistoryClosedError

path = Path(sys.argv[1])
SqliteHistoryStore(path).close()
unexpected = []
for round_ in range(int(sys.argv[2])):
    store = SqliteHistoryStore(path)
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                store.recent_batches()
                store.page(limit=50)
            except HistoryClosedError:
                return
            except Exception as exc:
                unexpected.append(repr(exc))
                return

    readers = [threading.Thread(target=read) for _ in range(3)]
    for reader in readers:
        reader.start()
    time.sleep(0.002 * (round_ % 7))
    store.close()
    stop.set()
    for reader in readers:
        reader.join()
print("unexpected:", unexpected)
"""


def test_closing_under_running_readers_never_crashes(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-c", READERS, str(tmp_path / "history.sqlite3"), "150"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "unexpected: []" in completed.stdout
