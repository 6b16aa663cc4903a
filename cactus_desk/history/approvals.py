"""Approvals and the audit trail for the commands: the team history's operations, and one
connection to it for each command.

The connection is the store URL's user with the password saved in the OS keyring for it
(``team connect``), else libpq's ``PGPASSWORD``; see ``history.team``. Callers outside the
history package reach the PostgreSQL adapter's approvals only through this module.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from cactus_desk.history import check_store_url
from cactus_desk.history.postgres.approvals import (
    EXPIRED,
    ApprovalError,
    ApprovalRefusedError,
    ApprovalRequest,
    BatchTotal,
    NotApprovableError,
    approve,
    claim_send,
    get,
    list_requests,
    listen,
    note_export,
    policy_thresholds,
    reject,
    required_approvals,
    session_login,
    set_limit,
    set_policy,
    similar_sent,
    submit,
    wait_for_change,
    withdraw,
)
from cactus_desk.history.postgres.audit import AuditCheck, export_csv, verify
from cactus_desk.history.postgres.batch_approvals import (
    BatchApprovalRow,
    batch_rows,
    required_for_totals,
    submit_batch,
)
from cactus_desk.history.postgres.team import Conn
from cactus_desk.history.team import _connection

__all__ = [
    "EXPIRED",
    "ApprovalError",
    "ApprovalRefusedError",
    "ApprovalRequest",
    "AuditCheck",
    "BatchApprovalRow",
    "BatchTotal",
    "Conn",
    "NotApprovableError",
    "approvals_connection",
    "approve",
    "batch_rows",
    "claim_send",
    "export_csv",
    "get",
    "list_requests",
    "listen",
    "note_export",
    "policy_thresholds",
    "reject",
    "required_approvals",
    "required_for_totals",
    "session_login",
    "set_limit",
    "set_policy",
    "similar_sent",
    "submit",
    "submit_batch",
    "verify",
    "wait_for_change",
    "withdraw",
]


@contextlib.contextmanager
def approvals_connection(url: str, password: str | None = None) -> Iterator[Conn]:
    """One autocommit connection to the team history at ``url``. Raises HistoryOpenError."""
    with _connection(url, password) as conn:
        yield conn


def note_history_export(store: str, details: dict[str, object]) -> None:
    """Note a history export from the team history at ``store`` in its audit trail.

    Raises ``HistoryError`` (then nothing may be exported unaudited).
    """
    with approvals_connection(check_store_url(store).url) as conn:
        note_export(conn, "payouts", details)
