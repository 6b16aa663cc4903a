"""Live changes of a shared history, as an adapter reports them (no database, no Qt).

A team history's listener (``postgres/listen.py``) hands its caller ``ChangeBatch`` values
and one of the states below; the window reads them from here, never from the adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CONNECTED = "connected"
UNREACHABLE = "unreachable"
RECONNECTED = "reconnected"


@dataclass(frozen=True)
class ChangeBatch:
    """What changed: the payouts named by notices (or by events caught up with)."""

    record_ids: frozenset[int] = field(default_factory=frozenset)
    newest_event_id: int = 0
    catch_up: bool = False  # after a reconnection: look at everything shown again
