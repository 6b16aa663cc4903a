"""Private PostgreSQL clusters started from the machine's server binaries, for the team-store
tests (a throwaway ``PgCluster``) and the benchmarks (a cached one, ``benchmarks.pg_data``).

The server binaries come from the machine (Debian's ``postgresql`` package puts them under
``/usr/lib/postgresql/<version>/bin``; ``CACTUS_DESK_PG_BINDIR`` overrides). PostgreSQL
refuses to run as root, so when run as root the cluster's folder is handed to the
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
from collections.abc import Mapping
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


def server_major(bindir: Path) -> str:
    """The major version of the server in ``bindir`` (e.g. ``"15"``)."""
    out = subprocess.run(
        [str(bindir / "pg_ctl"), "--version"], capture_output=True, text=True, check=True
    ).stdout
    return out.split()[-1].split(".")[0]


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_ids() -> tuple[int, int] | None:
    """PostgreSQL refuses root: as root, the ``postgres`` user's ids; otherwise None."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError as exc:
        raise PostgresUnavailableError("running as root and there is no postgres user") from exc
    return entry.pw_uid, entry.pw_gid


class PgServer:
    """A cluster in ``root / "data"``, on a free loopback port, its socket in ``sockets``.

    ``initdb`` creates it (``superuser`` with a password, SCRAM only), ``start`` runs it
    with the given settings, ``stop`` ends it; the server commands run as ``postgres`` when
    this process is root.
    """

    def __init__(self, root: Path, superuser: str, sockets: Path) -> None:
        self.bindir = find_bindir()
        self._ids = server_ids()
        self.root = root
        self.superuser = superuser
        self.sockets = sockets
        self.data = root / "data"
        self.log = root / "server.log"
        self.port = free_port()

    def own(self, path: Path) -> None:
        """Hand ``path`` to the server's user (when this process is root)."""
        if self._ids is not None:
            os.chown(path, *self._ids)

    def run(self, tool: str, *args: str, timeout: float = 120) -> None:
        """Run a server command (as the server's user); raise with the log on failure."""
        user, group = self._ids if self._ids is not None else (None, None)
        result = subprocess.run(
            [str(self.bindir / tool), *args],
            user=user,
            group=group,
            extra_groups=[] if group is not None else None,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{tool} failed: {result.stderr.strip()}\n{log}")

    def initdb(self, password: str) -> None:
        """A new cluster whose superuser has ``password`` (passed in a file removed after)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.own(self.root)
        pwfile = self.sockets / "pw"
        pwfile.write_text(password + "\n", encoding="utf-8")
        pwfile.chmod(0o600)
        self.own(pwfile)
        try:
            self.run(
                "initdb",
                "--pgdata",
                str(self.data),
                "--username",
                self.superuser,
                "--pwfile",
                str(pwfile),
                "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            )
        finally:
            pwfile.unlink(missing_ok=True)

    def start(self, settings: Mapping[str, str] | None = None, *, timeout: float = 120) -> None:
        """Start the server with ``settings`` and wait until it accepts connections."""
        fixed = {"listen_addresses": "127.0.0.1", "unix_socket_directories": str(self.sockets)}
        options = f"-p {self.port} " + " ".join(
            f"-c {key}={value}" for key, value in {**fixed, **(settings or {})}.items()
        )
        log = str(self.log)
        self.run(
            "pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "start", timeout=timeout
        )

    def stop(self, mode: str = "fast", *, timeout: float = 120) -> None:
        """Stop the server (``fast`` ends sessions cleanly, ``immediate`` is a crash)."""
        self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", timeout=timeout)


class PgCluster(PgServer):
    """One throwaway cluster in a temporary folder; ``start``, ``stop``, ``restart``."""

    def __init__(self) -> None:
        root = Path(tempfile.mkdtemp(prefix="cactus-pg-"))
        super().__init__(root, SUPERUSER, sockets=root)
        self.password = secrets.token_urlsafe(16)
        self.initdb(self.password)

    def start(self, settings: Mapping[str, str] | None = None, *, timeout: float = 120) -> None:
        """Start the server (no fsync: the data is thrown away) and wait for it."""
        fixed = {"fsync": "off", "max_connections": "200"}
        super().start({**fixed, **(settings or {})}, timeout=timeout)

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
