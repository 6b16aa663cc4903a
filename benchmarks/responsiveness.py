"""Responsiveness: GUI-thread stalls while payouts are in flight and callbacks pour in.

The real main window runs with ``--sandbox`` on a data folder holding a copy of the 1M
history, the History tab on show. The sandbox answers every payout after 2 s
(``Fault.LATENCY``); four sandbox profiles keep one payout each in flight through the
window's ``SendController``. The real receiver (``cactus-desk receiver``, a process of its
own on the same data folder) takes 200 signed callbacks a second over HTTP from a third
process (``benchmarks.callback_load``) for accepted payouts of the history, so the panel's
change watch keeps finding changes. That process starts, imports and opens its HTTP clients
before the clock does (it says READY and waits for GO): a gateway's own start-up is not part
of the load, and its burst of imports and TLS set-up on both cores was. A 5 ms precise timer
on the GUI thread records how late each tick is; a stall is the lateness beyond its 5 ms.

The copied history has no backup of the day, so the window and the receiver each start the
daily backup (a copy, compressed and read back: about a minute at 1M payouts, on both cores).
The load and the clock start once it is taken, none is being written and the window's other
start-up jobs on its checks pool (the complete integrity check, the read-ahead) are done:
those once-a-day jobs are not the steady state measured here, and while the backup ran the
receiver took only about 55 callbacks a second, short of the 200 this figure is about. The
wait is printed.

``ui_stall_max`` is the longest stall over all RUNS windows of WINDOW_S seconds (the true
maximum); ``ui_stall_p99`` the 99th percentile of every tick's stall over the same time.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

from benchmarks.common import QUICK, ROOT, RUNS, Result, child_env, emit, runqueue_clock
from benchmarks.generate import DEFAULT_ROWS, history_file
from benchmarks.writes import copy_history

WINDOW_S = float(os.environ.get("BENCH_WINDOW_S", "2" if QUICK else "10"))
TICK_MS = 5
LONG_STALL_MS = 10  # stalls this long are listed in the log
CALLBACKS_PER_S = 200
SENDERS = 4
CALLBACK_RECORDS = 2000
BACKUP_WAIT_S = 900


def _accepted_pairs(history: Path, folder: Path) -> Path:
    """(request_id, invoice_id, amount) of the newest accepted payouts the receiver can verify."""
    from benchmarks.callback_load import MERCHANT, SITE

    conn = sqlite3.connect(f"file:{history}?mode=ro", uri=True)
    try:
        pairs = conn.execute(
            "SELECT request_id, invoice_id, amount_minor FROM payouts WHERE state = 'ACCEPTED' "
            "AND merchant_id = ? AND site_id = ? ORDER BY id DESC LIMIT ?",
            (MERCHANT, SITE, CALLBACK_RECORDS),
        ).fetchall()
    finally:
        conn.close()
    path = folder / "callback-ids.json"
    path.write_text(json.dumps(pairs))
    return path


def backups_settled(data: Path) -> bool:
    """True once ``data``'s daily backup is taken and no backup is being written."""
    from benchmarks.app_api import backup_dir, daily_backup_due

    folder = backup_dir(data)
    writing = folder.is_dir() and any(path.name.endswith(".partial") for path in folder.iterdir())
    return not writing and not daily_backup_due(data)


def _start_receiver(data: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.callback_load", "receiver", str(data)],
        cwd=ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/\S*)", line)
        if match:
            return proc, match.group(1).rstrip(".,")
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError("the receiver did not start")


def main(argv: list[str]) -> None:
    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from cactus_desk.app import build_main_window
    from cactus_desk.payouts.draft import new_request_id
    from cactus_desk.payouts.payout import Payout, PayoutTarget
    from cactus_desk.profiles import Profile
    from cactus_desk.sandbox import Fault
    from cactus_desk.ui.main_window import COMPLETE_CHECK_DELAY_MS

    rows = int(argv[argv.index("--rows") + 1]) if "--rows" in argv else DEFAULT_ROWS
    source = history_file(rows)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory(dir=source.parent) as tmp:
        data = Path(tmp) / "desk"
        history = copy_history(source, data)
        ids_file = _accepted_pairs(history, Path(tmp))
        receiver, url = _start_receiver(data)
        window = build_main_window(["--data-dir", str(data), "--sandbox"], settle_heap=True)
        window.resize(1280, 800)
        window.show()
        opened = time.monotonic()
        app.processEvents()
        sandbox_profile = window.start_sandbox()
        # The window keeps these private; the benchmark needs the same objects it uses.
        sandbox = window._sandbox
        store = window._history
        secrets = window._secrets
        sandbox.set_fault(Fault.LATENCY, delay=2)
        salt = sandbox.salt
        window.tabs.setCurrentIndex(window.tabs.count() - 1)
        window.history_panel  # noqa: B018 - built on first use; show it from the start
        before = store.count()

        profiles = [sandbox_profile]
        for index in range(1, SENDERS):
            profile = sandbox_profile.model_copy(update={"id": f"bench-{index}"})
            secrets.remember_for_session(profile.id, salt)
            profiles.append(profile)

        def payout_for(profile: Profile) -> Payout:
            return Payout(
                target=PayoutTarget.of(profile),
                request_id=new_request_id(),
                site_login="bench.user",
                method="binance",
                currency="USD",
                amount_minor=150_000,
            )

        controller = window.send_controller

        def keep_sending() -> None:
            for profile in profiles:
                if not controller.is_sending(profile.id):
                    controller.send(payout_for(profile), profile)

        sender = QTimer()
        sender.timeout.connect(keep_sending)
        sender.start(50)
        # Let the window settle (history opened, first page shown) before the load starts.
        settle = QEventLoop()
        QTimer.singleShot(3000, settle.quit)
        settle.exec()
        waited = time.monotonic()
        # The window's own start-up jobs (its daily check and backup, the complete check,
        # the read-ahead) run on its checks pool: the backup folder alone said "settled"
        # while the window's backup still compressed on a core for the first second of load.
        # Once the complete check has begun (not waited for in --quick, a check of the code).
        checked = opened + (0 if QUICK else COMPLETE_CHECK_DELAY_MS / 1000 + 1)
        while not backups_settled(data) or window._checks.busy() or time.monotonic() < checked:
            if time.monotonic() - waited > BACKUP_WAIT_S:
                raise RuntimeError("the window's daily backup and checks did not finish")
            pause = QEventLoop()
            QTimer.singleShot(250, pause.quit)
            pause.exec()
        print(
            f"responsiveness: waited {time.monotonic() - waited:.1f} s for the daily backup "
            "and the window's start-up checks",
            flush=True,
        )

        seconds = RUNS * WINDOW_S + 2
        gateway = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.callback_load",
                "send",
                url,
                str(ids_file),
                str(CALLBACKS_PER_S),
                str(seconds),
            ],
            cwd=ROOT,
            env=child_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert gateway.stdin is not None and gateway.stdout is not None
        if gateway.stdout.readline().strip() != "READY":
            raise RuntimeError("the callback load did not start")
        # (wall clock, the GUI thread's CPU time, its time waiting for a CPU) at each tick: the
        # log says whether the longest stall was the thread working, waiting for a core (the
        # system), or asleep (the interpreter lock, another lock, I/O).
        ticks: list[tuple[float, float, float]] = []
        queued = runqueue_clock()
        ticker = QTimer()
        ticker.setTimerType(Qt.TimerType.PreciseTimer)
        ticker.timeout.connect(
            lambda: ticks.append((time.perf_counter(), time.thread_time(), queued()))
        )
        stalls: list[float] = []
        # (seconds into the load, stall, ms the GUI thread ran, ms it waited for a CPU)
        long_stalls: list[tuple[float, float, float, float]] = []
        gateway.stdin.write("GO\n")
        gateway.stdin.flush()
        load_started = time.perf_counter()
        try:
            for _ in range(RUNS):
                ticks.clear()
                ticker.start(TICK_MS)
                loop = QEventLoop()  # not app.quit(): Qt 6 would first try to close the window
                QTimer.singleShot(int(WINDOW_S * 1000), loop.quit)
                loop.exec()
                ticker.stop()
                for (earlier, ran_from, queued_from), (later, ran_to, queued_to) in pairwise(ticks):
                    stall = max(0.0, (later - earlier) * 1000 - TICK_MS)
                    stalls.append(stall)
                    if stall >= LONG_STALL_MS:
                        ran, waited = (ran_to - ran_from) * 1000, (queued_to - queued_from) * 1000
                        long_stalls.append((earlier - load_started, stall, ran, waited))
        finally:
            sender.stop()
            controller.wait_idle()
            sent = store.count() - before
            window.close()
            report, _ = gateway.communicate(timeout=120)
            receiver.send_signal(signal.SIGTERM)
            try:
                receiver.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                receiver.kill()
                receiver.communicate()
        print(f"responsiveness: {sent} payouts sent; gateway: {report.strip()}", flush=True)
    listed = "; the longest:" if long_stalls else ""
    print(
        f"responsiveness: {len(long_stalls)} stalls of {LONG_STALL_MS} ms or more{listed}",
        flush=True,
    )
    for at, stall, ran, waited in sorted(long_stalls, key=lambda item: -item[1])[:5]:
        print(
            f"  {stall:.1f} ms at {at:.1f} s: the GUI thread ran {ran:.1f} ms, waited "
            f"{waited:.1f} ms for a CPU, and was asleep the rest",
            flush=True,
        )
    emit(
        [
            Result(
                "ui_stall_p99",
                round(statistics.quantiles(stalls, n=100, method="inclusive")[98], 1),
                "ms",
                None,
                "≤ 16 ms",
            ),
            Result("ui_stall_max", round(max(stalls), 1), "ms", None, "≤ 50 ms"),
        ]
    )


if __name__ == "__main__":
    main(sys.argv[1:])
