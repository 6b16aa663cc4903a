"""Responsiveness: GUI-thread stalls while payouts are in flight and callbacks pour in.

The real main window runs with ``--sandbox`` on a fresh data folder, the History tab on
show. The sandbox answers every payout after 2 s (``Fault.LATENCY``); four sandbox profiles
keep one payout each in flight through the window's ``SendController``. A thread applies 200
signed callbacks per second to the history with ``apply_callback`` (what the receiver does
for each request), so the panel's change watch keeps reloading. A 5 ms precise timer on the
GUI thread records how late each tick is; a stall is the lateness beyond its 5 ms.

The figures are the medians over RUNS windows of WINDOW_S seconds each of the windows' 99th
percentile and maximum stall.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from itertools import count, pairwise

from benchmarks.common import RUNS, Result, emit, median

WINDOW_S = float(os.environ.get("BENCH_WINDOW_S", "10"))
TICK_MS = 5
CALLBACKS_PER_S = 200
SENDERS = 4
SEED_RECORDS = 2000


def main() -> None:
    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from cactus_desk.app import build_main_window
    from cactus_desk.callbacks.apply import apply_callback
    from cactus_desk.gateway.models import PayoutRequest
    from cactus_desk.gateway.outcomes import Accepted
    from cactus_desk.gateway.signature import sign
    from cactus_desk.history.types import NewAttempt
    from cactus_desk.payouts.draft import new_request_id
    from cactus_desk.sandbox import Fault

    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as data:
        window = build_main_window(["--data-dir", data, "--sandbox"])
        window.resize(1280, 800)
        window.show()
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

        profiles = [sandbox_profile]
        for index in range(1, SENDERS):
            profile = sandbox_profile.model_copy(update={"id": f"bench-{index}"})
            secrets.remember_for_session(profile.id, salt)
            profiles.append(profile)

        def attempt_for(profile_id: str, request_id: str) -> tuple[PayoutRequest, NewAttempt]:
            request = PayoutRequest(
                merchant_id=sandbox_profile.merchant_id,
                site_login="bench.user",
                site_id=sandbox_profile.site_id,
                request_id=request_id,
                amount=150_000,
                currency="USD",
                method="binance",
            )
            attempt = NewAttempt(
                profile_id=profile_id,
                profile_name=sandbox_profile.name,
                environment="sandbox",
                merchant_id=request.merchant_id,
                site_id=request.site_id,
                request_id=request.request_id,
                site_login=request.site_login,
                method=request.method,
                currency=request.currency,
                amount_minor=request.amount,
            )
            return request, attempt

        seeded = []
        for index in range(SEED_RECORDS):
            _, attempt = attempt_for(sandbox_profile.id, f"seed-{index:05d}")
            record_id = store.create_attempt(attempt)
            store.record_outcome(record_id, Accepted(str(900_000 + index), 3, "Payout initialized"))
            seeded.append(attempt.request_id)

        controller = window.send_controller

        def keep_sending() -> None:
            for profile in profiles:
                if not controller.is_sending(profile.id):
                    controller.send(profile, *attempt_for(profile.id, new_request_id()))

        sender = QTimer()
        sender.timeout.connect(keep_sending)
        sender.start(50)

        stop = threading.Event()
        applied = count()

        def callbacks() -> None:
            interval = 1 / CALLBACKS_PER_S
            due = time.monotonic()
            for index in count():
                if stop.is_set():
                    return
                payload = {
                    "request_id": seeded[index % len(seeded)],
                    "site_id": sandbox_profile.site_id,
                    "invoice_id": str(900_000 + index % len(seeded)),
                    "status": (3, 4, 5)[index % 3],
                    "amount": 150_000,
                    "currency": "USD",
                }
                payload["signature"] = sign(payload, salt)
                apply_callback(
                    store, payload, salt, merchant_id=sandbox_profile.merchant_id, site_id=None
                )
                next(applied)
                due += interval
                time.sleep(max(0.0, due - time.monotonic()))

        ticks: list[float] = []
        ticker = QTimer()
        ticker.setTimerType(Qt.TimerType.PreciseTimer)
        ticker.timeout.connect(lambda: ticks.append(time.perf_counter()))
        thread = threading.Thread(target=callbacks, daemon=True)
        thread.start()
        p99s, maxima = [], []
        try:
            for _ in range(RUNS):
                ticks.clear()
                ticker.start(TICK_MS)
                loop = QEventLoop()  # not app.quit(): Qt 6 would first try to close the window
                QTimer.singleShot(int(WINDOW_S * 1000), loop.quit)
                loop.exec()
                ticker.stop()
                stalls = [
                    max(0.0, (later - earlier) * 1000 - TICK_MS)
                    for earlier, later in pairwise(ticks)
                ]
                p99s.append(statistics.quantiles(stalls, n=100)[98])
                maxima.append(max(stalls))
        finally:
            stop.set()
            thread.join()
            sender.stop()
            controller.wait_idle()
            sent = store.count() - SEED_RECORDS
            window.close()
        rate = next(applied) / (RUNS * WINDOW_S)
        print(f"responsiveness: {sent} payouts sent, {rate:.0f} callbacks/s applied", flush=True)
    emit(
        [
            Result("ui_stall_p99", median(p99s), "ms", None, "≤ 16 ms"),
            Result("ui_stall_max", median(maxima), "ms", None, "≤ 50 ms"),
        ]
    )


if __name__ == "__main__":
    main()
