"""Raw HTTP over a socket for the receiver tests: read a whole answer, however it arrives."""

from __future__ import annotations

import socket

HEADER_LIMIT = 64 * 1024


def read_response(conn: socket.socket) -> bytes:
    """Read one HTTP answer in full: its head, then Content-Length bytes or up to the close.

    TCP may hand the answer over in any number of pieces, so one ``recv()`` is never assumed to
    hold all of it. The socket's own timeout bounds each wait.
    """
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return data
        data += chunk
        if len(data) > HEADER_LIMIT:
            raise AssertionError("the answer's head never ended")
    head, _, body = data.partition(b"\r\n\r\n")
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while length is None or len(body) < length:
        chunk = conn.recv(4096)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP answer (0 when there was no answer at all)."""
    parts = answer.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
