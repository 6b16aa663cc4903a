"""The connection guard's bookkeeping, without a network: who is pushed out, who is refused."""

from __future__ import annotations

from dataclasses import dataclass, field

from cactus_desk.receiver.guard import ConnectionGuard


@dataclass(eq=False)
class _Connection:
    guard: ConnectionGuard
    client_host: str
    waiting_for_head: bool = True
    closed: bool = field(default=False)

    def close_quietly(self) -> None:
        self.guard.forget(self)  # type: ignore[arg-type]
        self.closed = True


def _open(guard: ConnectionGuard, host: str, *, busy: bool = False) -> _Connection:
    connection = _Connection(guard, host, waiting_for_head=not busy)
    assert guard.admit(connection)  # type: ignore[arg-type]
    return connection


def test_a_newcomer_over_the_client_cap_pushes_out_that_clients_oldest_idle_one() -> None:
    guard = ConnectionGuard(per_client=3, total=100)
    busy = _open(guard, "10.0.0.1", busy=True)
    idle = [_open(guard, "10.0.0.1") for _ in range(2)]
    other = _open(guard, "10.0.0.2")
    newcomer = _Connection(guard, "10.0.0.1")
    assert guard.admit(newcomer)  # type: ignore[arg-type]
    assert idle[0].closed and not idle[1].closed and not busy.closed and not other.closed
    assert guard.open_connections == 4 and guard.evicted == 1


def test_a_newcomer_is_refused_only_when_every_connection_of_its_client_is_busy() -> None:
    guard = ConnectionGuard(per_client=2, total=100)
    first = _open(guard, "10.0.0.1", busy=True)
    second = _open(guard, "10.0.0.1", busy=True)
    assert not guard.admit(_Connection(guard, "10.0.0.1"))  # type: ignore[arg-type]
    assert guard.refused == 1 and not first.closed and not second.closed
    assert guard.admit(_Connection(guard, "10.0.0.9"))  # type: ignore[arg-type]


def test_the_total_cap_pushes_out_the_oldest_idle_connection_of_any_client() -> None:
    guard = ConnectionGuard(per_client=10, total=3)
    oldest = _open(guard, "10.0.0.1")
    _open(guard, "10.0.0.2", busy=True)
    _open(guard, "10.0.0.3")
    assert guard.admit(_Connection(guard, "10.0.0.4"))  # type: ignore[arg-type]
    assert oldest.closed and guard.open_connections == 3
