"""Batch payouts: checking a large file against a large history, the send rate, the GUI.

``batch_validate_10k``: a 10,000-row XLSX (card payouts, identifier cells as text) read and
checked exactly as the batch window and ``cactus-desk batch validate`` do (``read_table``,
the automatic column mapping, ``validate_batch`` with the history): every row's field checks,
the file's earlier imports, and each row's duplicates of the last 24 hours, on a copy of the
1M history holding 100 recent payouts that repeat rows of the file (all 100 must be
flagged). The clock runs from reading the file to the checked batch. No baseline.

``batch_send_rate``: payouts a second for 2,000 rows sent by ``send_batch`` at concurrency 8
through the one send path (record, mark sending, sign, POST, record the answer) into the
same 1M history, to the sandbox gateway running in a process of its own (as the real gateway
is elsewhere). The clock runs from the call to its return (every row has its answer
recorded); each run sends a new file.

``batch_ui_stall_p99``: the real main window (``--sandbox``, a copy of the 1M history) sends
a 10,000-row batch from its batch window (File → Import batch…, confirmed); a 5 ms precise
timer on the GUI thread records how late each tick is (the stall beyond 5 ms), as
``responsiveness.py`` does, from the click on Send until the window says the batch is done.
One batch (its 10,000 rows are the run).

``python -m benchmarks.batch [--rows N]``; ``python -m benchmarks.batch sandbox`` is the
sandbox child.
"""

from __future__ import annotations

import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from itertools import pairwise
from pathlib import Path

from benchmarks.common import (
    QUICK,
    ROOT,
    RUNS,
    Result,
    child_env,
    emit,
    median,
    runqueue_clock,
)
from benchmarks.generate import DEFAULT_ROWS, history_file
from benchmarks.writes import copy_history

VALIDATE_ROWS = 500 if QUICK else 10_000
SEND_ROWS = 100 if QUICK else 2_000
UI_ROWS = 300 if QUICK else 10_000
CONCURRENCY = 8
REPEATS = 20 if QUICK else 100
TICK_MS = 5
CARD = "4242424242424242"
HEADERS = ["site_login", "amount", "currency", "method", "card_number", "card_holder"]
MERCHANT, SITE = "m_cactus_main", 101  # the generated history's main shop (live)


def card_rows(count: int, seed: int, top_minor: int = 500_000) -> list[list[str]]:
    """``count`` valid RUB card payouts to different logins, amounts spread as people pay
    (1.00 to ``top_minor`` kopecks)."""
    rng = random.Random(seed)
    return [
        [
            f"batch{seed}.user{n:05d}",
            f"{rng.randint(100, top_minor) / 100:.2f}",
            "RUB",
            "card",
            CARD,
            "Ivan Petrov",
        ]
        for n in range(count)
    ]


def write_xlsx(path: Path, rows: list[list[str]]) -> Path:
    """An XLSX of ``rows`` under ``HEADERS``, every cell text (as the template writes it)."""
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    sheet.append(HEADERS)
    for row in rows:
        sheet.append(row)
    book.save(path)
    return path


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    """A CSV of ``rows`` under ``HEADERS``."""
    lines = [",".join(HEADERS), *(",".join(row) for row in rows)]
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return path


def _validate(path: Path, profile: object, store: object) -> object:
    from cactus_desk.batch.columns import auto_mapping
    from cactus_desk.batch.reading import read_table
    from cactus_desk.batch.validate import validate_batch

    table = read_table(path)
    return validate_batch(
        table,
        auto_mapping(table.headers),
        profile,  # type: ignore[arg-type]
        history=store,  # type: ignore[arg-type]
        file_name=path.name,
    )


def validate_figure(history: Path, folder: Path) -> Result:
    """``batch_validate_10k`` on ``history`` (written to: the recent repeats)."""
    from cactus_desk.history.sqlite.store import SqliteHistoryStore
    from cactus_desk.payouts.submit import recorded_attempt
    from cactus_desk.profiles import Profile

    profile = Profile(
        id="p-main",
        name="Main shop",
        base_url="https://gateway.invalid",
        merchant_id=MERCHANT,
        site_id=SITE,
        environment="live",
    )
    path = write_xlsx(folder / "payouts-10k.xlsx", card_rows(VALIDATE_ROWS, seed=1))
    store = SqliteHistoryStore(history)
    try:
        first = _validate(path, profile, store)
        for n, row in enumerate(first.rows[:REPEATS]):  # type: ignore[attr-defined]
            store.create_attempt(
                replace(recorded_attempt(row.payout), request_id=f"bench-repeat-{n}")
            )
        samples = []
        for _ in range(RUNS):
            started = time.perf_counter()
            batch = _validate(path, profile, store)
            samples.append((time.perf_counter() - started) * 1000)
            flagged = sum(1 for row in batch.rows if row.warnings)  # type: ignore[attr-defined]
            if not batch.ok or flagged != REPEATS:  # type: ignore[attr-defined]
                raise RuntimeError(f"the check went wrong: {flagged} repeats flagged")
    finally:
        store.close()
    print(f"batch_validate: {VALIDATE_ROWS} rows, {REPEATS} repeats flagged", flush=True)
    return Result("batch_validate_10k", median(samples), "ms", None, "≤ 1000 ms")


def serve_sandbox() -> None:
    """The sandbox child: print its address and salt, serve until stdin closes."""
    from cactus_desk.sandbox import SandboxGateway

    with SandboxGateway(balances={"RUB": 10**13}) as gateway:
        print(f"{gateway.base_url} {gateway.merchant_id} {gateway.site_id} {gateway.salt}")
        sys.stdout.flush()
        sys.stdin.read()


def send_rate_figure(history: Path, folder: Path) -> Result:
    """``batch_send_rate``: 2,000 rows at concurrency 8 into ``history``."""
    from cactus_desk.batch.sending import send_batch
    from cactus_desk.history.sqlite.store import SqliteHistoryStore
    from cactus_desk.payouts.send import SendCode, SendService
    from cactus_desk.profiles import Profile

    child = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.batch", "sandbox"],
        cwd=ROOT,
        env=child_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None and child.stdin is not None
    base_url, merchant, site, salt = child.stdout.readline().split()
    profile = Profile(
        id="p-bench-sandbox",
        name="Sandbox",
        base_url=base_url,
        merchant_id=merchant,
        site_id=int(site),
        environment="sandbox",
    )
    store = SqliteHistoryStore(history)
    service = SendService(store, lambda _profile: salt)
    rates = []
    try:
        for run in range(RUNS):
            path = write_csv(folder / f"send-{run}.csv", card_rows(SEND_ROWS, seed=100 + run))
            batch = _validate(path, profile, store)
            started = time.perf_counter()
            outcome = send_batch(batch, service, concurrency=CONCURRENCY)  # type: ignore[arg-type]
            took = time.perf_counter() - started
            if outcome.count(SendCode.ACCEPTED) != SEND_ROWS:
                raise RuntimeError("not every row of the send-rate batch was accepted")
            rates.append(SEND_ROWS / took)
    finally:
        service.close()
        store.close()
        child.stdin.close()
        child.wait(timeout=30)
    return Result("batch_send_rate", median(rates), "/s", None, "≥ 50/s")


def ui_stall_figure(history_source: Path, folder: Path) -> Result:
    """``batch_ui_stall_p99``: the GUI thread's stalls while the window sends 10,000 rows."""
    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from cactus_desk.app import build_main_window
    from cactus_desk.payouts.send import SendCode

    app = QApplication.instance() or QApplication(sys.argv[:1])
    data = folder / "desk"
    copy_history(history_source, data)
    # Small amounts: 10,000 rows stay within the window's sandbox balance (every row accepted).
    path = write_xlsx(folder / "payouts-ui.xlsx", card_rows(UI_ROWS, seed=7, top_minor=9_999))
    window = build_main_window(["--data-dir", str(data), "--sandbox"], settle_heap=True)
    window.resize(1280, 800)
    window.show()
    app.processEvents()
    if window.sandbox is None:
        window.start_sandbox()

    def wait(until: object, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not until() and time.monotonic() < deadline:  # type: ignore[operator]
            loop = QEventLoop()
            QTimer.singleShot(20, loop.quit)
            loop.exec()
        if not until():  # type: ignore[operator]
            raise RuntimeError("the batch window did not get there in time")

    dialog = window.open_batch(path)
    assert dialog is not None
    wait(lambda: dialog.batch is not None and not dialog.checking(), 600)
    if not dialog.batch.ok:
        raise RuntimeError("the benchmark's batch has errors")
    box = dialog.request_send()
    assert box is not None
    # (wall clock, the GUI thread's CPU time, its wait for a core) at each tick, as in
    # benchmarks.responsiveness: the log says what the longest stalls were made of.
    ticks: list[tuple[float, float, float]] = []
    queued = runqueue_clock()
    ticker = QTimer()
    ticker.setTimerType(Qt.TimerType.PreciseTimer)
    ticker.timeout.connect(
        lambda: ticks.append((time.perf_counter(), time.thread_time(), queued()))
    )
    ticker.start(TICK_MS)
    started = time.perf_counter()
    box.button(QMessageBox.StandardButton.Yes).click()
    wait(lambda: dialog.outcome is not None, 3600)
    took = time.perf_counter() - started
    ticker.stop()
    stalls = [max(0.0, (b[0] - a[0]) * 1000 - TICK_MS) for a, b in pairwise(ticks)]
    accepted = dialog.outcome.count(SendCode.ACCEPTED) if dialog.outcome else 0
    print(
        f"batch_ui: {UI_ROWS} rows sent from the window in {took:.1f} s "
        f"({UI_ROWS / took:.0f}/s; {accepted} accepted), longest stall {max(stalls):.1f} ms",
        flush=True,
    )
    longest = sorted(pairwise(ticks), key=lambda pair: pair[0][0] - pair[1][0])[:3]
    for (at, ran_from, queued_from), (later, ran_to, queued_to) in longest:
        print(
            f"  {(later - at) * 1000 - TICK_MS:.1f} ms at {at - started:.1f} s: the GUI thread "
            f"ran {(ran_to - ran_from) * 1000:.1f} ms, waited "
            f"{(queued_to - queued_from) * 1000:.1f} ms for a CPU, and was asleep the rest",
            flush=True,
        )
    dialog.wait_idle()
    dialog.close()
    window.shutdown()
    if accepted != UI_ROWS:
        raise RuntimeError(f"only {accepted} of {UI_ROWS} rows were accepted")
    return Result(
        "batch_ui_stall_p99",
        round(statistics.quantiles(stalls, n=100, method="inclusive")[98], 1),
        "ms",
        None,
        "≤ 16 ms",
    )


def main(argv: list[str]) -> None:
    if argv[:1] == ["sandbox"]:
        serve_sandbox()
        return
    rows = int(argv[argv.index("--rows") + 1]) if "--rows" in argv else DEFAULT_ROWS
    source = history_file(rows)
    results = []
    with tempfile.TemporaryDirectory(dir=source.parent) as tmp:
        folder = Path(tmp)
        history = copy_history(source, folder / "checks")
        results.append(validate_figure(history, folder))
        results.append(send_rate_figure(history, folder))
        results.append(ui_stall_figure(source, folder))
    emit(results)


if __name__ == "__main__":
    main(sys.argv[1:])
