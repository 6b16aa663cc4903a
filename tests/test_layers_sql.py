"""Only ``cactus_desk/history/`` speaks to the database: no SQL, no sqlite3 anywhere else.

Everything else reaches the payout history through the port (``history/port.py``), so a second
backend can replace the SQLite file without touching a caller. The scan reads the syntax tree,
so comments and docstrings that mention SQL words in prose do not count.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import cactus_desk

PACKAGE = Path(cactus_desk.__file__).resolve().parent
HISTORY = PACKAGE / "history"

DATABASE_MODULES = frozenset(
    {"sqlite3", "_sqlite3", "apsw", "psycopg", "psycopg_pool", "psycopg2", "sqlalchemy"}
)
#: The history adapters: only ``history/__init__`` (which picks one) may import them.
ADAPTERS = {
    "cactus_desk.history.sqlite": "SQLite",
    "cactus_desk.history.postgres": "PostgreSQL",
}
#: Calls that run SQL (or hand out a connection that does) on whatever object.
SQL_CALLS = frozenset(
    {"execute", "executemany", "executescript", "read_connection", "write_transaction"}
)
#: Statement shapes, in capitals as the code writes them, so prose ("update the app") passes.
SQL_TEXT = re.compile(
    r"\b(SELECT|INSERT|UPDATE|DELETE)\b.*\b(FROM|INTO|SET)\b"
    r"|\b(CREATE|DROP)\s+(TABLE|(UNIQUE\s+)?INDEX|TRIGGER|VIRTUAL\s+TABLE)\b"
    r"|\bPRAGMA\s+\w+|\bBEGIN\s+(IMMEDIATE|EXCLUSIVE)\b",
    re.DOTALL,
)


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the docstring nodes of a module, its classes and functions."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
        ):
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def sql_offences(source: str, filename: str = "<sample>") -> list[str]:
    """What in ``source`` talks to a database directly, one line per offence."""
    tree = ast.parse(source, filename=filename)
    docstrings = _docstrings(tree)
    offences: list[str] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
        else:
            modules = []
        for module in modules:
            if module.split(".")[0] in DATABASE_MODULES:
                offences.append(f"{filename}:{line}: imports {module}")
            for adapter, label in ADAPTERS.items():
                if module == adapter or module.startswith(adapter + "."):
                    offences.append(f"{filename}:{line}: imports the {label} adapter {module}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in SQL_CALLS
        ):
            offences.append(f"{filename}:{line}: calls .{node.func.attr}()")
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
            and SQL_TEXT.search(node.value)
        ):
            offences.append(f"{filename}:{line}: SQL text {node.value[:60]!r}")
        if isinstance(node, ast.JoinedStr):
            text = "".join(
                part.value
                for part in node.values
                if isinstance(part, ast.Constant) and isinstance(part.value, str)
            )
            if SQL_TEXT.search(text):
                offences.append(f"{filename}:{line}: SQL text in an f-string {text[:60]!r}")
    return offences


def test_no_sql_outside_the_history_package() -> None:
    offences: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == HISTORY or HISTORY in path.parents:
            continue
        name = str(path.relative_to(PACKAGE.parent))
        offences.extend(sql_offences(path.read_text(encoding="utf-8"), name))
    assert offences == []


@pytest.mark.parametrize("adapter", ["sqlite/store.py", "postgres/store.py"])
def test_the_history_package_is_scanned_and_holds_the_sql(adapter: str) -> None:
    # The exemption covers real SQL: were an adapter moved, this scan would show it.
    assert sql_offences((HISTORY / adapter).read_text(encoding="utf-8"))


def test_the_port_and_the_types_are_free_of_the_backend() -> None:
    for name in ("port.py", "types.py", "export.py", "__init__.py"):
        source = (HISTORY / name).read_text(encoding="utf-8")
        offences = [
            offence
            for offence in sql_offences(source, name)
            if " adapter " not in offence  # __init__ picks the adapter
        ]
        assert offences == [], name


@pytest.mark.parametrize(
    "sample",
    [
        "import sqlite3\n",
        "import sqlite3 as db\n",
        "from sqlite3 import connect\n",
        "import psycopg\n",
        "from psycopg_pool import ConnectionPool\n",
        "from cactus_desk.history.postgres.store import PostgresHistoryStore\n",
        "import cactus_desk.history.postgres.migrations\n",
        "from cactus_desk.history.sqlite.store import SqliteHistoryStore\n",
        "from cactus_desk.history.sqlite import backup\n",
        "conn.execute('anything')\n",
        "cursor.executemany(query, rows)\n",
        "conn.executescript(script)\n",
        "with store.read_connection() as conn:\n    pass\n",
        "with store.write_transaction() as conn:\n    pass\n",
        "QUERY = 'SELECT id FROM payouts'\n",
        "run('INSERT INTO events (id) VALUES (1)')\n",
        "run('UPDATE payouts SET state = ?')\n",
        "run('DELETE FROM events WHERE id = ?')\n",
        "run('select 1' if x else 'SELECT *\\n FROM payouts')\n",
        "sql = f'SELECT {columns} FROM payouts'\n",
        "sql = f'UPDATE payouts SET {assignments} WHERE id = ?'\n",
        "run('CREATE INDEX i ON payouts (id)')\n",
        "run('PRAGMA journal_mode=WAL')\n",
        "run('BEGIN IMMEDIATE')\n",
    ],
)
def test_the_checker_sees_each_forbidden_form(sample: str) -> None:
    assert sql_offences(sample)


@pytest.mark.parametrize(
    "sample",
    [
        '"""Select a payout from the history and update it."""\n',
        "def f():\n    '''SELECT id FROM payouts, as prose in a docstring.'''\n",
        "label = 'Update the settings'\n",
        "store.create_attempt(attempt)\n",
        "from cactus_desk.history.port import HistoryStore\n",
        "from cactus_desk.history import open_history\n",
    ],
)
def test_the_checker_lets_prose_and_the_port_pass(sample: str) -> None:
    assert sql_offences(sample) == []
