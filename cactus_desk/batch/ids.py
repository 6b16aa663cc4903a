"""Batch ids and row request ids, derived so that a retry can never mint a new id.

A batch is named by the profile and the file's SHA-256: importing the same file again into
the same profile is the same batch, and each row's request id is the batch id and the row's
line. The gateway's request ids allow ``[A-Za-z0-9._:-]{1,64}``; these are 22 characters.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

PREFIX = "cb-"
BATCH_ID_LENGTH = 12


def batch_id(profile_id: str, file_sha256: str) -> str:
    """The batch id of ``file_sha256`` sent through the profile ``profile_id``."""
    digest = hashlib.sha256(f"batch\n{profile_id}\n{file_sha256}".encode()).hexdigest()
    return digest[:BATCH_ID_LENGTH]


def retry_batch_id(parent: str, lines: Iterable[int]) -> str:
    """The id of the batch that pays ``lines`` of batch ``parent`` again (refused rows)."""
    joined = ",".join(str(line) for line in sorted(lines))
    digest = hashlib.sha256(f"retry\n{parent}\n{joined}".encode()).hexdigest()
    return digest[:BATCH_ID_LENGTH]


def row_request_id(batch: str, line: int) -> str:
    """The request id of the row on ``line`` of batch ``batch``."""
    return f"{batch_prefix(batch)}{line:06d}"


def batch_prefix(batch: str) -> str:
    """What every derived request id of ``batch`` starts with (History's batch filter)."""
    return f"{PREFIX}{batch}-"


def batch_of(request_id: str) -> str | None:
    """The batch id a derived request id belongs to, or None."""
    if not request_id.startswith(PREFIX):
        return None
    parts = request_id[len(PREFIX) :].split("-")
    if len(parts) != 2 or len(parts[0]) != BATCH_ID_LENGTH or not parts[1].isdigit():
        return None
    return parts[0]
