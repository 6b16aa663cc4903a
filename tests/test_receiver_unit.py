"""The receiver's systemd unit and environment-file template in packaging/linux.

The unit must parse (``systemd-analyze verify`` where systemd is installed, always a
structural check), run the receiver as a dedicated user with the hardening options, take its
settings from the environment file and its secrets only from encrypted credentials, and its
command line must be one ``cactus-desk`` accepts.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from cactus_desk.commands import build_parser
from cactus_desk.credentials import SALT_CREDENTIAL, STORE_PASSWORD_CREDENTIAL
from cactus_desk.history import check_store_url

LINUX = Path(__file__).resolve().parents[1] / "packaging" / "linux"
UNIT = LINUX / "cactus-desk-receiver.service"
ENV_FILE = LINUX / "cactus-desk-receiver.env"


def _unit() -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> values (a key may repeat); comments and blank lines dropped."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for number, raw in enumerate(UNIT.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        header = re.fullmatch(r"\[([A-Za-z]+)\]", line)
        if header:
            current = sections.setdefault(header.group(1), {})
            continue
        key, sep, value = line.partition("=")
        assert current is not None and sep and key.strip(), f"line {number}: {raw!r}"
        assert not raw.endswith("\\"), f"line {number}: no continued lines"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def _environment() -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in ENV_FILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Z_]+", key), raw
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        values[key] = value
    return values


def test_the_unit_runs_a_dedicated_user_hardened_and_restarts_on_failure() -> None:
    service = _unit()["Service"]
    one = {key: values[-1] for key, values in service.items()}
    assert one["User"] not in ("", "root", "0") and one["Group"] == one["User"]
    for option, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "Restart": "on-failure",
        "UMask": "0077",
        "CapabilityBoundingSet": "",
    }.items():
        assert one.get(option) == value, option
    assert one["EnvironmentFile"] == "/etc/cactus-desk/receiver.env"
    assert _unit()["Install"]["WantedBy"] == ["multi-user.target"]


def test_the_secrets_come_from_encrypted_credentials_never_from_the_environment() -> None:
    service = _unit()["Service"]
    loaded = [value.split(":", 1)[0] for value in service["LoadCredentialEncrypted"]]
    assert sorted(loaded) == sorted([SALT_CREDENTIAL, STORE_PASSWORD_CREDENTIAL])
    assert "LoadCredential" not in service and "SetCredential" not in service
    text = "\n".join(
        line
        for path in (UNIT, ENV_FILE)
        for line in path.read_text(encoding="utf-8").splitlines()
        if not line.lstrip().startswith("#")
    )
    assert not re.search(r"PASSWORD\s*=|SALT\s*=|PGPASS", text, re.IGNORECASE)


def test_the_environment_template_names_a_usable_store_profile_and_loopback_address() -> None:
    values = _environment()
    assert set(values) == {"CACTUS_DESK_STORE", "CACTUS_DESK_PROFILE", "CACTUS_DESK_LISTEN"}
    store = check_store_url(values["CACTUS_DESK_STORE"])  # no password in it
    assert "sslmode=verify-full" in store.url and "sslrootcert=" in store.url
    assert values["CACTUS_DESK_LISTEN"] == "127.0.0.1:8787"


def test_the_command_line_with_the_template_values_is_the_receiver_command() -> None:
    exec_start = _unit()["Service"]["ExecStart"]
    assert len(exec_start) == 1
    values = _environment()
    words = exec_start[0].split()
    assert words[0] == "/usr/bin/cactus-desk"
    # systemd replaces a whole-word ${NAME} by the value as one argument, spaces and all.
    argv = [values[w[2:-1]] if re.fullmatch(r"\$\{[A-Z_]+\}", w) else w for w in words[1:]]
    args = build_parser().parse_args(argv)
    assert args.command == "receiver"
    assert (args.store, args.profile, args.listen) == (
        values["CACTUS_DESK_STORE"],
        "Acme live",
        "127.0.0.1:8787",
    )


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    """``systemd-analyze verify`` on the unit as shipped, but for the program's path (not
    installed here): any unknown option, bad value or section is an error."""
    _unit()  # the structural parse runs everywhere
    analyze = shutil.which("systemd-analyze")
    if analyze is None:  # no systemd on this machine: the structural checks above stand
        return
    program = shutil.which("cactus-desk") or str(Path(sys.executable).with_name("cactus-desk"))
    assert Path(program).is_file()
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text(encoding="utf-8").replace("/usr/bin/cactus-desk", program))
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Unknown" not in result.stderr and "ignoring" not in result.stderr.lower()


def test_the_server_docs_name_the_shipped_files_and_credentials() -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "receiver.md").read_text("utf-8")
    for name in (
        UNIT.name,
        ENV_FILE.name,
        "/etc/cactus-desk/receiver.env",
        SALT_CREDENTIAL,
        STORE_PASSWORD_CREDENTIAL,
        "systemd-creds encrypt",
        "sslmode=verify-full",
        "pg_dump",
    ):
        assert name in docs, name
