"""``callback_to_console_p99``: a callback's way from the receiver to another console's screen.

A throwaway PostgreSQL cluster (the test suite's ``PgCluster``), one team database holding
``PAYOUTS`` accepted payouts, the receiver as its own process (``cactus-desk receiver`` on
the team store), and three consoles (real ``MainWindow``s, offscreen, each on its own data
folder and its own connection, showing the History tab). A sender process posts signed
callbacks over loopback HTTP at ``RATE`` a second, each payout once, in random order, and
writes the moment just before each request. The clock stops at the first paint of a
console's table viewport after its row for that payout shows the final status (rows on
screen only; the others change in the model without a paint). Every (callback, console)
pair on screen is one sample; the figure is their 99th percentile over one run.

Run as ``python -m benchmarks.pg_live`` (``make bench`` runs it as a group of its own).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.common import QUICK, ROOT, Result, emit

RATE = 200  # callbacks a second
CONSOLES = 3
PAYOUTS = 400 if QUICK else 1200
GOAL = "≤ 1,000 ms"
SALT = "bench-live-salt"
MERCHANT, SITE = "m_bench", 7
WINDOW_SIZE = (1280, 2400)  # tall: more rows on screen, so more samples per run

# Posts the callbacks from its own process (its GIL is not the consoles'), paced at RATE, and
# writes "request_id monotonic_ns" just before each request (CLOCK_MONOTONIC is system-wide).
SENDER = textwrap.dedent(
    """
    import json, sys, time
    import httpx
    url, bodies_path, rate, out_path = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
    bodies = json.loads(open(bodies_path).read())
    start = time.monotonic() + 0.2
    with httpx.Client(timeout=30) as client, open(out_path, "w") as out:
        for number, body in enumerate(bodies):
            wait = start + number / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            out.write(f"{body['request_id']} {time.monotonic_ns()}\\n")
            reply = client.post(url, json=body)
            if reply.status_code != 200:
                print("refused", reply.status_code, reply.text, file=sys.stderr)
    """
)


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def _make_payouts(store: Any, count: int) -> list[Any]:
    from cactus_desk.gateway.outcomes import Accepted
    from tests.callbacks.helpers import ATTEMPT

    records = []
    for number in range(count):
        attempt = replace(
            ATTEMPT, request_id=f"bench-{number:05d}", merchant_id=MERCHANT, site_id=SITE
        )
        record_id = store.create_attempt(attempt)
        store.record_outcome(record_id, Accepted(str(700000 + number), 3, "Payout initialized"))
        records.append(store.get(record_id))
    return records


def _callback_body(record: Any, status: int) -> dict[str, Any]:
    from tests.callbacks.helpers import callback

    return callback(
        status,
        request_id=record.request_id,
        invoice_id=int(record.invoice_id),
        salt=SALT,
        site_id=SITE,
        site_login=record.site_login,
        amount=record.amount_minor,
        received_amount=record.amount_minor if status == 4 else 0,
        currency=record.currency,
        received_currency=record.currency,
        method=record.method,
        additional_fields=None,
    )


class _Screen:
    """Stamps the first paint of a console's table after a row there shows a final status."""

    def __init__(self, window: Any, ids: dict[int, str]) -> None:
        from PySide6.QtCore import QObject

        self.panel = window.history_panel
        self.view = self.panel.view
        self.model = self.panel.model
        self.ids = ids  # record id -> request id
        self.final: set[int] = set()
        self.pending: set[int] = set()
        self.painted: dict[str, int] = {}  # request id -> monotonic_ns of the paint
        outer = self

        class Filter(QObject):
            def eventFilter(self, watched: Any, event: Any) -> bool:
                from PySide6.QtCore import QEvent

                if event.type() == QEvent.Type.Paint and outer.pending:
                    now = time.monotonic_ns()
                    for record_id in outer.pending:
                        outer.painted.setdefault(outer.ids[record_id], now)
                    outer.pending.clear()
                return False

        self._filter = Filter()
        self.view.viewport().installEventFilter(self._filter)
        self.model.dataChanged.connect(self._changed)

    def _on_screen(self) -> range:
        top = self.view.rowAt(0)
        bottom = self.view.rowAt(self.view.viewport().height() - 1)
        if top < 0:
            return range(0)
        return range(top, (bottom if bottom >= 0 else self.model.rowCount() - 1) + 1)

    def _changed(self, first: Any, last: Any) -> None:
        shown = self._on_screen()
        for row in range(max(first.row(), shown.start), min(last.row(), shown.stop - 1) + 1):
            found = self.model.history_row(row)
            if found is None or found.id in self.final or found.gateway_status not in (4, 5):
                continue
            self.final.add(found.id)
            if found.id in self.ids:
                self.pending.add(found.id)

    def on_screen_ids(self) -> set[int]:
        ids = set()
        for row in self._on_screen():
            found = self.model.history_row(row)
            if found is not None:
                ids.add(found.id)
        return ids


def _wait(condition: Any, seconds: float) -> None:
    from PySide6.QtCore import QCoreApplication, QEventLoop

    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the benchmark did not get there in time")
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 5)
        time.sleep(0.001)


def run() -> list[Result]:
    """Start the cluster, the receiver, the consoles; send the callbacks; the figures."""
    import keyring
    import psycopg
    from PySide6.QtWidgets import QApplication

    from cactus_desk.app import build_main_window
    from cactus_desk.history.postgres.store import PostgresHistoryStore
    from cactus_desk.ui.main_window import HISTORY_TAB
    from tests.history.postgres.team_consoles import RECEIVER, receiver_process
    from tests.memory_keyring import MemoryKeyring
    from tests.pg_cluster import PgCluster
    from tests.pg_databases import PgDatabases

    keyring.set_keyring(MemoryKeyring())  # the password comes from PGPASSWORD, as in CI
    app = QApplication.instance() or QApplication([])
    work = Path(tempfile.mkdtemp(prefix="cactus-bench-live-"))
    cluster = PgCluster()
    cluster.start()
    windows: list[Any] = []
    try:
        databases = PgDatabases(cluster)
        database = databases.create()
        url = databases.url(database)
        os.environ["PGPASSWORD"] = cluster.password
        with PostgresHistoryStore(url, local_dir=work / "seed", password=cluster.password) as seed:
            records = _make_payouts(seed, PAYOUTS)
        shop = {
            "SHOP_URL": "https://gw.example",
            "SHOP_MERCHANT": MERCHANT,
            "SHOP_SITE": str(SITE),
            "SHOP_SALT": SALT,
        }
        assert "Sandbox shop" in RECEIVER
        with receiver_process(databases, database, shop, work / "rx") as (_proc, callback_url):
            for number in range(CONSOLES):
                window = build_main_window(
                    ["--data-dir", str(work / f"desk{number}"), "--store", url]
                )
                window.resize(*WINDOW_SIZE)
                window.show()
                window.tabs.setCurrentIndex(HISTORY_TAB)
                window.history_panel.wait_until_idle(60_000)
                windows.append(window)
            _wait(lambda: all(w.team_live and w.team_live.listener for w in windows), 30)
            for window in windows:
                assert window.team_live.listener.wait_connected(30)
            ids = {record.id: record.request_id for record in records}
            screens = [_Screen(window, ids) for window in windows]
            _wait(lambda: all(screen.on_screen_ids() for screen in screens), 30)
            on_screen = [screen.on_screen_ids() for screen in screens]
            order = list(records)
            random.Random(13).shuffle(order)
            bodies = [_callback_body(r, 5 if r.amount_minor % 100 == 13 else 4) for r in order]
            bodies_path, sent_path = work / "bodies.json", work / "sent.txt"
            bodies_path.write_text(json.dumps(bodies))
            sender = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    SENDER,
                    callback_url,
                    str(bodies_path),
                    str(RATE),
                    str(sent_path),
                ],
                cwd=ROOT,
                stderr=subprocess.PIPE,
                text=True,
            )
            _wait(lambda: sender.poll() is not None, len(bodies) / RATE + 120)
            errors = sender.stderr.read() if sender.stderr else ""
            if sender.returncode != 0 or "refused" in errors:
                raise RuntimeError(f"the sender failed: {errors[-2000:]}")
            expected = [
                (screen, {ids[i] for i in shown})
                for screen, shown in zip(screens, on_screen, strict=True)
            ]
            _wait(lambda: all(want <= set(screen.painted) for screen, want in expected), 60)
            sent = dict(line.split() for line in sent_path.read_text().splitlines())
            samples = [
                (screen.painted[request_id] - int(sent[request_id])) / 1e6
                for screen, want in expected
                for request_id in want
            ]
        with psycopg.connect(url, password=cluster.password) as conn:
            events = conn.execute("SELECT count(*) FROM events").fetchone()
        assert events is not None and events[0] == len(bodies), events
    finally:
        for window in windows:
            window.shutdown()
        cluster.destroy()
        app.processEvents()
    note = f"{len(samples)} samples, {len(bodies)} callbacks at {RATE}/s, {CONSOLES} consoles"
    print(f"callback_to_console: {note}; p50 {_percentile(samples, 0.5):.0f} ms")
    return [
        Result("callback_to_console_p99", round(_percentile(samples, 0.99), 1), "ms", None, GOAL),
        Result("callback_to_console_p50", round(_percentile(samples, 0.5), 1), "ms", None, ""),
        Result("callback_to_console_max", round(max(samples), 1), "ms", None, ""),
    ]


def main(argv: list[str]) -> None:
    emit(run())


if __name__ == "__main__":
    main(sys.argv[1:])
