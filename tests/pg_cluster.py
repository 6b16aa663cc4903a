"""A throwaway PostgreSQL cluster for the team-store tests, started by the suite itself.

The server binaries come from the machine (Debian's ``postgresql`` package puts them under
``/usr/lib/postgresql/<version>/bin``; ``CACTUS_DESK_PG_BINDIR`` overrides). PostgreSQL
refuses to run as root, so when the suite runs as root the cluster's folder is handed to the
``postgres`` user and every server command runs as that user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SUPERUSER = "cactus_owner"


class PostgresUnavailableError(RuntimeError):
    """No PostgreSQL server binaries on this machine, or no user to run them as."""


def find_bindir() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``, newest version first."""
    override = os.environ.get("CACTUS_DESK_PG_BINDIR")
    candidates = [Path(override)] if override else []
    candidates += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise PostgresUnavailableError(
        "PostgreSQL server binaries not found (install Debian's postgresql package)"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_user() -> tuple[int, int] | None:
    """PostgreSQL refuses root: as root, the ``postgres`` user's ids; otherwise None."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError as exc:
        raise PostgresUnavailableError("running as root and there is no postgres user") from exc
    return entry.pw_uid, entry.pw_gid


class PgCluster:
    """One private cluster on a free loopback port; ``start``, ``stop``, ``restart``."""

    def __init__(self) -> None:
        self.bindir = find_bindir()
        self._ids = _server_user()
        self.root = Path(tempfile.mkdtemp(prefix="cactus-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = _free_port()
        self.password = secrets.token_urlsafe(16)
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n", encoding="utf-8")
        if self._ids is not None:
            os.chown(self.root, *self._ids)
            os.chown(pwfile, *self._ids)
        self._run(
            "initdb",
            "--pgdata",
            str(self.data),
            "--username",
            SUPERUSER,
            "--pwfile",
            str(pwfile),
            "--auth-local=scram-sha-256",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        pwfile.unlink()

    def _run(self, tool: str, *args: str) -> None:
        user, group = self._ids if self._ids is not None else (None, None)
        result = subprocess.run(
            [str(self.bindir / tool), *args],
            user=user,
            group=group,
            extra_groups=[] if group is not None else None,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{tool} failed: {result.stderr.strip()}\n{log}")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.root} -c fsync=off "
            "-c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast`` ends sessions cleanly, ``immediate`` is a crash)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        """Stop and start again on the same port, keeping the data."""
        self.stop()
        self.start()

    def url(self, user: str = SUPERUSER, password: str | None = None, db: str = "postgres") -> str:
        """A ``postgresql://`` URL for ``user`` on this cluster."""
        secret = self.password if password is None and user == SUPERUSER else password
        auth = f"{user}:{secret}" if secret else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{db}"

    def destroy(self) -> None:
        """Stop the server if it runs and remove every file."""
        with contextlib.suppress(RuntimeError):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
