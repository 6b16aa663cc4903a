"""A payout history of realistic records (1M and 5M), generated once and cached on disk.

The file is built through ``HistoryStore`` (so it has the real schema and every migration),
then filled in one transaction with ``executemany``. Secondary indexes, the text index and
its triggers are dropped for the bulk insert and rebuilt afterwards from their own stored
SQL: building an index from sorted input is several times faster than updating it row by
row, and the schema ends up exactly as the migrations made it.

The cache is keyed by the schema version and ``GENERATOR_VERSION``, so a new migration or a
change here makes the next run build a fresh file.

Besides the payouts it writes the events table the way a real history holds it: one applied
gateway callback for every fourth accepted payout (written by SQL from the payouts, in C
speed), and a 20-event timeline (callbacks, duplicates, late and rejected ones, a manual
change) for each record of ``timeline_ids`` (the details benchmarks open those).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.app_api import (
    SCHEMA_VERSION,
    HistoryStore,
    rebuild_counts,
    rebuild_local_totals,
    rebuild_search_index,
)
from benchmarks.common import flush_writes

GENERATOR_VERSION = 2
DEFAULT_ROWS = 1_000_000
LARGE_ROWS = 5_000_000
TIMELINE_EVENTS = 20
DATA_DIR = Path(__file__).resolve().parent / "data"

# Two years of history ending on a fixed day, so every build holds the same records.
END_MS = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp() * 1000)
SPAN_MS = 2 * 365 * 24 * 3600 * 1000


@dataclass(frozen=True)
class _Profile:
    id: str
    name: str
    environment: str
    merchant_id: str
    site_id: int
    weight: int


PROFILES = (
    _Profile("p-main", "Main shop", "live", "m_cactus_main", 101, 50),
    _Profile("p-eu", "EU desk", "live", "m_cactus_eu", 204, 20),
    _Profile("p-asia", "Asia payouts", "live", "m_cactus_asia", 318, 15),
    _Profile("p-sandbox", "Sandbox", "sandbox", "sandbox", 101, 10),
    _Profile("p-qa", "QA sandbox", "sandbox", "m_qa", 7, 5),
)

# (method, currency, weight): every method of the catalog with each of its currencies.
METHOD_CURRENCIES = (
    *(("card", c, 12) for c in ("USD", "EUR", "RUB", "UAH", "IDR", "AZN", "VND")),
    ("sbp", "RUB", 20),
    ("sbp_qr", "RUB", 4),
    ("MTS", "RUB", 3),
    ("WalletM10", "AZN", 3),
    ("Emanat", "AZN", 3),
    *(("localbanks", c, 4) for c in ("USD", "EUR", "RUB", "UAH", "IDR", "AZN", "VND")),
    *(("cash", c, 1) for c in ("USD", "EUR", "RUB", "UAH", "IDR", "AZN", "VND")),
    ("binance", "USDT", 8),
    ("skrill", "USD", 2),
    ("skrill", "EUR", 2),
    ("wise", "USD", 2),
    ("wise", "EUR", 2),
    ("papara", "USD", 1),
    ("papara", "EUR", 1),
    ("PIX", "USD", 3),
)

# Typical payouts in major units per currency; VND has no minor unit.
_MAJOR_RANGE = {
    "USD": (5, 5_000),
    "EUR": (5, 5_000),
    "USDT": (10, 20_000),
    "RUB": (300, 500_000),
    "UAH": (100, 200_000),
    "IDR": (50_000, 50_000_000),
    "AZN": (10, 10_000),
    "VND": (100_000, 100_000_000),
}

ACCEPTED_MESSAGES = ("Payout initialized", "Payout created", "Invoice created")
REJECTED = (
    (None, "Insufficient funds on balance"),
    (None, "Method is not available for this currency"),
    (5, "Recipient account is blocked"),
    (None, "Amount exceeds the daily limit"),
    (6, "Invalid recipient details"),
)
UNKNOWN = (
    ("timeout", "No answer in time"),
    ("connection", "The connection was reset before the answer arrived"),
    ("bad_signature", "The answer was not signed with this profile's salt"),
    ("http_error", "The gateway answered HTTP 502"),
)
NOT_SENT_MESSAGE = "The salt could not be read from the keyring"
# (state, weight): SUBMITTING is left only by a crash mid-send, so it is rare.
STATES = (
    ("ACCEPTED", 8000),
    ("REJECTED", 1300),
    ("UNKNOWN", 300),
    ("NOT_SENT", 390),
    ("SUBMITTING", 10),
)

_FIRST = (  # noqa: SIM905 - a word list reads best as text
    "ivan anna maria oleg dmitry elena sergey olga alex natalia andrey irina pavel yulia "
    "nikita daria artem sofia maxim polina budi siti agus dewi rizky putri nguyen linh "
    "minh thao ali leyla rashad aysel elvin nigar john mary peter laura tomas eva lukas "
    "mia"
).split()
_LAST = (  # noqa: SIM905 - a word list reads best as text
    "petrov ivanova smirnov kuznetsova popov sokolova lebedev kozlova novikov morozova "
    "santoso wijaya hartono tran pham hoang aliyev mammadova huseynov quliyeva "
    "shevchenko bondarenko kovalenko tkachenko smith brown garcia muller schmidt weber"
).split()
_BANKS = ("Sberbank", "Tinkoff", "Alfa-Bank", "Monobank", "PrivatBank", "BCA", "Mandiri", "Kapital")

_COLUMNS = (
    "id, created_at, updated_at, profile_id, profile_name, environment, merchant_id, site_id, "
    "request_id, invoice_id, site_login, method, currency, amount_minor, state, gateway_status, "
    "message, detail, http_status, request_json, response_json, unknown_kind"
)


def cache_path(rows: int = DEFAULT_ROWS) -> Path:
    """Where the generated history for ``rows`` records and this schema is cached."""
    return DATA_DIR / f"history-{rows}-schema{SCHEMA_VERSION}-gen{GENERATOR_VERSION}.sqlite3"


def timeline_ids(rows: int) -> tuple[int, int]:
    """The records with a 20-event timeline: one in the middle, and row 120 of the newest."""
    return (rows // 2, max(1, rows - 120))


def _logins(rng: random.Random, count: int) -> list[str]:
    logins = set()
    while len(logins) < count:
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        style = rng.randrange(4)
        if style == 0:
            logins.add(f"{first}.{last}{rng.randrange(100)}")
        elif style == 1:
            logins.add(f"{first}_{last[:3]}{rng.randrange(1000, 9999)}")
        elif style == 2:
            logins.add(f"player{rng.randrange(1, 10_000_000)}")
        else:
            logins.add(f"{first}{last}@mail.example")
    return sorted(logins)


def _fields_json(rng: random.Random, method: str, holder: str) -> str:
    """The masked additional fields as the store keeps them (sorted keys, JSON)."""
    # Hand-built JSON: every value here is plain ASCII, and json.dumps would double the run time.
    if method == "card":
        bin_ = rng.choice(("411111", "553691", "220220", "427600"))
        return (
            f'{{"card_holder": "{holder}", '
            f'"card_number": "{bin_}******{rng.randrange(10_000):04d}"}}'
        )
    if method in ("sbp", "MTS", "WalletM10", "Emanat", "PIX"):
        return f'{{"phone_number": "+{rng.randrange(10**10, 10**11)}"}}'
    if method == "localbanks":
        return (
            f'{{"account_holder": "{holder}", "account_number": "{rng.randrange(10**15, 10**16)}", '
            f'"bank_name": "{rng.choice(_BANKS)}"}}'
        )
    if method in ("skrill", "wise", "papara"):
        account = holder.split()[0].lower()
        return f'{{"{method}_account": "{account}@example", "{method}_holder": "{holder}"}}'
    return "{}"


@dataclass(frozen=True)
class _Part:
    """One slice of the history, generated independently (ids, times and invoices apart)."""

    first_id: int
    rows: int
    seed: int
    start_ms: int
    end_ms: int
    invoice_base: int
    login_pool: int


def _records(part: _Part) -> Iterator[tuple]:
    rows = part.rows
    logins = random.Random(-part.seed).choices(_logins(random.Random(0), part.login_pool), k=rows)
    rng = random.Random(part.seed)
    holders = rng.choices([f"{f.title()} {s.title()}" for f in _FIRST for s in _LAST], k=rows)
    profiles = rng.choices(PROFILES, weights=[p.weight for p in PROFILES], k=rows)
    pairs = rng.choices(METHOD_CURRENCIES, weights=[w for *_, w in METHOD_CURRENCIES], k=rows)
    states = rng.choices([s for s, _ in STATES], weights=[w for _, w in STATES], k=rows)
    # Sorted times, so ids follow creation order as they do in a real history.
    times = sorted(rng.randrange(part.start_ms, part.end_ms) for _ in range(rows))
    ranges = {code: (low, high / low) for code, (low, high) in _MAJOR_RANGE.items()}
    invoice = part.invoice_base
    day_cache: dict[int, str] = {}
    random_ = rng.random
    for index in range(rows):
        profile = profiles[index]
        method, currency, _ = pairs[index]
        state = states[index]
        created = times[index]
        day_key = created // 86_400_000
        day = day_cache.get(day_key)
        if day is None:
            day = datetime.fromtimestamp(created / 1000, tz=UTC).strftime("%Y%m%d")
            day_cache[day_key] = day
        request_id = f"cd-{day}-{rng.getrandbits(40):010x}"
        login = logins[index]
        low, ratio = ranges[currency]
        amount = int(low * ratio ** random_())
        if currency != "VND":
            amount = amount * 100 + (int(random_() * 100) if random_() < 0.3 else 0)
        request_json = (
            f'{{"additional_fields": {_fields_json(rng, method, holders[index])}, '
            f'"amount": {amount}, "currency": "{currency}", '
            f'"merchant_id": "{profile.merchant_id}", "method": "{method}", '
            f'"request_id": "{request_id}", "site_id": {profile.site_id}, '
            f'"site_login": "{login}"}}'
        )
        invoice_id = gateway_status = http_status = response = unknown_kind = None
        detail = ""
        updated = created + 150 + int(random_() * 4000)
        if state == "ACCEPTED":
            invoice += 1 + int(random_() * 3)
            invoice_id = str(invoice)
            gateway_status = (1, 2, 3, 3, 3)[int(random_() * 5)]
            message = ACCEPTED_MESSAGES[int(random_() * len(ACCEPTED_MESSAGES))]
            response = (
                f'{{"invoice_id": "{invoice_id}", "message": "{message}", '
                f'"request_id": "{request_id}", "status": {gateway_status}, "success": true}}'
            )
        elif state == "REJECTED":
            gateway_status, message = rng.choice(REJECTED)
            http_status = 200
            response = f'{{"message": "{message}", "status": false, "success": false}}'
        elif state == "UNKNOWN":
            unknown_kind, message = rng.choice(UNKNOWN)
            detail = "The payout may exist at the gateway. Check it there before sending again."
            if unknown_kind == "http_error":
                http_status = 502
                response = '{"raw_body": "<html><body>502 Bad Gateway</body></html>"}'
            updated = created + 180_000
        elif state == "NOT_SENT":
            message = NOT_SENT_MESSAGE
        else:
            message = ""
            updated = created
        yield (
            part.first_id + index,
            created,
            updated,
            profile.id,
            profile.name,
            profile.environment,
            profile.merchant_id,
            profile.site_id,
            request_id,
            invoice_id,
            login,
            method,
            currency,
            amount,
            state,
            gateway_status,
            message,
            detail,
            http_status,
            request_json,
            response,
            unknown_kind,
        )


def _derived_objects(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """(type, name, sql) of every index and trigger the migrations made, in creation order."""
    return [
        (kind, name, sql)
        for kind, name, sql in conn.execute(
            "SELECT type, name, sql FROM sqlite_master "
            "WHERE type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY rowid"
        )
    ]


def _insert(conn: sqlite3.Connection, part: _Part) -> None:
    placeholders = ", ".join("?" * len(_COLUMNS.split(",")))
    conn.executemany(f"INSERT INTO payouts ({_COLUMNS}) VALUES ({placeholders})", _records(part))


def _fill_part(path: str, table_sql: str, part: _Part) -> None:
    """Write one part into a bare ``payouts`` table of its own file (in a second process)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN")
        conn.execute(table_sql)
        _insert(conn, part)
        conn.execute("COMMIT")
    finally:
        conn.close()


def _parts(rows: int, seed: int, count: int) -> list[_Part]:
    """``count`` slices of the history, oldest first, each over its own span of time."""
    start = END_MS - SPAN_MS
    pool = max(10, rows // 20)
    parts = []
    first = 1
    for index in range(count):
        size = rows // count + (1 if index < rows % count else 0)
        begin = start + SPAN_MS * (first - 1) // rows
        end = start + SPAN_MS * (first - 1 + size) // rows
        # Invoices grow by at most 3 per accepted payout: each slice gets its own range.
        parts.append(_Part(first, size, seed + index, begin, end, 7_000_000 + 3 * first, pool))
        first += size
    return parts


def _events_sql() -> str:
    """One applied gateway callback for every fourth accepted payout, built by SQLite."""
    return (
        "INSERT INTO events (received_at, record_id, source, outcome, request_id, invoice_id, "
        "status, payload_json) SELECT updated_at + 5000, id, 'gateway', 'applied', request_id, "
        "invoice_id, gateway_status, json_object('amount', amount_minor, 'currency', currency, "
        "'invoice_id', invoice_id, 'request_id', request_id, 'site_id', site_id, "
        "'status', gateway_status) FROM payouts WHERE state = 'ACCEPTED' AND id % 4 = 0 "
        "ORDER BY id"
    )


def _timeline(conn: sqlite3.Connection, record_id: int) -> None:
    """Twenty events on one record: callbacks applied, repeated, late, rejected, manual."""
    request_id, invoice, site_id, amount, currency, updated = conn.execute(
        "SELECT request_id, invoice_id, site_id, amount_minor, currency, updated_at "
        "FROM payouts WHERE id = ?",
        (record_id,),
    ).fetchone()
    invoice_id = invoice or ""
    kinds = (
        ("gateway", "applied", "", 1),
        ("gateway", "applied", "", 2),
        ("gateway", "duplicate", "", 2),
        ("gateway", "applied", "", 3),
        ("gateway", "stale", "", 2),
        ("gateway", "rejected", "bad_signature", 4),
        ("gateway", "duplicate", "", 3),
        ("import", "duplicate", "", 3),
        ("gateway", "applied", "", 4),
        ("manual", "applied", "", 4),
    )
    rows = []
    for index in range(TIMELINE_EVENTS):
        source, outcome, reason, status = kinds[index % len(kinds)]
        payload = (
            f'{{"amount": {amount}, "currency": "{currency}", "invoice_id": "{invoice_id}", '
            f'"request_id": "{request_id}", "site_id": {site_id}, "status": {status}}}'
        )
        who = "clerk" if source == "manual" else ""
        message = "Checked with the gateway's support" if source == "manual" else ""
        rows.append(
            (
                updated + 60_000 * (index + 1),
                record_id,
                source,
                who,
                outcome,
                reason,
                message,
                request_id,
                invoice_id,
                status,
                payload,
            )
        )
    conn.executemany(
        "INSERT INTO events (received_at, record_id, source, who, outcome, reason, message, "
        "request_id, invoice_id, status, payload_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def build(path: Path, rows: int = DEFAULT_ROWS, seed: int = 6, *, log: bool = False) -> Path:
    """Create a history file at ``path`` holding ``rows`` generated records.

    The history is cut into one slice per core: this process generates the oldest while the
    others each write theirs into a file of their own at the same time (Python builds the
    rows slower than SQLite stores them); then SQLite copies them in, writes the events and
    rebuilds every index, the text index and the counts in the same transaction.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    def phase(name: str) -> None:
        if log:
            print(f"  {name}: {time.perf_counter() - started:.1f} s", flush=True)

    partial = path.with_name(path.name + ".partial")
    parts = _parts(rows, seed, max(2, min(os.cpu_count() or 2, 8)))
    others = [path.with_name(f"{path.name}.part{index}") for index in range(1, len(parts))]
    for leftover in (partial, *others, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        leftover.unlink(missing_ok=True)
    HistoryStore(partial).close()  # the real schema, every migration applied
    conn = sqlite3.connect(partial, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")
        conn.execute("PRAGMA temp_store=FILE")
        conn.execute(f"PRAGMA threads={min(os.cpu_count() or 2, 4)}")  # CREATE INDEX sorts
        table_sql = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'payouts'"
        ).fetchone()[0]
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(len(others), mp_context=context) as pool:
            pending = [
                pool.submit(_fill_part, str(other), table_sql, part)
                for other, part in zip(others, parts[1:], strict=True)
            ]
            conn.execute("BEGIN")
            derived = _derived_objects(conn)
            for kind, name, _ in derived:
                conn.execute(f'DROP {kind.upper()} "{name}"')
            _insert(conn, parts[0])
            for future in pending:
                future.result()
        phase("rows generated")
        for other in others:
            conn.execute("ATTACH DATABASE ? AS part", (str(other),))
            columns = ", ".join(row[1] for row in conn.execute("PRAGMA table_info(payouts)"))
            conn.execute(
                f"INSERT INTO main.payouts ({columns}) "
                f"SELECT {columns} FROM part.payouts ORDER BY id"
            )
            conn.execute("COMMIT")
            conn.execute("DETACH DATABASE part")
            other.unlink()
            conn.execute("BEGIN")
        phase("slices copied in")
        conn.execute(_events_sql())
        for record_id in timeline_ids(rows):
            _timeline(conn, record_id)
        phase("events written")
        for _, _, sql in derived:
            conn.execute(sql)
        phase("indexes and triggers built")
        rebuild_search_index(conn)
        phase("text index built")
        rebuild_counts(conn)
        rebuild_local_totals(conn)
        conn.execute("COMMIT")
        phase("counts and local totals built, committed")
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()
        for other in others:
            other.unlink(missing_ok=True)
    partial.replace(path)
    return path


def free_disk_gb(folder: Path = DATA_DIR) -> float:
    """Free space where the histories are cached, in GB."""
    folder.mkdir(parents=True, exist_ok=True)
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize / 1e9


def history_file(rows: int = DEFAULT_ROWS, *, log: bool = True) -> Path:
    """The cached history for ``rows`` records, built first if it is missing."""
    path = cache_path(rows)
    if path.exists():
        return path
    for old in DATA_DIR.glob(f"history-{rows}-*.sqlite3*"):
        old.unlink()
    started = time.perf_counter()
    if log:
        # About 0.9 KB per payout with its indexes, plus room for the build's sort files.
        needed = rows * 1.6e-6
        print(
            f"Generating {rows:,} payout records into {path.name} "
            f"(needs ~{needed:.1f} GB, {free_disk_gb():.0f} GB free) ...",
            flush=True,
        )
    build(path, rows, log=log)
    flush_writes()
    if log:
        size = path.stat().st_size / 1e9
        took = time.perf_counter() - started
        print(f"  done in {took:.1f} s ({size:.2f} GB)", flush=True)
    return path
