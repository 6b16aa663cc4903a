"""A guard in front of every receiver connection: a deadline for the request head, and caps.

uvicorn closes idle keep-alive connections, but not a connection that has sent nothing or only
part of a request head, and its ``limit_concurrency`` then answers every new request with 503.
So 64 idle sockets would shut real callbacks out. This protocol (uvicorn's own h11 one, with
three additions) makes sure they cannot:

- a request head must be complete within ``head_timeout`` of the connection (or of the previous
  answer on a kept-alive one), else the connection is closed;
- a client (an IP address) holds at most ``per_client`` connections, and all clients together
  at most ``total``; a newcomer over a cap pushes out the oldest connection that is still
  waiting for a request head, so a real callback, which sends its head at once, always gets in;
- a newcomer is refused only when every connection of its client is busy with a request.

Imported only when a receiver starts: uvicorn is an optional extra.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("cactus_desk.receiver")

HEAD_TIMEOUT_S = 5.0
PER_CLIENT_CONNECTIONS = 64
TOTAL_CONNECTIONS = 512


@dataclass
class ConnectionGuard:
    """The connections of one server, by client; used on the server's event loop only."""

    head_timeout: float = HEAD_TIMEOUT_S
    per_client: int = PER_CLIENT_CONNECTIONS
    total: int = TOTAL_CONNECTIONS
    evicted: int = 0
    refused: int = 0
    _all: dict[GuardedH11Protocol, None] = field(default_factory=dict)
    _by_client: dict[str, dict[GuardedH11Protocol, None]] = field(default_factory=dict)

    def admit(self, connection: GuardedH11Protocol) -> bool:
        """Make room for ``connection`` (pushing out an idle one if needed); False to refuse."""
        mine = self._by_client.setdefault(connection.client_host, {})
        for pool, cap in ((mine, self.per_client), (self._all, self.total)):
            while len(pool) >= cap:
                victim = next((other for other in pool if other.waiting_for_head), None)
                if victim is None:
                    self.refused += 1
                    if not mine:
                        del self._by_client[connection.client_host]
                    return False
                self.evicted += 1
                victim.close_quietly()
        mine[connection] = None
        self._all[connection] = None
        return True

    def forget(self, connection: GuardedH11Protocol) -> None:
        """Drop ``connection`` from the books (idempotent)."""
        self._all.pop(connection, None)
        mine = self._by_client.get(connection.client_host)
        if mine is not None:
            mine.pop(connection, None)
            if not mine:
                del self._by_client[connection.client_host]

    @property
    def open_connections(self) -> int:
        """How many connections the guard holds."""
        return len(self._all)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-head deadline and the guard's caps."""

    guard: ConnectionGuard  # set on the subclass ``guarded_protocol`` makes per server

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Register with the guard, refuse if it says so, and start the head deadline."""
        self._head_timer: asyncio.TimerHandle | None = None
        self._guarded = False
        super().connection_made(transport)
        if not self.guard.admit(self):
            transport.close()
            return
        self._guarded = True
        self._arm_head_timer()

    @property
    def client_host(self) -> str:
        """The peer's address (one client, whatever its port)."""
        return self.client[0] if self.client else "-"

    @property
    def waiting_for_head(self) -> bool:
        """True while no request is in progress: idle, or part of a head received."""
        in_cycle = self.cycle is not None and not self.cycle.response_complete
        return self.conn.their_state is h11.IDLE and not in_cycle

    def close_quietly(self) -> None:
        """Close this connection to make room for another one."""
        self.guard.forget(self)
        self._cancel_head_timer()
        if not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        """Feed h11; once a request head is complete its deadline no longer applies."""
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._cancel_head_timer()

    def on_response_complete(self) -> None:
        """A kept-alive connection gets a new head deadline for its next request."""
        super().on_response_complete()
        if self._guarded and not self.transport.is_closing():
            self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """Leave the guard's books."""
        self._cancel_head_timer()
        self.guard.forget(self)
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.guard.head_timeout, self._head_overdue)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_overdue(self) -> None:
        self._head_timer = None
        if self.waiting_for_head:
            self.close_quietly()


def guarded_protocol(guard: ConnectionGuard) -> type[GuardedH11Protocol]:
    """A protocol class bound to ``guard``, for uvicorn's ``Config(http=...)``."""
    namespace: dict[str, Any] = {"guard": guard, "__doc__": GuardedH11Protocol.__doc__}
    return type("ReceiverH11Protocol", (GuardedH11Protocol,), namespace)
