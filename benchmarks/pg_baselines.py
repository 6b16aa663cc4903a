"""Independent lower bounds of the 10M team-history figures: hand-written SQL, painted.

Each is the best statement written by hand for the rows the panel's first screen shows, on a
bare psycopg connection to the benchmark's database, the rows shown as plain strings in a
``QTableView`` of the panel's size and timed from the query to the paint (the same plain
table as ``benchmarks.baselines``). The planner is told the plan where it could pick a worse
one (a dense word walks the time index; its count takes the trigram index). None of this
replays the store's statements.

``python -m benchmarks.pg_baselines PORT ROWS`` prints ``RESULTS {name: ms}``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from benchmarks.baselines import COLUMNS, PAGE, BareTable
from benchmarks.common import MARKER, RUNS
from benchmarks.generate import timeline_ids
from benchmarks.history import DETAILS_RUNS, SIZE, TEXT_QUERY
from benchmarks.pg_data import DATABASE, SUPERUSER, cache_root

Query = Callable[[Any], list[tuple]]
QUICK_COUNT = 1_000  # the panel's first count of a search ("1,000+ payouts")


def queries(rows: int) -> dict[str, Query]:
    """The hand-written query of each figure: the rows its first screen shows."""
    page = f"SELECT {COLUMNS} FROM payouts"
    like = f"%{TEXT_QUERY}%"

    def total(conn: Any, where: str = "", args: tuple = ()) -> int:
        return int(conn.execute(f"SELECT sum(n) FROM payouts_counts {where}", args).fetchone()[0])

    def open_(conn: Any) -> list[tuple]:
        total(conn)
        return conn.execute(f"{page} ORDER BY created_at DESC, id DESC LIMIT {PAGE}").fetchall()

    def filter_text(conn: Any) -> list[tuple]:
        with conn.transaction():
            # At least this many matches, from the trigram index (the panel's first count).
            conn.execute("SET LOCAL enable_seqscan = off")
            conn.execute(
                "SELECT count(*) FROM (SELECT 1 FROM payouts WHERE site_login ILIKE %s "
                "OR request_id ILIKE %s OR invoice_id ILIKE %s OR message ILIKE %s "
                f"LIMIT {QUICK_COUNT}) AS found",
                (like,) * 4,
            ).fetchone()
            # A word in ~1 % of the rows: newest first along the time index, 200 matches.
            conn.execute("SET LOCAL enable_bitmapscan = off")
            return conn.execute(
                f"{page} WHERE site_login ILIKE %s OR request_id ILIKE %s "
                "OR invoice_id ILIKE %s OR message ILIKE %s "
                f"ORDER BY created_at DESC, id DESC LIMIT {PAGE}",
                (like,) * 4,
            ).fetchall()

    def sort_amount_filtered(conn: Any) -> list[tuple]:
        total(conn, "WHERE state = %s AND currency = %s", ("REJECTED", "USD"))
        return conn.execute(
            f"{page} WHERE state = 'REJECTED' AND currency = 'USD' "
            f"ORDER BY amount_minor DESC, id DESC LIMIT {PAGE}"
        ).fetchall()

    def jump_middle(conn: Any) -> list[tuple]:
        # Ids are dense and in time order in a generated history: the middle is by id.
        count = total(conn)
        newest = conn.execute("SELECT max(id) FROM payouts").fetchone()[0]
        return conn.execute(
            f"{page} WHERE id <= %s ORDER BY id DESC LIMIT {PAGE}", (newest - count // 2,)
        ).fetchall()

    record_id = timeline_ids(rows)[1]

    def details(conn: Any) -> list[tuple]:
        conn.execute("SELECT * FROM payouts WHERE id = %s", (record_id,)).fetchone()
        return conn.execute(
            "SELECT id, received_at, source, who, outcome, reason, message, status, "
            "payload_json FROM events WHERE record_id = %s ORDER BY id",
            (record_id,),
        ).fetchall()

    return {
        "open": open_,
        "filter_text": filter_text,
        "sort_amount_filtered": sort_amount_filtered,
        "jump_middle": jump_middle,
        "details": details,
    }


class PgBareTable(BareTable):
    """The plain table over a bare psycopg connection."""

    def __init__(self, conn: Any, size: tuple[int, int]) -> None:
        self.conn = conn
        self._show_table(size)


def main(argv: list[str]) -> None:
    import psycopg
    from PySide6.QtWidgets import QApplication

    port, rows = int(argv[0]), int(argv[1])
    password = (cache_root(rows) / "password").read_text(encoding="utf-8").strip()
    url = f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{DATABASE}"
    _app = QApplication.instance() or QApplication(sys.argv[:1])
    with psycopg.connect(url, password=password, autocommit=True) as conn:
        bare = PgBareTable(conn, SIZE)
        results = {
            name: bare.median_ms(query, DETAILS_RUNS if name == "details" else RUNS)
            for name, query in queries(rows).items()
        }
    print(MARKER + json.dumps(results), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
