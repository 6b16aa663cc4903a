"""A real loopback HTTP/1.1 server whose answers a test scripts byte by byte."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

Script = Callable[[socket.socket, bytes], None]


def read_request(conn: socket.socket) -> bytes:
    """Read one whole request (headers and a Content-Length body) from ``conn``."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return body


def http_head(status: str = "200 OK", **headers: str) -> bytes:
    """A status line and headers, ending in the blank line."""
    lines = [f"HTTP/1.1 {status}", *(f"{k.replace('_', '-')}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


class LoopbackServer:
    """Serves each connection with ``script(conn, request_body)`` on its own thread."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # a closed listener does not wake accept()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accept = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        """The base URL (plain http to this computer only)."""
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _handle(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(30)
            body = read_request(conn)
            self.requests.append(body)
            self.script(conn, body)

    def __enter__(self) -> LoopbackServer:
        self._accept.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._accept.join(5)
        self._listener.close()
        for thread in self._threads:
            thread.join(5)


@contextlib.contextmanager
def serving(script: Script) -> Iterator[LoopbackServer]:
    """A started ``LoopbackServer`` for the duration of the block."""
    with LoopbackServer(script) as server:
        yield server


def answer_with(body: bytes, status: str = "200 OK", **headers: str) -> Script:
    """A script answering every request with ``body`` in one go."""

    def script(conn: socket.socket, _request: bytes) -> None:
        extra = {"Content_Type": "application/json", "Content_Length": str(len(body))}
        extra.update(headers)
        conn.sendall(http_head(status, Connection="close", **extra) + body)

    return script
