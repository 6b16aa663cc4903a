"""Writes on a large history: recording an attempt in steady state, and the backups' disk use.

``history_write_p99_1m`` / ``history_write_max_1m``: a copy of the 1M history takes
``WARM_WRITES`` mixed writes first, in the generator's proportions (record an attempt, mark it
sending, record its outcome: accepted, refused, unknown or not sent; a signed callback on an
accepted payout for two of every five), so the text index and the WAL are in the state a
working day leaves them, while the history's upkeep runs on its own thread as in the
receiver (``MaintenanceThread``: text-index merges and WAL checkpoints, once a second). Then
``TIMED`` more rounds of the same mix, each timing only
``create_attempt`` (the store's write before every send) from the call to its return. The
figures are the 99th percentile and the maximum of those times. No baseline: the goal is
absolute (p99 ≤ 20 ms, max ≤ 100 ms), and the cost is the app's schema and triggers.

``backup_disk_ratio``: a copy of the 1M history in a data folder of its own; the app's own
daily backup (``daily_backup_if_due``, which the window's worker and the receiver's upkeep
run; it takes the backup and prunes old ones) runs once a day for eight days with the clock
moved on (a week of daily runs and the next morning), a few payouts written each day. The
ratio is the size of every backup kept together over the history's size (file plus WAL) at
the end.

``python -m benchmarks.writes [--rows N] [--writes-only | --backups-only]``.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import count
from pathlib import Path

from benchmarks.app_api import HistoryStore, MaintenanceThread, NewAttempt
from benchmarks.common import QUICK, Result, emit, flush_writes
from benchmarks.generate import DEFAULT_ROWS, END_MS, history_file

WARM_WRITES = 100 if QUICK else 10_000
TIMED = 50 if QUICK else 2_000
BACKUP_DAYS = 8
DAY_MS = 24 * 3600 * 1000
SALT = "bench-salt-not-a-secret"
MERCHANT, SITE = "m_cactus_main", 101


def copy_history(source: Path, folder: Path) -> Path:
    """A private copy of ``source`` as ``history.sqlite3`` in ``folder`` (reflink when it can)."""
    from benchmarks.app_api import HISTORY_FILE

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / HISTORY_FILE
    copied = subprocess.run(
        ["cp", "--reflink=auto", str(source), str(target)], capture_output=True, check=False
    )
    if copied.returncode != 0:
        shutil.copyfile(source, target)
    flush_writes()
    return target


class Mix:
    """The writes of a working day, in the generator's proportions of outcomes."""

    def __init__(self, store: HistoryStore) -> None:
        self.store = store
        self.serial = count()
        self.accepted: list[tuple[str, str]] = []

    def attempt(self) -> NewAttempt:
        number = next(self.serial)
        return NewAttempt(
            profile_id="p-main",
            profile_name="Main shop",
            environment="live",
            merchant_id=MERCHANT,
            site_id=SITE,
            request_id=f"bench-write-{time.time_ns():x}-{number}",
            site_login=f"ivan.petrov{number % 97}",
            method="card",
            currency="USD",
            amount_minor=10_000 + number % 5_000,
            request_fields={"card_holder": "Ivan Petrov", "card_number": "411111******1111"},
        )

    def finish(self, record_id: int, attempt: NewAttempt, number: int) -> None:
        """Mark the attempt sending and record an outcome; sometimes apply a callback."""
        from cactus_desk.callbacks.apply import apply_callback
        from cactus_desk.gateway.outcomes import Accepted, Rejected, Unknown, UnknownKind
        from cactus_desk.gateway.signature import sign

        store = self.store
        kind = number % 100
        if kind < 4:
            store.record_not_sent(record_id, "The salt could not be read from the keyring")
            return
        store.mark_sending(record_id)
        if kind < 84:
            invoice = f"9{number:09d}"
            store.record_outcome(record_id, Accepted(invoice, 3, "Payout initialized"))
            self.accepted.append((attempt.request_id, invoice))
        elif kind < 97:
            store.record_outcome(
                record_id,
                Rejected(
                    "Insufficient funds on balance",
                    {"request_id": attempt.request_id, "success": False},
                    signature_verified=True,
                ),
            )
        else:
            store.record_outcome(record_id, Unknown("No answer in time", UnknownKind.TIMEOUT))
        if self.accepted and number % 5 < 2:
            request_id, invoice = self.accepted[number % len(self.accepted)]
            payload = {
                "request_id": request_id,
                "site_id": SITE,
                "invoice_id": invoice,
                "status": 4,
                "amount": attempt.amount_minor,
                "currency": "USD",
            }
            payload["signature"] = sign(payload, SALT)
            apply_callback(store, payload, SALT, merchant_id=MERCHANT, site_id=None)

    def round(self) -> float:
        """One payout's writes; returns the milliseconds ``create_attempt`` took."""
        number = next(self.serial)
        attempt = self.attempt()
        started = time.perf_counter()
        record_id = self.store.create_attempt(attempt)
        took = (time.perf_counter() - started) * 1000
        self.finish(record_id, attempt, number)
        return took


def write_results(
    source: Path, label: str, warm_writes: int = WARM_WRITES, timed: int = TIMED
) -> list[Result]:
    """``history_write_p99``/``max`` on a copy of ``source``."""
    with tempfile.TemporaryDirectory(dir=source.parent) as tmp:
        path = copy_history(source, Path(tmp))
        with HistoryStore(path) as store, MaintenanceThread(store) as upkeep:
            mix = Mix(store)
            started = time.perf_counter()
            wal = path.with_name(path.name + "-wal")
            wal_peak = 0
            warm = []
            for _ in range(warm_writes):
                warm.append(mix.round())
                wal_peak = max(wal_peak, wal.stat().st_size if wal.exists() else 0)
            took = time.perf_counter() - started
            samples = [mix.round() for _ in range(timed)]
            passes = upkeep.passes
        print(
            f"writes {label}: {warm_writes:,} warm-up rounds in {took:.1f} s "
            f"(create_attempt max {max(warm, default=0):.1f} ms there); timed {timed:,}; "
            f"{passes} upkeep passes; WAL at most {wal_peak / 1e6:.1f} MB",
            flush=True,
        )
    p99 = statistics.quantiles(samples, n=100, method="inclusive")[98]
    return [
        Result(f"history_write_p99_{label}", round(p99, 1), "ms", None, "≤ 20 ms"),
        Result(f"history_write_max_{label}", round(max(samples), 1), "ms", None, "≤ 100 ms"),
    ]


def backup_results(source: Path) -> list[Result]:
    """``backup_disk_ratio``: the app's daily backups of a copy over eight days."""
    from benchmarks.app_api import daily_backup_if_due, list_backups

    with tempfile.TemporaryDirectory(dir=source.parent) as tmp:
        data = Path(tmp)
        path = copy_history(source, data)
        first_day = END_MS + DAY_MS  # the morning after the generated history ends
        for day in range(BACKUP_DAYS):
            now = first_day + day * DAY_MS
            daily_backup_if_due(path, now_ms=now)
            with HistoryStore(path, clock=lambda now=now: now) as store:
                mix = Mix(store)
                for _ in range(20):
                    mix.round()
        kept = list_backups(data)
        backups = sum(backup.stat().st_size for backup in kept)
        wal = path.with_name(path.name + "-wal")
        history = path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    ratio = round(backups / history, 2)
    print(
        f"backups: {len(kept)} kept, {backups / 1e9:.2f} GB for a {history / 1e9:.2f} GB history",
        flush=True,
    )
    return [Result("backup_disk_ratio", ratio, "×", None, "≤ 2.0")]


def main(argv: list[str]) -> None:
    rows = int(argv[argv.index("--rows") + 1]) if "--rows" in argv else DEFAULT_ROWS
    source = history_file(rows)
    results = [] if "--backups-only" in argv else write_results(source, "1m")
    if "--writes-only" not in argv:
        results.extend(backup_results(source))
    emit(results)


if __name__ == "__main__":
    main(sys.argv[1:])
