"""Live changes of the team history: LISTEN on its own connection, in its own thread.

The database announces each committed change of a payout and each new event on
``CHANGES_CHANNEL`` (migration 5). ``ChangeListener`` waits for those notices (no polling
storm: a quiet connection costs nothing), merges what arrived together into one
``ChangeBatch`` and hands it to ``on_change``. A slow safety look (``SAFETY_POLL_S``) asks
for events after the last one seen, so nothing is missed even if a notice were lost.

When the connection drops (the server restarts, the network goes) it says so through
``on_state(UNREACHABLE)``, reconnects by itself with a growing back-off, and on success
catches up with every event recorded after the last one it saw (``catch_up=True``: the
window then looks at everything again) before saying ``RECONNECTED``. Callbacks run on the
listener's thread; the window moves them to its own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import psycopg
from psycopg.rows import tuple_row

from cactus_desk.history.live import CONNECTED, RECONNECTED, UNREACHABLE, ChangeBatch
from cactus_desk.history.postgres.connect import unreachable_message
from cactus_desk.history.postgres.migrations import CHANGES_CHANNEL

log = logging.getLogger(__name__)

#: How long one wait for notices lasts: also how soon ``stop`` is noticed.
WAIT_S = 0.25
#: With no notice for this long, look for events anyway (and prove the connection alive).
SAFETY_POLL_S = 20.0
#: Back-off between reconnection attempts: first, then doubled up to the last.
BACKOFF_S = (0.25, 5.0)
#: How the listener's connection is named to the server (``pg_stat_activity``).
APPLICATION_NAME = "cactus-desk-listener"
#: Events read per catch-up query.
CATCH_UP_PAGE = 5000
# TCP keepalives: a network that drops silently is noticed in seconds, not hours.
_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
}


def parse_notices(payloads: Iterable[str]) -> tuple[set[int], int]:
    """The payout ids and the newest event id that ``payloads`` name; bad ones are ignored."""
    ids: set[int] = set()
    newest = 0
    for payload in payloads:
        kind, _, rest = payload.partition(":")
        try:
            if kind == "p":
                ids.add(int(rest))
            elif kind == "e":
                event, _, record = rest.partition(":")
                newest = max(newest, int(event))
                if int(record):
                    ids.add(int(record))
        except ValueError:
            log.debug("ignored a change notice %r", payload)
    return ids, newest


class ChangeListener:
    """Listens for the team history's changes on its own connection and thread.

    ``url`` and ``connect_kwargs`` are the store's (no password in the URL; the password, if
    any, in the kwargs); ``label`` names the store in messages. Call ``start`` once and
    ``stop`` at the end; ``on_change`` and ``on_state`` run on the listener's thread.
    """

    def __init__(
        self,
        url: str,
        connect_kwargs: Mapping[str, Any],
        label: str,
        *,
        on_change: Callable[[ChangeBatch], None],
        on_state: Callable[[str, str], None] = lambda _state, _message: None,
        safety_poll_s: float = SAFETY_POLL_S,
        backoff_s: tuple[float, float] = BACKOFF_S,
    ) -> None:
        self._url = url
        self._kwargs = {
            **connect_kwargs,
            **_KEEPALIVES,
            "autocommit": True,
            "application_name": APPLICATION_NAME,
        }
        self._kwargs.pop("row_factory", None)
        self._label = label
        self._on_change = on_change
        self._on_state = on_state
        self._safety_poll_s = safety_poll_s
        self._backoff_s = backoff_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_event = -1  # unknown until the first connection
        self._connected = threading.Event()

    @property
    def last_event_id(self) -> int:
        """The newest event id seen (-1 before the first connection)."""
        return self._last_event

    def start(self) -> ChangeListener:
        """Start listening on a thread of its own (once)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="cactus-team-listener", daemon=True
            )
            self._thread.start()
        return self

    def wait_connected(self, timeout: float) -> bool:
        """Block until the first LISTEN is in place (tests and benchmarks)."""
        return self._connected.wait(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening and close the connection; safe to call twice."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # -- the listener's thread --------------------------------------------------------------

    def _run(self) -> None:
        delay = self._backoff_s[0]
        lost = False
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._url, **self._kwargs) as conn:
                    conn.execute(f"LISTEN {CHANGES_CHANNEL}")
                    self._connected.set()
                    delay = self._backoff_s[0]
                    if self._last_event < 0:
                        self._last_event = self._newest_event(conn)
                        self._on_state(CONNECTED, "")
                    else:
                        self._catch_up(conn, whole=True)
                        if lost:
                            self._on_state(RECONNECTED, "")
                    lost = False
                    self._listen(conn)
            except psycopg.Error as exc:
                if self._stop.is_set():
                    break
                password = self._kwargs.get("password")
                message = unreachable_message(self._label, exc, password)
                if not lost:
                    log.warning("team history listener: %s", message)
                    self._on_state(UNREACHABLE, message)
                lost = True
                self._stop.wait(delay)
                delay = min(delay * 2, self._backoff_s[1])
            except Exception:  # a callback's bug must not end live statuses for good
                log.exception("team history listener failed; starting again")
                self._stop.wait(self._backoff_s[1])

    def _listen(self, conn: psycopg.Connection[Any]) -> None:
        quiet = 0.0
        while not self._stop.is_set():
            payloads = [n.payload for n in conn.notifies(timeout=WAIT_S, stop_after=1)]
            if payloads:
                # Take what else has arrived, so a burst is one batch, not one per notice.
                payloads += [n.payload for n in conn.notifies(timeout=0.0)]
                quiet = 0.0
                ids, newest = parse_notices(payloads)
                self._last_event = max(self._last_event, newest)
                self._on_change(ChangeBatch(frozenset(ids), self._last_event))
                continue
            quiet += WAIT_S
            if quiet >= self._safety_poll_s:
                quiet = 0.0
                self._catch_up(conn, whole=False)

    def _newest_event(self, conn: psycopg.Connection[Any]) -> int:
        cursor = conn.cursor(row_factory=tuple_row)
        row = cursor.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()
        return int(row[0]) if row else 0

    def _catch_up(self, conn: psycopg.Connection[Any], *, whole: bool) -> None:
        """Events recorded after the last one seen; ``whole``: after a reconnection, so
        changes without an event (an attempt recorded meanwhile) are looked for too."""
        cursor = conn.cursor(row_factory=tuple_row)
        ids: set[int] = set()
        while True:
            rows = cursor.execute(
                "SELECT id, record_id FROM events WHERE id > %s ORDER BY id LIMIT %s",
                (self._last_event, CATCH_UP_PAGE),
            ).fetchall()
            for event_id, record_id in rows:
                self._last_event = max(self._last_event, int(event_id))
                if record_id is not None:
                    ids.add(int(record_id))
            if len(rows) < CATCH_UP_PAGE:
                break
        if ids or whole:
            self._on_change(ChangeBatch(frozenset(ids), self._last_event, catch_up=whole))
