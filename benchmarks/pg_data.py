"""A PostgreSQL cluster of the benchmarks' own and the 10M-payout team history inside it.

The cluster (``tests.pg_cluster.PgServer``, shared with the test suite's throwaway one) is
started by the benchmark itself on a free loopback port (as the ``postgres`` user when run
as root: PostgreSQL refuses root), its data folder cached under ``benchmarks/data/`` keyed
by the server's major version, the row count and ``GENERATOR_VERSION``, so a second run
reuses it. The history is generated server-side in SQL (``generate_series``, one
``INSERT ... SELECT``) with the distribution of ``benchmarks/generate.py``: five profiles,
every method with its currencies, every state, log-uniform amounts, two years of
timestamps, masked request JSON, a login pool, an applied callback for every fourth accepted
payout, and a 20-event timeline on ``timeline_ids``.

The schema is the app's: the store migrates the empty database first; the bulk insert then
runs without the payouts' indexes and with triggers off (``session_replication_role``) in
the transaction that emptied the tables (no WAL), the tables are vacuumed before any index
exists, the indexes are rebuilt from their own definitions over several connections at
once, and the summaries the triggers keep are computed in one pass over the payouts.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from benchmarks.common import DATA
from benchmarks.generate import (
    _FIRST,
    _LAST,
    _MAJOR_RANGE,
    END_MS,
    METHOD_CURRENCIES,
    PROFILES,
    SPAN_MS,
    STATES,
    TIMELINE_EVENTS,
    free_disk_gb,
    timeline_ids,
)
from tests.pg_cluster import (
    PgServer,
    PostgresUnavailableError,
    find_bindir,
    server_major,
)

GENERATOR_VERSION = 1
PG_ROWS = 10_000_000
SUPERUSER = "bench_owner"
DATABASE = "cactus_bench"
#: Connections (and parallel workers) the build spreads its index builds over.
BUILD_WORKERS = max(2, min(8, os.cpu_count() or 2))


PostgresMissingError = PostgresUnavailableError  # no server binaries: the group is skipped


class BenchCluster(PgServer):
    """The benchmarks' cluster over a cached data folder; ``initdb`` it if new, ``start``."""

    def __init__(self, root: Path) -> None:
        sockets = Path(tempfile.mkdtemp(prefix="cactus-bench-pg-"))
        super().__init__(root, SUPERUSER, sockets)
        self.own(sockets)
        self.secret = root / "password"

    @property
    def password(self) -> str:
        """The superuser's password (kept in the git-ignored cache folder, mode 0600)."""
        return self.secret.read_text(encoding="utf-8").strip()

    def initdb(self, password: str = "") -> None:
        """A new cluster in ``root`` (which must not hold one), with a new password."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.secret.write_text((password or secrets.token_urlsafe(16)) + "\n", encoding="utf-8")
        self.secret.chmod(0o600)
        super().initdb(self.password)

    def start(self, settings: Mapping[str, str] | None = None, *, durable: bool = True) -> None:
        """Start the server; ``durable=False`` (the bulk build only) turns fsync off."""
        tuned = {
            "max_connections": "100",
            "shared_buffers": "1GB",
            "effective_cache_size": "8GB",
            "maintenance_work_mem": "1GB",
            "work_mem": "64MB",
            "max_worker_processes": str(max(8, BUILD_WORKERS + 4)),
            "max_parallel_workers": str(max(8, BUILD_WORKERS)),
            "max_parallel_maintenance_workers": str(max(2, BUILD_WORKERS - 1)),
            "random_page_cost": "1.1",
            "wal_level": "minimal",
            "max_wal_senders": "0",
            "max_wal_size": "8GB",
            "checkpoint_timeout": "30min",
            "fsync": "on" if durable else "off",
            "full_page_writes": "on" if durable else "off",
            "synchronous_commit": "on",
        }
        super().start({**tuned, **(settings or {})}, timeout=600)

    def stop(self, mode: str = "fast", *, timeout: float = 600) -> None:
        """Stop the server cleanly (a checkpoint), then flush the files to disk."""
        super().stop(mode, timeout=timeout)
        os.sync()

    def close(self) -> None:
        """Stop if running; remove the socket folder (never the cached data)."""
        with contextlib.suppress(RuntimeError):
            self.stop()
        shutil.rmtree(self.sockets, ignore_errors=True)

    def url(self, db: str = DATABASE) -> str:
        """A password-less URL (the password is passed apart)."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{db}"


def cache_root(rows: int) -> Path:
    """The cached cluster folder for ``rows`` payouts on this server version."""
    return DATA / f"pg{server_major(find_bindir())}-{rows}-gen{GENERATOR_VERSION}"


@contextlib.contextmanager
def bench_cluster(rows: int = PG_ROWS, *, log: bool = True) -> Iterator[BenchCluster]:
    """The running cluster holding the generated history of ``rows`` payouts.

    Generated on first use (into a ``.partial`` folder renamed when complete); stopped when
    the block ends. Raises ``PostgresMissingError`` when the server binaries are absent.
    """
    root = cache_root(rows)
    if not root.exists():
        partial = root.with_name(root.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        started = time.perf_counter()
        if log:
            print(
                f"Generating {rows:,} payouts in PostgreSQL into {root.name} "
                f"(needs ~{rows * 1.5e-6:.0f} GB, {free_disk_gb():.0f} GB free) ...",
                flush=True,
            )
        cluster = BenchCluster(partial)
        try:
            cluster.initdb()
            cluster.start(durable=False)
            generate(cluster, rows, log=log)
        finally:
            cluster.close()
        partial.rename(root)
        if log:
            print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    cluster = BenchCluster(root)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.close()


def _connect(cluster: BenchCluster, db: str = DATABASE):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(cluster.url(db), password=cluster.password, autocommit=True)


def _pick(weights: list[tuple[str, int]], r: str) -> str:
    """A CASE choosing a value by the uniform column ``r`` with the given weights."""
    total = sum(weight for _, weight in weights)
    parts, edge = [], 0
    for value, weight in weights[:-1]:
        edge += weight
        parts.append(f"WHEN {r} < {edge / total!r} THEN '{value}'")
    return f"CASE {' '.join(parts)} ELSE '{weights[-1][0]}' END"


def _array(values: list[str] | tuple[str, ...]) -> str:
    return "(ARRAY[" + ", ".join(f"'{value}'" for value in values) + "]::text[])"


def payouts_sql(rows: int) -> str:
    """One ``INSERT ... SELECT`` writing ``rows`` payouts (ids 1..rows, oldest first)."""
    methods = [m for m, _, w in METHOD_CURRENCIES for _ in range(w)]
    currencies = [c for _, c, w in METHOD_CURRENCIES for _ in range(w)]
    profile_case = _pick([(str(index), p.weight) for index, p in enumerate(PROFILES, 1)], "rp")
    state_case = _pick(list(STATES), "rs")
    step = SPAN_MS // rows
    start = END_MS - SPAN_MS
    low = (
        "CASE currency "
        + " ".join(f"WHEN '{c}' THEN {lo}" for c, (lo, _) in _MAJOR_RANGE.items())
        + " END"
    )
    high = (
        "CASE currency "
        + " ".join(f"WHEN '{c}' THEN {hi}" for c, (_, hi) in _MAJOR_RANGE.items())
        + " END"
    )
    firsts, lasts = _array(_FIRST), _array(_LAST)
    p = (
        "(ARRAY["
        + ", ".join(
            f"ROW('{x.id}', '{x.name}', '{x.environment}', '{x.merchant_id}', {x.site_id})"
            "::bench_profile"
            for x in PROFILES
        )
        + "])"
    )
    return f"""
INSERT INTO payouts (id, created_at, updated_at, profile_id, profile_name, environment,
    merchant_id, site_id, request_id, invoice_id, site_login, method, currency, amount_minor,
    state, gateway_status, message, detail, http_status, request_json, response_json,
    unknown_kind)
SELECT id, created_at, updated_at, (pr).id, (pr).name, (pr).environment, (pr).merchant_id,
    (pr).site_id, request_id, invoice_id, site_login, method, currency, amount_minor, state,
    gateway_status, message, detail, http_status,
    '{{"additional_fields": ' || fields || ', "amount": ' || amount_minor
        || ', "currency": "' || currency || '", "merchant_id": "' || (pr).merchant_id
        || '", "method": "' || method || '", "request_id": "' || request_id
        || '", "site_id": ' || (pr).site_id || ', "site_login": "' || site_login || '"}}',
    response_json, unknown_kind
FROM (
    SELECT *,
        CASE state WHEN 'ACCEPTED' THEN
            '{{"invoice_id": "' || invoice_id || '", "message": "' || message
            || '", "request_id": "' || request_id || '", "status": ' || gateway_status
            || ', "success": true}}'
        WHEN 'REJECTED' THEN '{{"message": "' || message
            || '", "status": false, "success": false}}'
        WHEN 'UNKNOWN' THEN CASE WHEN unknown_kind = 'http_error'
            THEN '{{"raw_body": "<html><body>502 Bad Gateway</body></html>"}}' END
        END AS response_json,
        CASE WHEN method = 'card' THEN '{{"card_holder": "' || holder
                || '", "card_number": "' || (ARRAY['411111', '553691', '220220', '427600'])
                [1 + (id % 4)::int] || '******' || lpad((id * 7919 % 10000)::text, 4, '0') || '"}}'
            WHEN method IN ('sbp', 'MTS', 'WalletM10', 'Emanat', 'PIX')
                THEN '{{"phone_number": "+' || (10000000000 + id * 104729 % 90000000000) || '"}}'
            WHEN method = 'localbanks' THEN '{{"account_holder": "' || holder
                || '", "account_number": "' || (1000000000000000 + id * 15485863) || '", '
                || '"bank_name": "Sberbank"}}'
            WHEN method IN ('skrill', 'wise', 'papara') THEN '{{"' || method || '_account": "'
                || lower(split_part(holder, ' ', 1)) || '@example", "' || method
                || '_holder": "' || holder || '"}}'
            ELSE '{{}}' END AS fields
    FROM (
        SELECT *,
            CASE state WHEN 'ACCEPTED' THEN (7000000 + 2 * id + (r2 * 2)::int)::text END
                AS invoice_id,
            CASE state WHEN 'ACCEPTED' THEN (ARRAY[1, 2, 3, 3, 3])[1 + (r2 * 5)::int % 5]
                WHEN 'REJECTED' THEN (ARRAY[NULL, NULL, 5, NULL, 6])[1 + (r2 * 5)::int % 5]
                END AS gateway_status,
            CASE state
                WHEN 'ACCEPTED' THEN (ARRAY['Payout initialized', 'Payout created',
                    'Invoice created'])[1 + (r3 * 3)::int % 3]
                WHEN 'REJECTED' THEN (ARRAY['Insufficient funds on balance',
                    'Method is not available for this currency', 'Recipient account is blocked',
                    'Amount exceeds the daily limit', 'Invalid recipient details'])
                    [1 + (r2 * 5)::int % 5]
                WHEN 'UNKNOWN' THEN (ARRAY['No answer in time',
                    'The connection was reset before the answer arrived',
                    'The answer was not signed with this profile''s salt',
                    'The gateway answered HTTP 502'])[1 + (r2 * 4)::int % 4]
                WHEN 'NOT_SENT' THEN 'The salt could not be read from the keyring'
                ELSE '' END AS message,
            CASE state WHEN 'UNKNOWN' THEN 'The payout may exist at the gateway. Check it '
                || 'there before sending again.' ELSE '' END AS detail,
            CASE WHEN state = 'REJECTED' THEN 200
                WHEN state = 'UNKNOWN' AND (r2 * 4)::int % 4 = 3 THEN 502 END AS http_status,
            CASE state WHEN 'UNKNOWN' THEN (ARRAY['timeout', 'connection', 'bad_signature',
                'http_error'])[1 + (r2 * 4)::int % 4] END AS unknown_kind,
            CASE state WHEN 'UNKNOWN' THEN created_at + 180000
                WHEN 'SUBMITTING' THEN created_at
                ELSE created_at + 150 + (r3 * 4000)::bigint END AS updated_at,
            (CASE WHEN currency = 'VND' THEN amount_major
                ELSE amount_major * 100 + CASE WHEN r4 < 0.3 THEN (r5 * 100)::bigint % 100
                    ELSE 0 END END) AS amount_minor,
            initcap({firsts}[1 + (id * 31 % {len(_FIRST)})::int]) || ' '
                || initcap({lasts}[1 + (id * 17 % {len(_LAST)})::int]) AS holder,
            CASE login_no % 4
                WHEN 0 THEN fst || '.' || lst || (login_no / 7 % 100)
                WHEN 1 THEN fst || '_' || left(lst, 3) || (1000 + login_no / 7 % 9000)
                WHEN 2 THEN 'player' || (1 + login_no * 7919 % 9999999)
                ELSE fst || lst || '@mail.example' END AS site_login,
            'cd-' || to_char(to_timestamp(created_at / 1000.0) AT TIME ZONE 'UTC', 'YYYYMMDD')
                || '-' || lpad(to_hex((id * 1099511627 + 12345) % 1099511627776), 10, '0')
                AS request_id
        FROM (
            SELECT *,
                floor({low} * power(({high})::float8 / {low}, r1))::bigint AS amount_major,
                {firsts}[1 + (login_no * 13 % {len(_FIRST)})::int] AS fst,
                {lasts}[1 + (login_no / 3 % {len(_LAST)})::int] AS lst
            FROM (
                SELECT g AS id,
                    {start} + (g - 1) * {step} + (random() * {step - 1})::bigint AS created_at,
                    {p}[({profile_case})::int] AS pr,
                    {state_case} AS state,
                    {_array(methods)}[1 + (rm * {len(methods)})::int % {len(methods)}] AS method,
                    {_array(currencies)}[1 + (rm * {len(methods)})::int % {len(methods)}]
                        AS currency,
                    (random() * {max(10, rows // 20)})::bigint AS login_no,
                    random() AS r1, random() AS r2, random() AS r3, random() AS r4,
                    random() AS r5
                FROM (SELECT g, random() AS rm, random() AS rp, random() AS rs
                    FROM generate_series(1::bigint, {rows}) g) s
            ) a
        ) b
    ) c
) d
"""


EVENTS_SQL = """
INSERT INTO events (received_at, record_id, source, outcome, request_id, invoice_id, status,
    payload_json)
SELECT updated_at + 5000, id, 'gateway', 'applied', request_id, invoice_id, gateway_status,
    json_build_object('amount', amount_minor, 'currency', currency, 'invoice_id', invoice_id,
        'request_id', request_id, 'site_id', site_id, 'status', gateway_status)::text
FROM payouts WHERE state = 'ACCEPTED' AND id % 4 = 0 ORDER BY id
"""

# Twenty events on one record: callbacks applied, repeated, late, rejected, an import, manual.
TIMELINE_SQL = f"""
INSERT INTO events (received_at, record_id, source, who, outcome, reason, message, request_id,
    invoice_id, status, payload_json)
SELECT p.updated_at + 60000 * k, p.id, (kind).source, CASE (kind).source WHEN 'manual'
        THEN 'clerk' ELSE '' END, (kind).outcome, (kind).reason,
    CASE (kind).source WHEN 'manual' THEN 'Checked with the gateway''s support' ELSE '' END,
    p.request_id, coalesce(p.invoice_id, ''), (kind).status,
    json_build_object('amount', p.amount_minor, 'currency', p.currency, 'invoice_id',
        coalesce(p.invoice_id, ''), 'request_id', p.request_id, 'site_id', p.site_id,
        'status', (kind).status)::text
FROM payouts p, generate_series(1, {TIMELINE_EVENTS}) k,
    LATERAL (SELECT (ARRAY[
        ROW('gateway', 'applied', '', 1), ROW('gateway', 'applied', '', 2),
        ROW('gateway', 'duplicate', '', 2), ROW('gateway', 'applied', '', 3),
        ROW('gateway', 'stale', '', 2), ROW('gateway', 'rejected', 'bad_signature', 4),
        ROW('gateway', 'duplicate', '', 3), ROW('import', 'duplicate', '', 3),
        ROW('gateway', 'applied', '', 4), ROW('manual', 'applied', '', 4)
    ]::bench_event[])[1 + (k - 1) %% 10] AS kind) t
WHERE p.id = ANY(%s) ORDER BY p.id, k
"""


def generate(cluster: BenchCluster, rows: int, *, log: bool = True) -> None:
    """Create the database, migrate it through the store, and fill it (see the module)."""
    from cactus_desk.history.postgres.store import PostgresHistoryStore

    started = time.perf_counter()

    def phase(name: str) -> None:
        if log:
            print(f"  {name}: {time.perf_counter() - started:.0f} s", flush=True)

    with _connect(cluster, "postgres") as conn:
        conn.execute(f"CREATE DATABASE {DATABASE}")
    with tempfile.TemporaryDirectory() as local:
        PostgresHistoryStore(
            cluster.url(), password=cluster.password, local_dir=Path(local)
        ).close()
    with _connect(cluster) as conn:
        conn.execute("SET session_replication_role = replica")  # no triggers, no FK checks
        derived = [
            (name, definition)
            for name, definition in conn.execute(
                "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid "
                "JOIN pg_class t ON t.oid = i.indrelid "
                "WHERE t.relname IN ('payouts', 'events') AND NOT i.indisprimary "
                "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)"
                " ORDER BY c.oid"
            )
        ]
        for name, _ in derived:
            conn.execute(f'DROP INDEX "{name}"')
        with conn.transaction():
            # Tables emptied in the writing transaction are written without WAL
            # (wal_level=minimal): half the disk writes of the bulk load.
            conn.execute("TRUNCATE payouts, events, resends CASCADE")  # and what refers to them
            fill(conn, rows, phase)
        phase("events written")
        # Before the indexes: a vacuum of a table without them only sets the hint bits and
        # the visibility map (which the index-only scans need), and no index is read twice.
        conn.execute("VACUUM (FREEZE) payouts")
        conn.execute("VACUUM (FREEZE) events")
        phase("vacuumed")
    build_indexes(cluster, [definition for _, definition in derived])
    phase("indexes built")
    with _connect(cluster) as conn:
        rebuild_counts(conn)
        phase("counts rebuilt")
        conn.execute("ANALYZE payouts")
        conn.execute("ANALYZE events")
        phase("analysed")


def build_indexes(cluster: BenchCluster, definitions: list[str]) -> None:
    """Run ``definitions`` over ``BUILD_WORKERS`` connections at once, longest first.

    The trigram (GIN) builds use one core each however many there are, so they start first
    and side by side; the B-tree builds after them also take parallel workers of their own.
    """
    ordered = sorted(definitions, key=lambda sql: " USING gin " not in sql)
    queue = iter(ordered)
    lock = threading.Lock()
    memory_mb = max(256, min(2048, 4096 // BUILD_WORKERS))

    def worker() -> None:
        with _connect(cluster) as conn:
            conn.execute(f"SET maintenance_work_mem = '{memory_mb}MB'")
            while True:
                with lock:
                    definition = next(queue, None)
                if definition is None:
                    return
                conn.execute(definition)

    with concurrent.futures.ThreadPoolExecutor(BUILD_WORKERS) as pool:
        for done in [pool.submit(worker) for _ in range(BUILD_WORKERS)]:
            done.result()


def fill(conn, rows: int, phase: Callable[[str], None] = print) -> None:  # type: ignore[no-untyped-def]
    """Write ``rows`` generated payouts (ids from 1) and their events through ``conn``.

    Works with the triggers on as well (the tests' modest tables keep their counts so).
    """
    conn.execute(
        "CREATE TYPE bench_profile AS (id text, name text, environment text, "
        "merchant_id text, site_id bigint)"
    )
    conn.execute(
        "CREATE TYPE bench_event AS (source text, outcome text, reason text, status bigint)"
    )
    conn.execute("SELECT setseed(0.6)")
    conn.execute(payouts_sql(rows))
    phase("payouts written")
    conn.execute(EVENTS_SQL)
    conn.execute(TIMELINE_SQL, (list(timeline_ids(rows)),))
    conn.execute("DROP TYPE bench_profile")
    conn.execute("DROP TYPE bench_event")
    for table in ("payouts", "events"):
        conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"(SELECT coalesce(max(id), 1) FROM {table}))"
        )


def rebuild_counts(conn) -> None:  # type: ignore[no-untyped-def]
    """Every summary the migrations keep by trigger, rebuilt in one pass over the payouts.

    The per-day counts are the finest; the per-filter counts and the per-day totals are
    sums of them.
    """
    from cactus_desk.history.postgres.migrations import (
        COUNTS_TABLE,
        DAY_COUNTS_TABLE,
        DAY_MS,
        DAY_TOTALS_TABLE,
    )

    for table in (COUNTS_TABLE, DAY_COUNTS_TABLE, DAY_TOTALS_TABLE):
        conn.execute(f"DELETE FROM {table}")
    conn.execute(
        f"INSERT INTO {DAY_COUNTS_TABLE} (state, currency, profile_id, day, n) "
        f"SELECT state, currency, profile_id, created_at / {DAY_MS}, count(*) FROM payouts "
        "GROUP BY 1, 2, 3, 4"
    )
    conn.execute(
        f"INSERT INTO {COUNTS_TABLE} (state, currency, profile_id, n) "
        f"SELECT state, currency, profile_id, sum(n) FROM {DAY_COUNTS_TABLE} GROUP BY 1, 2, 3"
    )
    conn.execute(
        f"INSERT INTO {DAY_TOTALS_TABLE} (day, n) "
        f"SELECT day, sum(n) FROM {DAY_COUNTS_TABLE} GROUP BY 1"
    )
