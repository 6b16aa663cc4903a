"""Reaching the team history: the store URL, the password kept apart, errors made plain.

A store URL is a libpq ``postgresql://`` URL without a password (``sslmode``, ``sslrootcert``
and other libpq parameters pass through). The password comes separately, from the OS keyring
or libpq's ``PGPASSWORD`` variable, never from a file: a URL with a password (or a password
file) in it is refused, and libpq's own password file is switched off (``NO_PASSWORD_FILE``).
So the password never sits in a config file, a process list or an error message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import psycopg
from psycopg import conninfo as libpq

SCHEMES = ("postgresql", "postgres")
#: Given to libpq as ``passfile``, so it never reads ``~/.pgpass`` (or ``$PGPASSFILE``).
NO_PASSWORD_FILE = os.devnull


class StoreUrlError(ValueError):
    """A store URL that cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class StoreUrl:
    """A checked store URL: what to connect to, and how to name it to people."""

    url: str
    host: str
    port: str
    dbname: str
    user: str

    @property
    def account(self) -> str:
        """``user@host:port/db``: the keyring entry of this store's password."""
        return f"{self.user}@{self.label}" if self.user else self.label

    @property
    def label(self) -> str:
        """``host:port/db``, safe to show (no password, no parameters)."""
        where = f"{self.host}:{self.port}" if self.port else self.host
        return f"{where}/{self.dbname}"


def is_store_url(text: str) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) URL."""
    return text.split("://", 1)[0].lower() in SCHEMES and "://" in text


def parse_store_url(text: str) -> StoreUrl:
    """Check ``text`` as a team store URL; raises ``StoreUrlError`` with a clear message.

    The message never repeats a password found in it.
    """
    if not is_store_url(text):
        raise StoreUrlError(
            "A team store is a postgresql:// URL, e.g. "
            "postgresql://alice@db.example.com:5432/cactus?sslmode=verify-full"
        )
    try:
        params = libpq.conninfo_to_dict(text)
    except psycopg.ProgrammingError:
        raise StoreUrlError(
            "The store URL cannot be read; write it as "
            "postgresql://USER@HOST:PORT/DATABASE?sslmode=verify-full"
        ) from None
    if params.get("passfile"):
        raise StoreUrlError(
            "The store URL must not name a password file; save the password in this "
            "computer's keyring: cactus-desk team connect URL --password-stdin"
        )
    if params.get("password"):
        raise StoreUrlError(
            "The store URL must not contain the database password (it would end up in files "
            "and process lists). Give the URL without it and save the password in this "
            "computer's keyring: cactus-desk team connect URL --password-stdin"
        )
    host = str(params.get("host") or "localhost")
    return StoreUrl(
        url=text,
        host=host,
        port=str(params.get("port") or ""),
        dbname=str(params.get("dbname") or params.get("user") or ""),
        user=str(params.get("user") or ""),
    )


def scrub(text: str, secrets: Mapping[str, str | None] | None = None) -> str:
    """``text`` with any of ``secrets``' values replaced by ``***``."""
    for value in (secrets or {}).values():
        if value:
            text = text.replace(value, "***")
    return text


def unreachable_message(label: str, exc: BaseException, password: str | None) -> str:
    """The sentence for a team history that cannot be reached (never holding the password)."""
    detail = " ".join(str(exc).split()).rstrip(".") or type(exc).__name__
    detail = scrub(detail, {"password": password})
    hint = ""
    if "no password supplied" in detail or "password authentication failed" in detail:
        hint = (
            " Save this computer's password for it with: "
            "cactus-desk team connect URL --password-stdin"
        )
    return f"The team history at {label} cannot be reached: {detail}.{hint}"
