"""Names of the SQLite history's file (the tables' names live with their migrations)."""

HISTORY_FILE = "history.sqlite3"
