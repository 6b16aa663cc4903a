"""Running the callback receiver under uvicorn: as ``cactus-desk receiver`` or in a thread.

uvicorn is the optional extra ``cactus-desk[receiver]``; it is imported only here, only when a
receiver starts, so the console itself never needs it.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from cactus_desk.credentials import (
    SALT_CREDENTIAL,
    STORE_PASSWORD_CREDENTIAL,
    CredentialError,
    read_credential,
)
from cactus_desk.history import (
    check_store_url,
    open_history,
    open_profiles,
    open_team_history,
    take_daily_backup,
)
from cactus_desk.history.maintenance import MaintenanceThread
from cactus_desk.history.port import HistoryStore
from cactus_desk.profiles import Profile, ProfileNotFoundError, ProfileStoreError
from cactus_desk.receiver.app import (
    CALLBACK_PATH,
    CallbackApp,
    Message,
    Receive,
    Scope,
    Send,
)
from cactus_desk.secrets import KeyringError, NoKeyringError, SecretStore

log = logging.getLogger("cactus_desk.receiver")

DEFAULT_LISTEN = "127.0.0.1:8787"
TIMEOUT_KEEP_ALIVE_S = 5
# A backstop only: the connection guard's caps (guard.py) are what bound connections.
LIMIT_CONCURRENCY = 2048
H11_MAX_HEAD_BYTES = 16 * 1024
BACKLOG = 128
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0


class ReceiverError(RuntimeError):
    """The receiver cannot start; the message says why and what to do."""


def require_uvicorn() -> ModuleType:
    """Import uvicorn, or explain how to install it."""
    try:
        return importlib.import_module("uvicorn")
    except ImportError:
        raise ReceiverError(
            "The callback receiver needs uvicorn, which is not installed. "
            "Install the extra: pip install 'cactus-desk[receiver]'"
        ) from None


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8787`` for IPv6) as ``(host, port)``; raises ValueError."""
    text = text.strip()
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"{text!r} is not HOST:PORT, e.g. 127.0.0.1:8787")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{text!r}: write an IPv6 address in brackets, e.g. [::1]:8787")
    if not host:
        raise ValueError(f"{text!r} has no host")
    if not (port_text.isascii() and port_text.isdigit()) or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r}: the port must be a number from 0 to 65535")
    return host, int(port_text)


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0 picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP: asyncio turns Nagle off only for sockets that say they are TCP, and
    # with it on every answer waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _server(
    app: CallbackApp | HistoryGuard, timeout_keep_alive: int, guard_options: dict[str, Any]
) -> Any:
    uvicorn = require_uvicorn()
    from cactus_desk.receiver.guard import ConnectionGuard, guarded_protocol  # needs uvicorn
    from cactus_desk.receiver.limits import quiet_uvicorn_warnings

    quiet_uvicorn_warnings()
    config = uvicorn.Config(
        app,
        lifespan="on",
        # Cactus Desk's own logging stays in charge; the app logs each callback itself.
        log_config=None,
        access_log=False,
        server_header=False,
        http=guarded_protocol(ConnectionGuard(**guard_options)),
        h11_max_incomplete_event_size=H11_MAX_HEAD_BYTES,
        timeout_keep_alive=timeout_keep_alive,
        limit_concurrency=LIMIT_CONCURRENCY,
    )
    return uvicorn.Server(config)


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino)


class HistoryGuard:
    """ASGI wrapper: once the history file is not the one opened, nothing is answered 200.

    A history renamed aside, removed or replaced under a running receiver would otherwise
    take callbacks into a file nobody reads and tell the gateway to stop retrying. The file is
    checked before a callback is handed on and again before a success answer goes out; then
    the answer is ``503`` so the gateway retries once the history is back and the receiver
    restarted.
    """

    def __init__(self, app: CallbackApp, history: Path) -> None:
        self.app = app
        self.history = Path(history)
        self._identity = _file_identity(self.history)
        self._reported = False

    @property
    def path(self) -> str:
        """The callback path, as the wrapped app's."""
        return self.app.path

    def in_place(self) -> bool:
        """True while the history file at its path is still the one opened."""
        return self._identity is not None and _file_identity(self.history) == self._identity

    def _report(self) -> None:
        if not self._reported:
            self._reported = True
            log.error(
                "the payout history %s was moved, removed or replaced under the receiver; "
                "answering 503 to every callback until the history is restored and the "
                "receiver restarted",
                self.history,
            )

    async def _unavailable(self, send: Send) -> None:
        self._report()
        body = json.dumps({"result": "error", "code": "unavailable"}).encode("utf-8")
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode("ascii")),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self.in_place():
            await self._unavailable(send)
            return
        replaced = False

        async def guarded(message: Message) -> None:
            nonlocal replaced
            # A success goes out after the event was committed: into the history in place?
            starting = message["type"] == "http.response.start"
            if starting and message["status"] < 300 and not self.in_place():
                replaced = True
                await self._unavailable(send)
                return
            if replaced and message["type"] == "http.response.body":
                return
            await send(message)

        await self.app(scope, receive, guarded)


def _url(sock: socket.socket, path: str) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{path}"


class BackgroundReceiver:
    """The receiver under uvicorn on a background thread, for the console or tests.

    ``start()`` returns once it accepts connections; ``stop()`` returns within a few tenths of a
    second (uvicorn checks its exit flag every 0.1 s), waiting for requests in progress.
    """

    def __init__(
        self,
        app: CallbackApp,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        timeout_keep_alive: int = TIMEOUT_KEEP_ALIVE_S,
        **guard_options: Any,
    ) -> None:
        """``guard_options`` (head_timeout, per_client, total) tune the connection guard."""
        self.app = app
        self.host = host
        self._port = port
        self._timeout_keep_alive = timeout_keep_alive
        self._guard_options = guard_options
        self._server: Any = None
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    @property
    def url(self) -> str:
        """The callback URL, e.g. ``http://127.0.0.1:54321/callback``."""
        if self._socket is None:
            raise RuntimeError("The receiver is not running")
        return _url(self._socket, self.app.path)

    @property
    def port(self) -> int:
        """The bound port (the chosen one when started with port 0)."""
        if self._socket is None:
            return self._port
        return int(self._socket.getsockname()[1])

    @property
    def connection_guard(self) -> Any:
        """The running server's ``ConnectionGuard`` (its open connections, caps and counts)."""
        if self._server is None:
            raise RuntimeError("The receiver is not running")
        return self._server.config.http.guard

    def start(self) -> BackgroundReceiver:
        """Bind, start serving and wait until uvicorn is up; raises ReceiverError on failure."""
        if self._thread is not None:
            return self
        server = _server(self.app, self._timeout_keep_alive, self._guard_options)
        try:
            sock = bind_socket(self.host, self._port)
        except OSError as exc:
            raise ReceiverError(f"Cannot listen on {self.host}:{self._port}: {exc}") from None
        self._server, self._socket = server, sock
        self._failure = None
        self._thread = threading.Thread(
            target=self._run, args=(server, sock), name="cactus-receiver", daemon=True
        )
        self._thread.start()
        thread = self._thread
        waited = 0.0
        while not server.started and thread.is_alive() and waited < START_TIMEOUT_S:
            thread.join(0.01)
            waited += 0.01
        if not server.started:
            self.stop()
            detail = f": {self._failure}" if self._failure else ""
            raise ReceiverError(f"The callback receiver did not start{detail}")
        log.info("callback receiver listening on %s", self.url)
        return self

    def _run(self, server: Any, sock: socket.socket) -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # reported by start(); a thread must not die loudly
            self._failure = exc
            log.exception("callback receiver stopped with an error")

    def stop(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        server, thread, sock = self._server, self._thread, self._socket
        if server is None:
            return
        server.should_exit = True
        if thread is not None:
            thread.join(STOP_TIMEOUT_S)
            if thread.is_alive():
                server.force_exit = True
                thread.join(STOP_TIMEOUT_S)
        if sock is not None:
            sock.close()
        self._server = self._thread = self._socket = None
        log.info("callback receiver stopped")

    def __enter__(self) -> BackgroundReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def _signals_end_quietly() -> Iterator[None]:
    """Let SIGINT/SIGTERM end the receiver with a clean exit.

    uvicorn handles both while it runs (it finishes the requests in progress), then restores
    the handlers it found and raises the signal again; with the default handlers that would
    kill the process (SIGTERM) or raise KeyboardInterrupt before the store is closed.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {
        signum: signal.signal(signum, lambda *_: None) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def load_profile_salt(
    data_dir: Path,
    profile_name: str,
    store: str | None = None,
    *,
    store_password: str | None = None,
) -> tuple[Profile, str]:
    """The profile named ``profile_name`` (the team's at ``store``, else this machine's) and
    its salt; ReceiverError if not.

    The salt is the systemd credential ``cactus-desk-salt`` when the service has one (see
    docs/receiver.md), else this user's OS keyring's.
    """
    try:
        profile = open_profiles(data_dir, store, password=store_password).get(profile_name)
    except (ProfileNotFoundError, ProfileStoreError) as exc:
        raise ReceiverError(str(exc)) from None
    try:
        salt = read_credential(SALT_CREDENTIAL)
    except CredentialError as exc:
        raise ReceiverError(str(exc)) from None
    if salt:
        return profile, salt
    try:
        salt = SecretStore().get_salt(profile.id)
    except (NoKeyringError, KeyringError) as exc:
        raise ReceiverError(str(exc)) from None
    if not salt:
        raise ReceiverError(
            f"The keyring has no salt for profile {profile.name!r}; save it on this machine "
            f"and user with `cactus-desk profile set-salt {profile.name!r} --salt-stdin` "
            f"(or give the service the credential {SALT_CREDENTIAL!r})."
        )
    return profile, salt


def store_password() -> str | None:
    """The team store's password from the systemd credential, or None (then the keyring's,
    or libpq's PGPASSWORD, is used). Raises ReceiverError for an unusable credential."""
    try:
        return read_credential(STORE_PASSWORD_CREDENTIAL)
    except CredentialError as exc:
        raise ReceiverError(str(exc)) from None


def _open_history(data_dir: Path, store: str | None, password: str | None) -> HistoryStore:
    if store and password:
        return open_team_history(store, data_dir, password=password)
    return open_history(data_dir, store)


def run_receiver(
    data_dir: Path,
    profile_name: str,
    listen: str = DEFAULT_LISTEN,
    out: TextIO = sys.stdout,
    store: str | None = None,
) -> int:
    """Serve callbacks for ``profile_name`` into the history in ``data_dir`` (or the team
    history at ``store``) until SIGINT/SIGTERM.

    Raises ReceiverError when it cannot start (bad --listen, no profile or salt, no uvicorn,
    port taken).
    """
    try:
        host, port = parse_listen(listen)
    except ValueError as exc:
        raise ReceiverError(f"--listen: {exc}") from None
    require_uvicorn()
    password = store_password() if store else None
    profile, salt = load_profile_salt(data_dir, profile_name, store, store_password=password)
    # The upkeep thread stops before the history closes (a ``with`` ends in reverse order).
    # A local history's daily backup is taken beside the upkeep, never before serving.
    backups = None if store else functools.partial(take_daily_backup, data_dir)
    with (
        _open_history(data_dir, store, password) as history,
        MaintenanceThread(history, daily_backup=backups),
    ):
        app = CallbackApp(history, salt, merchant_id=profile.merchant_id, site_id=profile.site_id)
        # The file guard watches a local history; a team history is the database's to keep.
        served = app if store else HistoryGuard(app, history.location)
        server = _server(served, TIMEOUT_KEEP_ALIVE_S, {})
        where = f"team history {check_store_url(store).label}" if store else history.location
        try:
            sock = bind_socket(host, port)
        except OSError as exc:
            raise ReceiverError(f"Cannot listen on {listen}: {exc.strerror or exc}") from None
        with contextlib.closing(sock):
            print(
                f"Receiving callbacks for profile {profile.name!r} (site {profile.site_id}) at "
                f"{_url(sock, CALLBACK_PATH)}\nHistory: {where}\nPress Ctrl+C to stop.",
                file=out,
                flush=True,
            )
            log.info("callback receiver for profile %r on %s", profile.name, _url(sock, "/"))
            with _signals_end_quietly(), contextlib.suppress(KeyboardInterrupt):
                server.run(sockets=[sock])
    print("Callback receiver stopped.", file=out, flush=True)
    return 0
