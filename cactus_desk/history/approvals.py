"""Approvals and the audit trail for the commands: one connection to the team history each.

The connection is the store URL's user with the password saved in the OS keyring for it
(``team connect``), else libpq's ``PGPASSWORD``; see ``history.team``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from cactus_desk.history.postgres.approvals import (
    EXPIRED,
    ApprovalError,
    ApprovalRefusedError,
    ApprovalRequest,
    NotApprovableError,
)
from cactus_desk.history.postgres.team import Conn
from cactus_desk.history.team import _connection

__all__ = [
    "EXPIRED",
    "ApprovalError",
    "ApprovalRefusedError",
    "ApprovalRequest",
    "NotApprovableError",
    "approvals_connection",
]


@contextlib.contextmanager
def approvals_connection(url: str, password: str | None = None) -> Iterator[Conn]:
    """One autocommit connection to the team history at ``url``. Raises HistoryOpenError."""
    with _connection(url, password) as conn:
        yield conn
