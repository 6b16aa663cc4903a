"""Independent lower bounds of the history figures: hand-written SQL, a plain table, painted.

Each baseline is the best query plan written by hand for the result the panel shows (its
first screen of rows), run on a bare ``sqlite3`` connection to the same history file, the
rows shown as plain strings in a ``QTableView`` of the panel's size, timed from the query to
the table painted. Where the history has no index that serves a query best, the index is
built once into a side file (``<history>.baseline-index.sqlite3``, a ``WITHOUT ROWID`` table
holding exactly the entries such an index would) and attached: the app's file is never
changed. None of this replays the app's own SQL, so a ratio above 1 is the app's real cost
over the best that SQLite and Qt can do.

The baseline of the GUI thread's longest block is the longest single event-loop pass of this
plain table over all its runs: painting a screen of rows, the part no worker can take over.

``python -m benchmarks.baselines 1m|5m [--rows N]`` prints ``RESULTS {name: ms}``.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import MARKER, QUICK, RUNS, median, time_ms
from benchmarks.generate import DEFAULT_ROWS, LARGE_ROWS, history_file, timeline_ids

COLUMNS = (
    "id, created_at, profile_name, request_id, invoice_id, site_login, method, currency, "
    "amount_minor, state, gateway_status, message"
)
PAGE = 200
DETAILS_RUNS = 3 if QUICK else 25
SIZES = {"1m": DEFAULT_ROWS, "5m": LARGE_ROWS}
Query = Callable[[sqlite3.Connection], list[tuple]]


def side_index(path: Path) -> Path:
    """The side file holding the indexes the history lacks, built once per history."""
    side = path.with_name(path.name + ".baseline-index.sqlite3")
    if side.exists():
        return side
    partial = side.with_name(side.name + ".partial")
    partial.unlink(missing_ok=True)
    started = time.perf_counter()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA temp_store=FILE")
        conn.execute("ATTACH DATABASE ? AS side", (str(partial),))
        conn.execute("PRAGMA side.journal_mode=OFF")
        conn.execute("PRAGMA side.synchronous=OFF")
        conn.execute(
            "CREATE TABLE side.by_state_currency_amount (state TEXT, currency TEXT, "
            "amount_minor INTEGER, id INTEGER, "
            "PRIMARY KEY (state, currency, amount_minor, id)) WITHOUT ROWID"
        )
        conn.execute(
            "CREATE TABLE side.by_state_currency (state TEXT, currency TEXT, id INTEGER, "
            "PRIMARY KEY (state, currency, id)) WITHOUT ROWID"
        )
        conn.execute("BEGIN")
        conn.execute(
            "INSERT INTO side.by_state_currency_amount SELECT state, currency, amount_minor, id "
            "FROM payouts ORDER BY 1, 2, 3, 4"
        )
        conn.execute(
            "INSERT INTO side.by_state_currency SELECT state, currency, id "
            "FROM side.by_state_currency_amount ORDER BY 1, 2, 3"
        )
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE side")
    finally:
        conn.close()
    partial.replace(side)
    print(f"baselines: built {side.name} in {time.perf_counter() - started:.1f} s", flush=True)
    return side


def queries(rows: int) -> dict[str, Query]:
    """The hand-written query of each figure: the rows its first screen shows."""
    page = f"SELECT {COLUMNS} FROM payouts"

    def counted(conn: sqlite3.Connection, where: str = "", args: tuple = ()) -> int:
        return conn.execute(f"SELECT sum(n) FROM payouts_counts {where}", args).fetchone()[0]

    def open_(conn: sqlite3.Connection) -> list[tuple]:
        counted(conn)
        return conn.execute(f"{page} ORDER BY id DESC LIMIT {PAGE}").fetchall()

    def text(term: str) -> Query:
        def run(conn: sqlite3.Connection) -> list[tuple]:
            # The trigram index hands back rowids newest first; the page is 200 of them.
            return conn.execute(
                f"{page} WHERE id IN (SELECT rowid FROM payouts_search WHERE payouts_search "
                f"MATCH ? ORDER BY rowid DESC LIMIT {PAGE}) ORDER BY id DESC",
                (f'"{term}"',),
            ).fetchall()

        return run

    def short_text(term: str) -> Query:
        def run(conn: sqlite3.Connection) -> list[tuple]:
            # No index serves a 1-2 character substring: walk newest first until 200 match.
            like = f"%{term}%"
            return conn.execute(
                f"{page} WHERE request_id LIKE ?1 OR invoice_id LIKE ?1 OR site_login LIKE ?1 "
                f"OR message LIKE ?1 ORDER BY id DESC LIMIT {PAGE}",
                (like,),
            ).fetchall()

        return run

    def state_currency(conn: sqlite3.Connection) -> list[tuple]:
        counted(conn, "WHERE state = ? AND currency = ?", ("REJECTED", "USD"))
        return conn.execute(
            f"{page} WHERE id IN (SELECT id FROM side.by_state_currency WHERE state = ? "
            f"AND currency = ? ORDER BY id DESC LIMIT {PAGE}) ORDER BY id DESC",
            ("REJECTED", "USD"),
        ).fetchall()

    def sort_amount(conn: sqlite3.Connection) -> list[tuple]:
        return conn.execute(
            f"{page} INDEXED BY payouts_by_amount ORDER BY amount_minor DESC, id DESC LIMIT {PAGE}"
        ).fetchall()

    def sort_amount_filtered(conn: sqlite3.Connection) -> list[tuple]:
        keys = conn.execute(
            "SELECT id FROM side.by_state_currency_amount WHERE state = ? AND currency = ? "
            f"ORDER BY amount_minor DESC, id DESC LIMIT {PAGE}",
            ("REJECTED", "USD"),
        ).fetchall()
        by_id = {
            row[0]: row
            for row in conn.execute(
                f"{page} WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps([key for (key,) in keys]),),
            )
        }
        return [by_id[key] for (key,) in keys]

    def jump_last(conn: sqlite3.Connection) -> list[tuple]:
        rows = conn.execute(f"{page} ORDER BY id ASC LIMIT {PAGE}").fetchall()
        return rows[::-1]

    def jump_middle(conn: sqlite3.Connection) -> list[tuple]:
        # Ids are dense in a generated history: the middle row is max(id) - count / 2.
        total = counted(conn)
        newest = conn.execute("SELECT max(id) FROM payouts").fetchone()[0]
        return conn.execute(
            f"{page} WHERE id <= ? ORDER BY id DESC LIMIT {PAGE}", (newest - total // 2,)
        ).fetchall()

    record_id = timeline_ids(rows)[1]

    def details(conn: sqlite3.Connection) -> list[tuple]:
        conn.execute("SELECT * FROM payouts WHERE id = ?", (record_id,)).fetchone()
        return conn.execute(
            "SELECT id, received_at, source, who, outcome, reason, message, status, "
            "payload_json FROM events WHERE record_id = ? ORDER BY id",
            (record_id,),
        ).fetchall()

    from benchmarks.history import SHORT_QUERY, TEXT_QUERY

    return {
        "open": open_,
        "filter_text": text(TEXT_QUERY),
        "filter_text_short": short_text(SHORT_QUERY),
        "filter_state_currency": state_currency,
        "sort_amount": sort_amount,
        "sort_amount_filtered": sort_amount_filtered,
        "jump_last": jump_last,
        "jump_middle": jump_middle,
        "details": details,
    }


class BareTable:
    """The baseline program: a query on a bare connection, its rows in a plain table."""

    def __init__(self, path: Path, side: Path, size: tuple[int, int]) -> None:
        uri = f"file:{path}?mode=ro"
        self.conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        self.conn.execute("ATTACH DATABASE ? AS side", (f"file:{side}?mode=ro",))
        self._show_table(size)

    def _show_table(self, size: tuple[int, int]) -> None:
        """The plain table of ``size``, shown (any connection's rows go in it)."""
        from PySide6.QtCore import QAbstractTableModel, QEvent, QModelIndex, QObject, Qt
        from PySide6.QtWidgets import QTableView

        class Rows(QAbstractTableModel):
            def __init__(self) -> None:
                super().__init__()
                self.rows: list[tuple] = []

            def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
                return len(self.rows)

            def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:  # noqa: B008
                return len(self.rows[0]) if self.rows else 0

            def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> object:
                if role == Qt.ItemDataRole.DisplayRole:
                    return str(self.rows[index.row()][index.column()])
                return None

        class Painted(QObject):
            def eventFilter(self, watched: QObject, event: QEvent) -> bool:
                if event.type() == QEvent.Type.Paint:
                    table.paints += 1
                return False

        table = self
        self.paints = 0
        # The longest single event-loop pass seen (the paint of the table): the least that
        # showing a screen of rows blocks the GUI thread, whatever fetched them.
        self.longest_pass = 0.0
        self.model = Rows()
        self.view = QTableView()
        self.view.setModel(self.model)
        self.view.resize(*size)
        self._painted = Painted()
        self.view.viewport().installEventFilter(self._painted)
        self.view.show()

    def show(self, query: Query | None, *, timed: bool = True) -> None:
        """Run ``query`` and paint its rows (nothing for None); an untimed run's passes do
        not count towards the longest (the panel's warming run does not count either)."""
        from PySide6.QtWidgets import QApplication

        rows = query(self.conn) if query is not None else []
        self.model.beginResetModel()
        self.model.rows = rows
        self.model.endResetModel()
        since = self.paints
        self.view.viewport().update()
        while self.paints <= since:
            started = time.perf_counter()
            QApplication.processEvents()
            took = (time.perf_counter() - started) * 1000
            if query is not None and timed:
                self.longest_pass = max(self.longest_pass, took)

    def median_ms(self, query: Query, runs: int = RUNS) -> float:
        """The median time over ``runs`` to query and paint (after one warming run)."""
        self.show(query, timed=False)
        return median(time_ms(lambda: self.show(query), runs, before=lambda: self.show(None)))


def main(argv: list[str]) -> None:
    from PySide6.QtWidgets import QApplication

    from benchmarks.history import ACTIONS_1M, ACTIONS_5M, SIZE

    label = argv[0]
    rows = int(argv[argv.index("--rows") + 1]) if "--rows" in argv else SIZES[label]
    path = history_file(rows)
    side = side_index(path)
    _app = QApplication.instance() or QApplication(sys.argv[:1])
    bare = BareTable(path, side, SIZE)
    every = queries(rows)
    results = {}
    for name in ACTIONS_5M if label == "5m" else ACTIONS_1M:
        if name not in every:  # a figure with no bare-table counterpart (the clerk's filters)
            continue
        runs = DETAILS_RUNS if name == "details" else RUNS
        results[name] = bare.median_ms(every[name], runs)
    results["gui_block_max"] = round(bare.longest_pass, 1)
    print(MARKER + json.dumps(results), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
