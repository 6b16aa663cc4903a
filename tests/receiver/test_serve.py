"""Starting the receiver: --listen parsing, a missing uvicorn, a missing profile or salt."""

from __future__ import annotations

import io
import socket
import sys
from pathlib import Path

import pytest

from cactus_desk.profiles import Profile, ProfileStore
from cactus_desk.receiver.serve import (
    ReceiverError,
    bind_socket,
    parse_listen,
    require_uvicorn,
    run_receiver,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8787", ("127.0.0.1", 8787)),
        (" 0.0.0.0:0 ", ("0.0.0.0", 0)),
        ("[::1]:9000", ("::1", 9000)),
        ("localhost:80", ("localhost", 80)),
    ],
)
def test_listen_addresses_are_parsed(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("8787", "HOST:PORT"),
        (":8787", "HOST:PORT"),
        ("::1:8787", "brackets"),
        ("host:http", "port must be a number"),
        ("host:70000", "port must be a number"),
    ],
)
def test_bad_listen_addresses_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_listen(text)


def test_a_missing_uvicorn_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    with pytest.raises(ReceiverError, match=r"cactus-desk\[receiver\]"):
        require_uvicorn()


def test_an_unknown_profile_stops_the_receiver_before_it_listens(data_home: Path) -> None:
    with pytest.raises(ReceiverError, match="Shop"):
        run_receiver(data_home, "Shop", "127.0.0.1:0", out=io.StringIO())


def test_a_profile_without_a_salt_stops_the_receiver(data_home: Path) -> None:
    ProfileStore(data_home).add(
        Profile(name="Shop", base_url="https://gw.example", merchant_id="m", site_id=7)
    )
    with pytest.raises(ReceiverError, match="no salt for profile 'Shop'"):
        run_receiver(data_home, "Shop", "127.0.0.1:0", out=io.StringIO())


def test_a_bad_listen_address_is_reported_as_the_option(data_home: Path) -> None:
    with pytest.raises(ReceiverError, match="--listen"):
        run_receiver(data_home, "Shop", "nowhere", out=io.StringIO())


def test_the_listening_socket_is_tcp_so_answers_skip_nagles_delay() -> None:
    # asyncio disables Nagle only on sockets whose proto says TCP; without it every answer on a
    # kept-alive connection waited ~40 ms for the client's delayed ACK.
    sock = bind_socket("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
    finally:
        sock.close()
