"""The team history at 10M payouts on PostgreSQL: the real panel, each figure with a bound.

The benchmark starts its own PostgreSQL (``benchmarks.pg_data``: a cluster under
``benchmarks/data/``, the history generated in SQL on first use and cached), opens the real
``PostgresHistoryStore`` on it and the real ``HistoryPanel`` on that store, and times each
action as ``benchmarks.history`` does: from the action to a paint of the table (or details
pane) after which the model is not loading and no visible row shows a placeholder. Each
timed action starts once the panel's reads have ended (a search's count to 10,000 goes on
behind its first page); ``pg_history_filter_text_counted_10m`` (reported) is the search from
the action to that count delivered.

Baselines (``benchmarks.pg_baselines``, a process of its own): the best hand-written SQL for
the same rows on a bare psycopg connection to the same database, painted as plain strings in
a table of the same size. The app's own statements are never replayed.

``pg_write_p99`` / ``pg_write_max``: ``create_attempt`` through the port on the same 10M
database, ``TIMED`` rounds of the working day's mix (``benchmarks.writes.Mix``) after
``WARM_WRITES`` untimed ones, commits durable (fsync on). The rows the benchmark wrote are
removed afterwards (as the owner, the counts kept by their triggers), so the cached history
stays the generated one for the next run.

``python -m benchmarks.pg_history [--rows N]`` (N: a small history, for ``--quick`` and tests).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import MARKER, QUICK, ROOT, RUNS, Result, child_env, emit, median, time_ms
from benchmarks.generate import timeline_ids
from benchmarks.history import (
    BLOCKS,
    DETAILS_RUNS,
    TEXT_QUERY,
    HistoryTab,
    PaintCounter,
    _index_of,
    visible_rows_ready,
)
from benchmarks.pg_data import PG_ROWS, BenchCluster, bench_cluster

GOAL = "≤ 150 ms"
ACTIONS = ("open", "filter_text", "sort_amount_filtered", "jump_middle", "details")
WARM_WRITES = 100 if QUICK else 1_000
TIMED = 50 if QUICK else 2_000


def open_store(cluster: BenchCluster, local: Path):  # type: ignore[no-untyped-def]
    """The app's team store on the benchmark's database."""
    from cactus_desk.history.postgres.store import PostgresHistoryStore

    return PostgresHistoryStore(
        cluster.url(), password=cluster.password, local_dir=local, desk="bench"
    )


def panel_results(cluster: BenchCluster, rows: int) -> dict[str, float]:
    """The median of each action's runs, in ms (see the module's docstring)."""
    from PySide6.QtCore import QEvent, Qt
    from PySide6.QtWidgets import QApplication, QComboBox, QLineEdit, QPlainTextEdit

    from benchmarks.app_api import apply_filter_now
    from cactus_desk.profiles import ProfileStore
    from cactus_desk.ui.history.model import PAGE_SIZE, Column
    from cactus_desk.ui.history.panel import HistoryPanel

    app = QApplication.instance() or QApplication(sys.argv[:1])
    BLOCKS.start()
    values: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(cluster, Path(folder) / "team")
        profiles = ProfileStore(Path(folder) / "profiles")
        panels: list[HistoryPanel] = []
        tab = HistoryTab()

        def close_panels() -> None:
            while panels:
                old = panels.pop()
                old.stop()
                old.close()
                old.deleteLater()
            app.sendPostedEvents(None, QEvent.Type.DeferredDelete)
            app.processEvents()

        def open_panel() -> PaintCounter:
            panel = HistoryPanel(store, profiles)
            panels.append(panel)
            painted = PaintCounter(panel.view.viewport())
            tab.place(panel)
            painted.wait(lambda: panel.model.rowCount() > 0 and visible_rows_ready(panel))
            return painted

        open_panel()  # warm the caches once, as a second opening would find them
        samples = []
        for _ in range(RUNS):
            close_panels()
            started = time.perf_counter()
            painted = open_panel()
            samples.append((time.perf_counter() - started) * 1000)
        values["open"] = median(samples)
        panel = panels[-1]
        view = panel.view

        def quiet() -> None:
            # What an action left running behind its paint (a search's count to 10,000)
            # ends before the next timed action starts, so no figure pays for another's.
            deadline = time.monotonic() + 120
            while panel._runner.busy() or panel.model.count_pending():
                BLOCKS.process()
                if time.monotonic() > deadline:
                    raise TimeoutError("the panel's reads did not end within two minutes")

        def settled(action: Callable[[], object]) -> None:
            painted.arm()
            action()
            view.viewport().update()  # a reset that changes nothing still ends with a paint
            painted.wait(lambda: visible_rows_ready(panel))
            quiet()

        def measured(
            name: str,
            action: Callable[[], object],
            reset: Callable[[], object],
            check: Callable[[], None] = lambda: None,
        ) -> None:
            settled(reset)

            def act() -> None:
                painted.arm()
                action()
                painted.wait(lambda: visible_rows_ready(panel))

            values[name] = median(time_ms(act, before=lambda: settled(reset)))
            check()  # on the state the last run left
            settled(reset)

        edit = panel.findChild(QLineEdit, "historyFilterEdit")
        states = panel.findChild(QComboBox, "historyStateCombo")
        currencies = panel.findChild(QComboBox, "historyCurrencyCombo")

        def set_text(text: str) -> None:
            edit.setText(text)
            apply_filter_now(panel)  # what the typing delay's timer calls, without the delay

        measured("filter_text", lambda: set_text(TEXT_QUERY), lambda: set_text(""))

        def counted_search() -> None:
            set_text(TEXT_QUERY)
            quiet()  # the first page shown, then the search counted on behind it

        values["filter_text_counted"] = median(
            time_ms(counted_search, before=lambda: settled(lambda: set_text("")))
        )
        if panel.model.total() <= PAGE_SIZE:
            raise RuntimeError(f"the search for {TEXT_QUERY!r} was not counted past its page")
        settled(lambda: set_text(""))

        def rejected_usd_by_time() -> None:
            view.sortByColumn(Column.TIME, Qt.SortOrder.DescendingOrder)
            if states.currentText() != "Rejected":
                states.blockSignals(True)
                states.setCurrentIndex(_index_of(states, "Rejected"))
                states.blockSignals(False)
                currencies.setCurrentIndex(currencies.findData("USD"))

        def by_amount() -> None:
            view.sortByColumn(Column.AMOUNT, Qt.SortOrder.DescendingOrder)

        measured("sort_amount_filtered", by_amount, rejected_usd_by_time)

        def everything_by_time() -> None:
            states.blockSignals(True)
            states.setCurrentIndex(0)
            states.blockSignals(False)
            currencies.setCurrentIndex(0)
            view.sortByColumn(Column.TIME, Qt.SortOrder.DescendingOrder)

        settled(everything_by_time)

        def back_to_top() -> None:
            # A fresh query, so the jumped-to page is really read (the model keeps pages).
            panel.model.set_filter(panel.model.history_filter, wait=True)
            view.scrollToTop()

        def jump_middle() -> None:
            bar = view.verticalScrollBar()
            bar.setValue(bar.maximum() // 2)

        def reached_middle() -> None:
            first, total = view.rowAt(0), panel.model.total()
            if abs(first - total // 2) > 200:  # within a page of the middle
                raise RuntimeError(f"the jump showed row {first:,} of {total:,}, not the middle")

        measured("jump_middle", jump_middle, back_to_top, reached_middle)

        settled(back_to_top)
        record_id = timeline_ids(rows)[1]
        target = panel.model.row_of(record_id)
        if target is None:
            raise LookupError(f"record {record_id} (20 events) is not on the first page")
        details = panel.findChild(QPlainTextEdit, "historyDetails")
        details_painted = PaintCounter(details.viewport())

        def show_details() -> None:
            details_painted.arm()
            view.selectRow(target)
            details_painted.wait(lambda: len(panel.timeline.events) >= 20)

        def no_details() -> None:
            view.clearSelection()
            view.setCurrentIndex(view.model().index(-1, -1))
            app.processEvents()

        no_details()
        show_details()
        values["details"] = median(time_ms(show_details, DETAILS_RUNS, before=no_details))
        close_panels()
        store.close()
    return values


def write_results(cluster: BenchCluster) -> list[Result]:
    """``pg_write_p99`` and ``pg_write_max`` (see the module's docstring)."""
    from benchmarks.writes import Mix

    with tempfile.TemporaryDirectory() as folder:
        store = open_store(cluster, Path(folder))
        newest = store.newest_record_id()
        try:
            mix = Mix(store)  # type: ignore[arg-type]
            started = time.perf_counter()
            warm = [mix.round() for _ in range(WARM_WRITES)]
            took = time.perf_counter() - started
            samples = [mix.round() for _ in range(TIMED)]
        finally:
            store.close()
            _remove_written(cluster, newest)
    print(
        f"pg writes: {WARM_WRITES:,} warm-up rounds in {took:.1f} s (create_attempt max "
        f"{max(warm, default=0):.1f} ms there); timed {TIMED:,}",
        flush=True,
    )
    p99 = statistics.quantiles(samples, n=100, method="inclusive")[98]
    return [
        Result("pg_write_p99", round(p99, 1), "ms", None, "≤ 30 ms"),
        Result("pg_write_max", round(max(samples), 1), "ms", None, "reported"),
    ]


def _remove_written(cluster: BenchCluster, newest: int) -> None:
    """Take the benchmark's own payouts out again, so the cache stays as generated.

    Events and resends are append-only by trigger: the owner bypasses that for them; the
    payouts go with their triggers on, so the counts tables count them down.
    """
    import psycopg

    with (
        psycopg.connect(cluster.url(), password=cluster.password, autocommit=True) as conn,
        conn.transaction(),
    ):
        conn.execute("SET LOCAL session_replication_role = replica")
        for table in ("events", "resends"):
            conn.execute(f"DELETE FROM {table} WHERE record_id > %s", (newest,))
        conn.execute("SET LOCAL session_replication_role = origin")
        conn.execute("DELETE FROM payouts WHERE id > %s", (newest,))


def baselines(cluster: BenchCluster, rows: int) -> dict[str, float]:
    """The lower bounds, measured in a process of their own."""
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.pg_baselines", str(cluster.port), str(rows)],
        cwd=ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        text=True,
        timeout=3600,
        check=False,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith(MARKER)]
    for line in completed.stdout.splitlines():
        if not line.startswith(MARKER):
            print(line, flush=True)
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"benchmarks.pg_baselines failed with exit code {completed.returncode}")
    return json.loads(lines[-1][len(MARKER) :])


def main(argv: list[str]) -> None:
    """``[--rows N]``: every figure of the group on ``N`` payouts (default 10M)."""
    rows = int(argv[argv.index("--rows") + 1]) if "--rows" in argv else PG_ROWS
    with bench_cluster(rows) as cluster:
        values = panel_results(cluster, rows)
        bounds = baselines(cluster, rows)
        writes = write_results(cluster)
    results = [
        Result(f"pg_history_{name}_10m", values[name], "ms", bounds.get(name), GOAL)
        for name in ACTIONS
    ]
    counted = Result(
        "pg_history_filter_text_counted_10m", values["filter_text_counted"], "ms", None, "reported"
    )
    emit([*results, counted, *writes])


if __name__ == "__main__":
    main(sys.argv[1:])
