"""The team history's reads use indexes, and its shortcuts give the plain query's answer.

A modest generated history (``ROWS`` payouts, the benchmarks' generator with the triggers
on, then ANALYZE over every row), with ``enable_seqscan`` left on so the planner's choice is
a real one: every statement the panel's reads run (``queries.count`` and ``queries.page``: the first
page, the last one read backwards, and the middle one in time order) is explained, for every
filter the panel offers (each state choice, a currency, a profile, needs review, a text
search, a state with a currency, a text with a state) under every sort in both directions.
None may read the payouts table whole (``Seq Scan on payouts``).

Pages far down other orders than time still step over the rows before them (an index walk
with OFFSET, as in the SQLite store), so the middle pages are checked in time order only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import psycopg
import pytest
from psycopg.rows import dict_row

from benchmarks import pg_baselines
from benchmarks.generate import timeline_ids
from benchmarks.history import TEXT_QUERY
from benchmarks.pg_data import fill
from cactus_desk.history.postgres import queries
from cactus_desk.history.postgres.callbacks import Conn
from cactus_desk.history.types import HistoryFilter, SortKey
from cactus_desk.payouts.states import State
from tests.pg_databases import PgDatabases

ROWS = 40_000
PAGE = 200
DENSE_WORD = "petrov"  # a surname in about 2 % of the logins
RARE_WORD = "cd-20240229"  # the request ids of one day: about 55 payouts

FILTERS = {
    "everything": HistoryFilter(),
    "needs attention": HistoryFilter(
        states=frozenset({State.UNKNOWN, State.REFUSED_UNVERIFIED, State.SUBMITTING})
    ),
    "needs review": HistoryFilter(needs_review=True),
    **{f"state {state}": HistoryFilter(states=frozenset({state})) for state in State},
    "currency": HistoryFilter(currency="USD"),
    "profile": HistoryFilter(profile_id="p-eu"),
    "rejected usd": HistoryFilter(states=frozenset({State.REJECTED}), currency="USD"),
    "dense text": HistoryFilter(text=DENSE_WORD),
    "rare text": HistoryFilter(text=RARE_WORD),
    "text and state": HistoryFilter(text=DENSE_WORD, states=frozenset({State.REJECTED})),
}


class Recorder:
    """A connection that keeps every statement run through it."""

    def __init__(self, conn: psycopg.Connection[dict[str, Any]]) -> None:
        self.conn = conn
        self.statements: list[tuple[str, Any]] = []

    def execute(self, sql: str, params: Any = None) -> Any:
        self.statements.append((sql, params))
        return self.conn.execute(sql, params)


@pytest.fixture(scope="module")
def generated_db(pg_databases: PgDatabases) -> Iterator[tuple[str, str]]:
    """(URL, password) of a migrated database holding ``ROWS`` generated payouts, analysed."""
    name = pg_databases.create()
    url = pg_databases.url(name)
    password = pg_databases.cluster.password
    try:
        with psycopg.connect(url, password=password, autocommit=True) as conn:
            with conn.transaction():
                fill(conn, ROWS, lambda _: None)
            # A sample of 300 x the target rows covers the whole table: the statistics, and so
            # the plans, are the same on every run (a random 30,000-row sample put the dense
            # word's estimate anywhere from 365 to 1,081 rows, and one CI run's plans flipped).
            conn.execute("SET default_statistics_target = 1000")
            conn.execute("VACUUM (ANALYZE)")
        yield url, password
    finally:
        pg_databases.drop(name)


@pytest.fixture(scope="module")
def generated(generated_db: tuple[str, str]) -> Iterator[psycopg.Connection[dict[str, Any]]]:
    """A connection to the generated database handing out rows as dicts (as the store's)."""
    url, password = generated_db
    with psycopg.connect(url, password=password, autocommit=True, row_factory=dict_row) as conn:
        yield conn


def _seq_scans(plan: dict[str, Any]) -> list[str]:
    found = []
    if plan.get("Node Type") == "Seq Scan" and plan.get("Relation Name") == "payouts":
        found.append("Seq Scan on payouts")
    for child in plan.get("Plans", ()):
        found += _seq_scans(child)
    return found


def _explained(conn: psycopg.Connection[dict[str, Any]], recorder: Recorder) -> list[str]:
    """Every recorded statement whose plan reads the payouts table whole."""
    bad = []
    for sql, params in recorder.statements:
        row = conn.execute(f"EXPLAIN (FORMAT JSON) {sql}", params).fetchone()
        assert row is not None
        plan = next(iter(row.values()))[0]["Plan"]
        if _seq_scans(plan):
            bad.append(sql)
    return bad


@pytest.mark.parametrize("descending", [True, False], ids=["desc", "asc"])
@pytest.mark.parametrize("sort", list(SortKey))
@pytest.mark.parametrize("name", list(FILTERS))
def test_no_read_of_the_panel_scans_the_payouts(
    generated: psycopg.Connection[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    sort: SortKey,
    descending: bool,
) -> None:
    # A search's walk, scaled to this table as the real one is to millions of rows (a walk
    # over half a small table is rightly a scan of it).
    monkeypatch.setattr(queries, "WALK", ROWS // 10)
    history_filter = FILTERS[name]
    recorder = Recorder(generated)
    conn = cast(Conn, recorder)
    total = queries.count(conn, history_filter, cap=10_000 if history_filter.text else None)
    queries.page(conn, history_filter, sort, descending, 0, PAGE)
    if not history_filter.text:
        queries.page(conn, history_filter, sort, descending, max(0, total - PAGE), PAGE)
        if sort == SortKey.CREATED_AT:
            queries.page(conn, history_filter, sort, descending, total // 2, PAGE)
    assert recorder.statements
    assert _explained(generated, recorder) == []


def _plain(
    conn: psycopg.Connection[dict[str, Any]],
    history_filter: HistoryFilter,
    sort: SortKey,
    descending: bool,
    offset: int,
) -> list[int]:
    clause, params = queries.where(history_filter)
    order = queries.order_by(sort, descending)
    rows = conn.execute(
        f"SELECT id FROM payouts{clause}{order} LIMIT %s OFFSET %s", [*params, PAGE, offset]
    ).fetchall()
    return [row["id"] for row in rows]


@pytest.mark.parametrize("descending", [True, False], ids=["desc", "asc"])
@pytest.mark.parametrize(
    "name", ["everything", "needs attention", "state REJECTED", "rejected usd", "profile"]
)
def test_a_page_far_down_in_time_order_is_the_plain_querys_page(
    generated: psycopg.Connection[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    descending: bool,
) -> None:
    monkeypatch.setattr(queries, "FAR_OFFSET", 100)  # the day counts answer on this table
    history_filter = FILTERS[name]
    conn = cast(Conn, generated)
    total = queries.count(conn, history_filter)
    assert total > 2 * queries.FAR_OFFSET + PAGE  # the per-day counts are what answer
    for offset in (queries.FAR_OFFSET + 1, total // 3, total // 2 - 7):
        page = queries.page(conn, history_filter, SortKey.CREATED_AT, descending, offset, PAGE)
        expected = _plain(generated, history_filter, SortKey.CREATED_AT, descending, offset)
        assert [row["id"] for row in page] == expected


@pytest.mark.parametrize("sort", [SortKey.CREATED_AT, SortKey.AMOUNT, SortKey.SITE_LOGIN])
@pytest.mark.parametrize("name", ["dense text", "rare text", "text and state"])
def test_a_search_page_is_the_plain_querys_page(
    generated: psycopg.Connection[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    sort: SortKey,
) -> None:
    history_filter = FILTERS[name]
    conn = cast(Conn, generated)
    for walk in (200_000, 300):  # the walk fills the page, or falls back
        monkeypatch.setattr(queries, "WALK", walk)
        for offset in (0, 20, 150):
            page = queries.page(conn, history_filter, sort, True, offset, PAGE)
            expected = _plain(generated, history_filter, sort, True, offset)
            assert expected or offset > 0
            assert [row["id"] for row in page] == expected


@pytest.mark.parametrize("sort", [SortKey.CREATED_AT, SortKey.AMOUNT])
def test_several_states_merge_to_the_plain_querys_page(
    generated: psycopg.Connection[dict[str, Any]], sort: SortKey
) -> None:
    history_filter = HistoryFilter(
        states=frozenset({State.REJECTED, State.UNKNOWN, State.NOT_SENT}), currency="USD"
    )
    conn = cast(Conn, generated)
    for offset in (0, 450):
        page = queries.page(conn, history_filter, sort, True, offset, PAGE)
        expected = _plain(generated, history_filter, sort, True, offset)
        assert len(expected) == PAGE
        assert [row["id"] for row in page] == expected


def test_the_day_counts_follow_every_write(
    generated: psycopg.Connection[dict[str, Any]],
) -> None:
    """The triggers kept the per-day counts equal to the payouts through the whole fill."""
    differing = generated.execute(
        "SELECT count(*) AS n FROM (SELECT state, currency, profile_id, "
        "created_at / 86400000 AS day, count(*) AS n FROM payouts GROUP BY 1, 2, 3, 4) AS real "
        "FULL JOIN payouts_day_counts AS kept USING (state, currency, profile_id, day) "
        "WHERE real.n IS DISTINCT FROM kept.n AND coalesce(kept.n, 0) <> 0"
    ).fetchone()
    assert differing == {"n": 0}


@pytest.mark.parametrize("name", ["everything", "state REJECTED", "profile"])
def test_the_middle_page_in_time_order_steps_over_one_day_at_most(
    generated: psycopg.Connection[dict[str, Any]], name: str
) -> None:
    """No OFFSET over half the history: the day counts bound the rows stepped over."""
    history_filter = FILTERS[name]
    recorder = Recorder(generated)
    total = queries.count(cast(Conn, recorder), history_filter)
    queries.page(cast(Conn, recorder), history_filter, SortKey.CREATED_AT, True, total // 2, PAGE)
    busiest = generated.execute(
        "SELECT max(n) AS n FROM (SELECT count(*) AS n FROM payouts "
        "GROUP BY created_at / 86400000) AS days"
    ).fetchone()
    assert busiest is not None
    offsets = [params[-1] for sql, params in recorder.statements if "OFFSET" in sql]
    assert offsets
    assert max(offsets) <= busiest["n"] < total // 4


def test_the_benchmarks_bounds_show_the_rows_the_store_shows(
    generated: psycopg.Connection[dict[str, Any]], generated_db: tuple[str, str]
) -> None:
    """A lower bound of another result would bound nothing: each hand-written query of
    ``benchmarks.pg_baselines`` shows the first page the store's own reads show."""
    url, password = generated_db
    conn = cast(Conn, generated)
    rejected_usd = HistoryFilter(states=frozenset({State.REJECTED}), currency="USD")
    everything = HistoryFilter()
    total = queries.count(conn, everything)
    expected = {
        "open": queries.page(conn, everything, SortKey.CREATED_AT, True, 0, PAGE),
        "filter_text": queries.page(
            conn, HistoryFilter(text=TEXT_QUERY), SortKey.CREATED_AT, True, 0, PAGE
        ),
        "sort_amount_filtered": queries.page(conn, rejected_usd, SortKey.AMOUNT, True, 0, PAGE),
        "jump_middle": queries.page(conn, everything, SortKey.CREATED_AT, True, total // 2, PAGE),
    }
    with psycopg.connect(url, password=password, autocommit=True) as plain:
        bounds = pg_baselines.queries(ROWS)
        for name, rows in expected.items():
            assert len(rows) == PAGE
            assert [row[0] for row in bounds[name](plain)] == [row["id"] for row in rows], name
        events = bounds["details"](plain)
    record = timeline_ids(ROWS)[1]
    timeline = generated.execute(
        "SELECT id FROM events WHERE record_id = %s ORDER BY id", (record,)
    ).fetchall()
    assert [row[0] for row in events] == [row["id"] for row in timeline]
    assert len(events) == 20


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


def _plan(
    conn: psycopg.Connection[dict[str, Any]], sql: str, params: Any, *, analyze: bool = False
) -> dict[str, Any]:
    options = "ANALYZE, FORMAT JSON" if analyze else "FORMAT JSON"
    row = conn.execute(f"EXPLAIN ({options}) {sql}", params).fetchone()
    assert row is not None
    return cast(dict[str, Any], next(iter(row.values()))[0]["Plan"])


def test_the_day_totals_follow_every_write(
    generated: psycopg.Connection[dict[str, Any]],
) -> None:
    """The triggers kept one total per UTC day equal to the payouts through the whole fill."""
    differing = generated.execute(
        "SELECT count(*) AS n FROM (SELECT created_at / 86400000 AS day, count(*) AS n "
        "FROM payouts GROUP BY 1) AS real FULL JOIN payouts_day_totals AS kept USING (day) "
        "WHERE real.n IS DISTINCT FROM kept.n AND coalesce(kept.n, 0) <> 0"
    ).fetchone()
    assert differing == {"n": 0}
    days = generated.execute("SELECT count(*) AS n FROM payouts_day_totals").fetchone()
    assert days is not None and 300 < days["n"] < 1_000  # one row per day of the history


@pytest.mark.parametrize("descending", [True, False], ids=["desc", "asc"])
@pytest.mark.parametrize("name", ["everything", "state REJECTED", "profile"])
def test_a_middle_jump_finds_its_day_in_one_statement_and_steps_over_index_entries_only(
    generated: psycopg.Connection[dict[str, Any]], name: str, descending: bool
) -> None:
    """The day is found by one statement over one row per day (the day totals for the
    whole history: no sum over every filter's per-day counts), and the rows of that day
    before the page are stepped over in an index-only scan, never read from the table."""
    history_filter = FILTERS[name]
    recorder = Recorder(generated)
    conn = cast(Conn, recorder)
    total = queries.count(conn, history_filter)
    recorder.statements.clear()
    rows = queries.page(conn, history_filter, SortKey.CREATED_AT, descending, total // 2, PAGE)
    assert [row["id"] for row in rows] == _plain(
        generated, history_filter, SortKey.CREATED_AT, descending, total // 2
    )
    day_reads = [sql for sql, _ in recorder.statements if "payouts_day_" in sql]
    assert len(day_reads) == 1
    table = "payouts_day_totals" if name == "everything" else "payouts_day_counts"
    assert table in day_reads[0]
    stepped = [(sql, params) for sql, params in recorder.statements if "OFFSET" in sql]
    assert len(stepped) == 1
    plan = _plan(generated, *stepped[0])
    offsets = [node for node in _nodes(plan) if node["Node Type"] == "Limit"]
    assert offsets
    skipped = list(_nodes(offsets[0]))[1:]
    assert any(node["Node Type"] == "Index Only Scan" for node in skipped)
    assert not any(node["Node Type"] in ("Index Scan", "Seq Scan") for node in skipped)


@pytest.mark.parametrize("sort", [SortKey.CREATED_AT, SortKey.AMOUNT, SortKey.SITE_LOGIN])
def test_a_dense_search_walks_only_as_far_as_its_page(
    generated: psycopg.Connection[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    sort: SortKey,
) -> None:
    """The walk is not read whole and sorted: its rows come in the order's own index order
    and the executor stops at the page's last match, long before the walk's bound."""
    monkeypatch.setattr(queries, "WALK", ROWS)
    recorder = Recorder(generated)
    history_filter = HistoryFilter(text=DENSE_WORD)
    rows = queries.page(cast(Conn, recorder), history_filter, sort, True, 0, PAGE)
    assert [row["id"] for row in rows] == _plain(generated, history_filter, sort, True, 0)
    assert len(recorder.statements) == 1  # no count, no second read: the walk found the page
    plan = _plan(generated, *recorder.statements[0], analyze=True)
    nodes = list(_nodes(plan))
    assert not any(node["Node Type"] in ("Sort", "Incremental Sort") for node in nodes)
    walked = [node for node in nodes if node.get("Relation Name") == "payouts"]
    assert len(walked) == 1 and walked[0]["Node Type"] == "Index Scan"
    assert walked[0]["Actual Rows"] < ROWS * 3 // 4  # a walk read whole would read ROWS
