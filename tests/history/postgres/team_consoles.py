"""Consoles (real windows) and a receiver process on one team history, for the live tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QElapsedTimer, QEventLoop, QThread

from cactus_desk.app import build_main_window
from cactus_desk.ui.main_window import HISTORY_TAB, MainWindow
from tests.pg_databases import PgDatabases

REPO = Path(__file__).resolve().parents[3]

# The receiver's own process: an in-memory keyring holding the sandbox's salt for the team's
# profile of the sandbox shop; the store from CACTUS_DESK_STORE, the password from PGPASSWORD.
RECEIVER = textwrap.dedent(
    """
    import os
    import sys
    import keyring
    from tests.memory_keyring import MemoryKeyring
    keyring.set_keyring(MemoryKeyring())
    from cactus_desk import cli, paths
    from cactus_desk.history import open_profiles
    from cactus_desk.profiles import Profile
    from cactus_desk.secrets import SecretStore
    team = open_profiles(paths.data_dir(), os.environ["CACTUS_DESK_STORE"])
    known = [profile for profile in team.all() if profile.name == "Sandbox shop"]
    profile = known[0] if known else team.add(
        Profile(
            name="Sandbox shop",
            base_url=os.environ["SHOP_URL"],
            merchant_id=os.environ["SHOP_MERCHANT"],
            site_id=int(os.environ["SHOP_SITE"]),
        )
    )
    SecretStore().set_salt(profile.id, os.environ.pop("SHOP_SALT"))
    sys.exit(cli.main(["receiver", "--listen", "127.0.0.1:0", "--profile", "Sandbox shop"]))
    """
)


def open_console(data_dir: Path, url: str, *extra: str) -> MainWindow:
    """A console on the team store at ``url`` with the embedded sandbox, shown."""
    window = build_main_window(
        ["--sandbox", "--data-dir", str(data_dir), "--store", url, "--read-timeout", "2.5", *extra]
    )
    assert isinstance(window, MainWindow)
    window.show()
    return window


def show_history(window: MainWindow) -> None:
    """Show the History tab and wait for its rows."""
    window.tabs.setCurrentIndex(HISTORY_TAB)
    assert window.history_panel.wait_until_idle(30_000)


def wait_until(condition: object, timeout_ms: int = 15_000) -> float:
    """Run the event loop until ``condition()`` holds; the seconds it took."""
    clock = QElapsedTimer()
    clock.start()
    while not condition():  # type: ignore[operator]
        if clock.elapsed() > timeout_ms:
            raise AssertionError(f"not within {timeout_ms} ms")
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 5)
        QThread.msleep(2)
    return clock.elapsed() / 1000


@contextmanager
def receiver_process(
    pg_databases: PgDatabases, database: str, shop: dict[str, str], home: Path
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``cactus-desk receiver`` as its own process on the team store; (process, callback URL)."""
    env = {
        **os.environ,
        "CACTUS_DESK_STORE": pg_databases.url(database),
        "CACTUS_DESK_HOME": str(home),
        "PGPASSWORD": pg_databases.cluster.password,
        **shop,
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", RECEIVER],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(180, proc.kill)  # a hung receiver must not hang the suite
    watchdog.start()
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.search(r"at (http://127\.0\.0\.1:\d+/callback)", first)
        assert match, first + (proc.stderr.read() if proc.stderr else "")
        proc.stdout.readline()  # the line naming the team history
        yield proc, match.group(1)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
